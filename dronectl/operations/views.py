"""How a nest controller looks through the MQTT API: state snapshots, telemetry and events.

Plain conversions from the controller's frozen values (``dronectl.nest.controller``) to the API's
pydantic models (``dronectl.operations.models``); no I/O. ``FleetOperations`` decides when to call them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from adapters.protocols import ChargerState, CoverState, FlightMode
from dronectl.domain.control_authority import Holder
from dronectl.domain.errors import LinkLost
from dronectl.domain.geo import GeoPoint, bearing_deg, distance_m
from dronectl.domain.safety import BlockerCode, LaunchRequest
from dronectl.nest.controller import NestController, NestEvent
from dronectl.operations import models as api

_WEATHER_CODES = frozenset(
    {
        BlockerCode.WEATHER_UNKNOWN,
        BlockerCode.WIND,
        BlockerCode.GUST,
        BlockerCode.PRECIPITATION,
        BlockerCode.TOO_COLD,
        BlockerCode.TOO_HOT,
    }
)
# blockers that belong to a particular target, not to the nest: left out of the state's list
_TARGET_CODES = frozenset(
    {
        BlockerCode.OUTSIDE_GEOFENCE,
        BlockerCode.IN_NO_FLY_ZONE,
        BlockerCode.PATH_LEAVES_GEOFENCE,
        BlockerCode.PATH_CROSSES_NO_FLY,
        BlockerCode.ALTITUDE_CEILING,
        BlockerCode.ALTITUDE_TOO_LOW,
        BlockerCode.OUT_OF_RANGE,
        BlockerCode.SEPARATION,
        BlockerCode.INVALID_REQUEST,
    }
)
CoverName = Literal["unknown", "closed", "opening", "open", "closing", "stopped"]
ModeName = Literal["unknown", "takeoff", "hold", "mission", "position", "orbit", "return", "land"]
_COVER: dict[CoverState, CoverName] = {
    CoverState.UNKNOWN: "unknown",
    CoverState.CLOSED: "closed",
    CoverState.OPENING: "opening",
    CoverState.OPEN: "open",
    CoverState.CLOSING: "closing",
    CoverState.JAMMED: "stopped",
}
_MODE: dict[FlightMode, ModeName] = {
    FlightMode.TAKEOFF: "takeoff",
    FlightMode.HOLD: "hold",
    FlightMode.MISSION: "mission",
    FlightMode.POSITION: "position",
    FlightMode.ALTITUDE: "position",
    FlightMode.OFFBOARD: "position",
    FlightMode.RETURN_TO_LAUNCH: "return",
    FlightMode.LAND: "land",
    FlightMode.PRECISION_LAND: "land",
}
# the controller's event kinds that are API events as they are
_KINDS = {
    "launched": api.EventKind.LAUNCHED,
    "on_station": api.EventKind.ON_STATION,
    "returning": api.EventKind.RETURNING,
    "landed": api.EventKind.LANDED,
    "refused": api.EventKind.REFUSED,
    "command_interrupted": api.EventKind.COMMAND_INTERRUPTED,
    "fault": api.EventKind.FAULT,
    "launch_aborted": api.EventKind.FAULT,
    "link_lost": api.EventKind.LINK_LOST,
    "link_up": api.EventKind.LINK_RESTORED,
}


def utc(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, tz=UTC)


def nest_blockers(controller: NestController, cruise_alt_m: float) -> list[api.Blocker]:
    """What would refuse any launch now: the blockers of the smallest launch there is (up to
    cruise altitude over the nest, the usual time on station, back down), i.e. the nest, its
    weather and its battery. Target-specific reasons (geofence, no-fly zones, separation from the
    other flights) depend on where a launch would go, so they are left out: they are also the
    costly checks, and this runs for every nest about once a second."""
    request = LaunchRequest(controller.home, cruise_alt_m)
    found = controller.policy.check_launch(controller.snapshot(), request, ())
    return [api.Blocker(code=b.code.value, message=b.message) for b in found if b.code not in _TARGET_CODES]


def _weather(controller: NestController, blockers: list[api.Blocker]) -> api.Weather | None:
    w = controller.dock.weather
    if w is None:
        return None
    weather_codes = {c.value for c in _WEATHER_CODES}
    return api.Weather(
        wind_speed_mps=max(0.0, w.wind_speed_mps),
        wind_gust_mps=max(0.0, w.wind_gust_mps),
        wind_from_deg=w.wind_from_deg % 360.0,
        air_temp_c=w.air_temperature_c,
        precipitation_mmph=max(0.0, w.precipitation_mmph),
        go=controller.dock.link_up and not any(b.code in weather_codes for b in blockers),
    )


def _link(controller: NestController) -> api.LinkSecurity | None:
    try:
        source = controller.hw.link_security
    except LinkLost:  # not attached yet
        return None
    if source is None:
        return None
    status = source()
    return api.LinkSecurity(
        signed=status.signed,
        policy=status.policy,  # type: ignore[arg-type]  # a str, one of LinkSecurity's three policies
        rejected=dict(status.rejected),
        fault=status.fault,
        last_verified_s_ago=None
        if status.last_verified_s_ago is None
        else round(max(0.0, status.last_verified_s_ago), 1),
    )


def _position(controller: NestController) -> api.Position | None:
    pos = controller.drone.position
    if pos is None:
        return None
    return api.Position(lat=round(pos.lat_deg, 6), lon=round(pos.lon_deg, 6), alt_m=round(pos.alt_rel_m, 1))


def snapshot(
    controller: NestController,
    *,
    at_unix_s: float,
    blockers: list[api.Blocker],
    holder: Holder | None,
    flight_started_unix_s: float | None,
) -> api.NestState:
    status = controller.dock.status
    drone = controller.drone
    battery = drone.battery_pct
    flight = controller.flight
    api_flight = None
    if flight is not None:
        target = (
            api.Position(lat=flight.target.lat_deg, lon=flight.target.lon_deg, alt_m=flight.alt_above_home_m)
            if flight.target is not None
            else None
        )
        api_flight = api.Flight(
            id=flight.flight_id,
            command_id=flight.command_id,
            started_at=utc(flight_started_unix_s if flight_started_unix_s is not None else at_unix_s),
            target=target,
        )
    return api.NestState(
        nest_id=controller.nest_id,
        name=controller.config.name,
        at=utc(at_unix_s),
        phase=api.Phase(controller.state.phase.value),
        dock=api.DockState(
            cover=_COVER[status.cover] if status is not None else "unknown",
            drone_in_dock=status.drone_in_dock if status is not None else None,
            charging=status.charger is ChargerState.CHARGING if status is not None else None,
            weather=_weather(controller, blockers),
        ),
        drone=api.DroneState(
            armed=drone.armed,
            mode=_MODE.get(drone.mode, "unknown"),
            position=_position(controller),
            battery_pct=None if battery is None else round(min(100.0, max(0.0, battery)), 1),
            link="up" if drone.link_up else "lost",
        ),
        flight=api_flight,
        control=api.Actor(id=holder.actor_id, role=api.Role(holder.role)) if holder is not None else None,
        maintenance=controller.state.maintenance,
        fault=controller.state.fault,
        blockers=blockers,
        link=_link(controller),
    )


def change_key(controller: NestController, holder: Holder | None) -> tuple[Any, ...]:
    """What makes a new snapshot worth publishing at once (continuous values such as position,
    battery and wind are refreshed at a bounded rate instead)."""
    status = controller.dock.status
    drone = controller.drone
    return (
        controller.state,
        drone.armed,
        drone.mode,
        drone.link_up,
        drone.landed,
        None if status is None else (status.cover, status.drone_in_dock, status.charger, status.faults),
        controller.dock.link_up,
        controller.flight,
        holder,
        _link_change_key(controller),
    )


def _link_change_key(controller: NestController) -> tuple[bool, str | None] | None:
    """The link's signing and fault, not its refusal counts (those ride the bounded refresh)."""
    link = _link(controller)
    return None if link is None else (link.signed, link.fault)


@dataclass
class MotionTracker:
    """Heading and climb rate from successive positions (the adapters report neither)."""

    last: tuple[float, float, float, float] | None = None  # (mono_s, lat, lon, alt_rel_m)
    heading_deg: float = 0.0
    climb_rate_mps: float = 0.0

    def update(self, mono_s: float, lat: float, lon: float, alt_m: float) -> None:
        if self.last is None:
            self.last = (mono_s, lat, lon, alt_m)
            return
        t0, lat0, lon0, alt0 = self.last
        dt = mono_s - t0
        if dt < 0.2:
            return
        a, b = GeoPoint(lat0, lon0), GeoPoint(lat, lon)
        if distance_m(a, b) > 0.5:
            self.heading_deg = bearing_deg(a, b)
        self.climb_rate_mps = (alt_m - alt0) / dt
        self.last = (mono_s, lat, lon, alt_m)


def telemetry(
    controller: NestController, motion: MotionTracker, at_unix_s: float, mono_s: float
) -> api.Telemetry | None:
    """The current sample, or None without a position or with the drone's link down."""
    drone = controller.drone
    pos = drone.position
    if pos is None or not drone.link_up:
        return None
    motion.update(mono_s, pos.lat_deg, pos.lon_deg, pos.alt_rel_m)
    battery = drone.battery_pct if drone.battery_pct is not None else 0.0
    return api.Telemetry(
        nest_id=controller.nest_id,
        at=utc(at_unix_s),
        position=api.Position(lat=pos.lat_deg, lon=pos.lon_deg, alt_m=pos.alt_rel_m),
        heading_deg=motion.heading_deg % 360.0,
        ground_speed_mps=max(0.0, drone.ground_speed_mps),
        climb_rate_mps=motion.climb_rate_mps,
        battery_pct=min(100.0, max(0.0, battery)),
        # the adapters report the link as up or lost, not a loss rate: 100 while the drone is heard
        link_quality_pct=100.0,
    )


def event_from(
    nest_event: NestEvent, at_unix_s: float, flight_id: str | None, command_id: str | None
) -> api.Event | None:
    """The API event for a controller event; None for those the API shows otherwise (phase
    changes are in the state; en route, hold, orbit, speaker and light in the command's progress)."""
    kind = _KINDS.get(nest_event.kind)
    if kind is None:
        return None
    data = {k: v for k, v in nest_event.data.items() if isinstance(v, str | int | float | bool) or v is None}
    if nest_event.kind == "returning" and data.get("automatic"):
        text = nest_event.message.lower()
        if text.startswith("battery"):
            kind = api.EventKind.BATTERY_RESERVE
        elif "geofence" in text or "no-fly" in text:
            kind = api.EventKind.GEOFENCE
    event_flight = data.get("flight_id")
    event_command = data.get("command_id")  # the event is about a command of its own (interrupted)
    return api.Event(
        kind=kind,
        at=utc(at_unix_s),
        nest_id=nest_event.nest_id,
        message=nest_event.message,
        command_id=event_command if isinstance(event_command, str) else command_id,
        flight_id=event_flight if isinstance(event_flight, str) else flight_id,
        data=data,
    )


def derived_events(before: api.NestState | None, after: api.NestState, at_unix_s: float) -> list[api.Event]:
    """Events read from two successive snapshots: weather no-go, device faults, maintenance."""
    if before is None:
        return []
    out: list[api.Event] = []

    def event(kind: api.EventKind, message: str, **data: Any) -> None:
        flight_id = after.flight.id if after.flight is not None else None
        out.append(
            api.Event(
                kind=kind,
                at=utc(at_unix_s),
                nest_id=after.nest_id,
                message=message,
                flight_id=flight_id,
                data=data,
            )
        )

    was_go = before.dock.weather.go if before.dock.weather is not None else None
    is_go = after.dock.weather.go if after.dock.weather is not None else None
    if was_go is True and is_go is False:
        reasons = [b.message for b in after.blockers if b.code in {c.value for c in _WEATHER_CODES}]
        event(api.EventKind.WEATHER_NO_GO, "weather beyond limits: " + "; ".join(reasons), reasons=reasons)
    device = BlockerCode.DEVICE_FAULT.value
    faults_before = {b.message for b in before.blockers if b.code == device}
    faults_after = {b.message for b in after.blockers if b.code == device}
    for fault in sorted(faults_after - faults_before):
        event(api.EventKind.FAULT, f"device fault: {fault}", fault=fault)
    for fault in sorted(faults_before - faults_after):
        event(api.EventKind.FAULT_CLEARED, f"device fault cleared: {fault}", fault=fault)
    if before.phase is not api.Phase.FAULT and after.phase is api.Phase.FAULT:
        event(api.EventKind.FAULT, f"nest in fault: {after.fault or 'see state'}")
    elif before.phase is api.Phase.FAULT and after.phase is not api.Phase.FAULT:
        event(api.EventKind.FAULT_CLEARED, f"nest out of fault ({after.phase.value})")
    if before.maintenance != after.maintenance:
        event(
            api.EventKind.MAINTENANCE,
            "maintenance on" if after.maintenance else "maintenance off",
            on=after.maintenance,
        )
    signing = _signing_event(before.link, after.link)
    if signing is not None:
        event(api.EventKind.LINK_SIGNING, signing, signed=after.link is not None and after.link.signed)
    return out


def _signing_event(before: api.LinkSecurity | None, after: api.LinkSecurity | None) -> str | None:
    """The words of a link_signing event: when a nest's link starts or stops being signed (and, at
    attach, which of the two it is: an unsigned nest is said plainly)."""
    if after is None:
        return None
    if before is None:
        if after.signed:
            return "MAVLink link signed"
        return f"MAVLink link NOT signed (policy {after.policy})" + (
            f": {after.fault}" if after.fault else ""
        )
    if before.signed == after.signed:
        return None
    if after.signed:
        return "MAVLink link signed"
    return "MAVLink link no longer signed" + (f": {after.fault}" if after.fault else "")
