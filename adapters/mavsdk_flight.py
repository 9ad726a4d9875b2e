"""The ``FlightController`` protocol for PX4, on the one in-process MAVSDK plus our command sender.

MAVSDK (through ``adapters.mavlink.mavsdk_bridge``) serves what it does well against real PX4:
discovery, telemetry streams and the mission transfer protocol. Commands go through our own
command sender on the router's autopilot link, because MAVSDK 4.1 loses what the controller needs
there (see ../shared/px4-reference/NOTES.md): its ``goto_location`` sends DO_REPOSITION as
COMMAND_INT in MAV_FRAME_GLOBAL, which PX4 refuses (result 9, reported as UNKNOWN), and its Action
results fold TEMPORARILY_REJECTED into COMMAND_DENIED and drop PX4's STATUSTEXT reason. Ours sends
positional commands as COMMAND_INT in MAV_FRAME_GLOBAL_INT, keeps the exact result and the reason,
and retries, within a bound, what PX4 refuses only while it is still settling. Parameter sets go
on the same link too (``adapters.mavlink.params``): a MAVSDK param set that never returns cannot
be cancelled, and one did hang in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import structlog
from mavsdk.asyncio.plugins.mission import MissionAsync
from mavsdk.asyncio.plugins.telemetry import TelemetryAsync
from mavsdk.asyncio.system import System
from mavsdk.plugins.mission import MissionError, MissionPlan
from mavsdk.plugins.mission import MissionItem as MavsdkMissionItem

from adapters import blocking
from adapters.errors import CommandRejected, CommandTimeout, LinkLost
from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import CommandAck, RetryPolicy, raise_for
from adapters.mavlink.ids import AUTOPILOT_COMPID
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.mavsdk_bridge import MavsdkBridge
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.params import set_param
from adapters.mavlink.router import Router
from adapters.protocols import (
    AltitudeReference,
    Battery,
    CommandResult,
    FlightMode,
    GeoTarget,
    Health,
    LandedState,
    LinkState,
    MissionItem,
    MissionProgress,
    Position,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")
NAN = float("nan")

# PX4 gives its reason as STATUSTEXT about 1.5 s after refusing.
PX4_POLICY = RetryPolicy(ack_timeout_s=1.0, attempts=4, max_duration_s=15.0, reason_wait_s=2.0)
SETTLE_S = 15.0  # how long to keep retrying what PX4 refuses while it settles (arming, mission start)
SETTLE_RETRY_S = 0.5

# PX4 custom modes for MAV_CMD_DO_SET_MODE (main mode 4 AUTO, with its sub modes)
PX4_AUTO = 4
PX4_AUTO_LOITER = 3
PX4_AUTO_MISSION = 4
FORCE_DISARM_MAGIC = 21196.0

FLIGHT_MODES = {m.name: m for m in FlightMode} | {
    "ALTCTL": FlightMode.ALTITUDE,
    "POSCTL": FlightMode.POSITION,
    "RATTITUDE": FlightMode.STABILIZED,
}
MISSION_RESULTS = {
    "BUSY": CommandResult.BUSY,
    "TIMEOUT": CommandResult.TIMEOUT,
    "INVALID_ARGUMENT": CommandResult.INVALID_ARGUMENT,
    "UNSUPPORTED": CommandResult.UNSUPPORTED,
    "UNSUPPORTED_MISSION_CMD": CommandResult.UNSUPPORTED,
    "TOO_MANY_MISSION_ITEMS": CommandResult.DENIED,
    "NO_MISSION_AVAILABLE": CommandResult.DENIED,
    "DENIED": CommandResult.DENIED,
    "NO_SYSTEM": CommandResult.NO_SYSTEM,
}


async def find_system(bridge: MavsdkBridge, system_id: int, timeout_s: float) -> System:
    """MAVSDK's system for ``system_id``, once MAVSDK has heard its autopilot; ``LinkLost`` if it
    is not heard within ``timeout_s``."""

    def lookup() -> Any:  # MAVSDK's C calls, on the bounded executor
        for system in bridge.mavsdk.get_systems():
            if system.get_system_id() == system_id and system.has_autopilot():
                return system
        return None

    try:
        async with asyncio.timeout(timeout_s):
            while True:
                found = await blocking.call(f"find MAVSDK system {system_id}", lookup, timeout_s=timeout_s)
                if found is not None:
                    return System(found)
                await asyncio.sleep(0.2)  # MAVSDK offers no per-id wait; its discovery is this list
    except TimeoutError:
        raise LinkLost(f"autopilot {system_id}", None) from None


PARAM_TIMEOUT_S = 5.0  # a parameter set, resent on our link (adapters.mavlink.params)
# Bounds on MAVSDK's blocking calls (they run on the bounded executor, adapters.blocking).
PLUGINS_TIMEOUT_S = 5.0  # creating the plugins of a system
HOME_TIMEOUT_S = 3.0  # MAVSDK's last home position (a cached read)
MISSION_UPLOAD_TIMEOUT_S = 30.0  # MAVSDK's mission transfer retries within this
SUBSCRIBE_TIMEOUT_S = 5.0
UNSUBSCRIBE_TIMEOUT_S = 1.0


class MavsdkFlightController:
    def __init__(self, system: System, link: ComponentLink) -> None:
        self._system = system
        self._link = link
        self._telemetry = TelemetryAsync(system)
        # MAVSDK's getter of the last heading (GLOBAL_POSITION_INT.hdg): see position()
        self._heading_now: Callable[[], Any] = self._telemetry._plugin.heading
        self._mission = MissionAsync(system)
        # MAVSDK's battery has no failure flag: BATTERY_STATUS read from the link beside it
        self._battery_failed = False
        self._unsubscribe: Callable[[], None] = lambda: None  # listening starts on the loop (attach)

    def close(self) -> None:
        self._unsubscribe()

    def _on_message(self, msg: MAVLinkMessage) -> None:
        if msg.get_msgId() == mav.MAVLINK_MSG_ID_BATTERY_STATUS:
            self._battery_failed = (
                int(msg.charge_state) == mav.MAV_BATTERY_CHARGE_STATE_FAILED or int(msg.fault_bitmask) != 0
            )

    @classmethod
    async def attach(
        cls, router: Router, bridge: MavsdkBridge, system_id: int, timeout_s: float = 10.0
    ) -> MavsdkFlightController:
        link = router.component(system_id, AUTOPILOT_COMPID, f"autopilot {system_id}", PX4_POLICY)
        system = await find_system(bridge, system_id, timeout_s)
        try:  # the plugins' constructors are MAVSDK C calls too
            controller: MavsdkFlightController = await blocking.call(
                f"create MAVSDK plugins of {link.name}", cls, system, link, timeout_s=PLUGINS_TIMEOUT_S
            )
        except TimeoutError:
            raise CommandTimeout(f"create the MAVSDK plugins of {link.name}", PLUGINS_TIMEOUT_S, 1) from None
        controller._unsubscribe = link.subscribe(controller._on_message, {mav.MAVLINK_MSG_ID_BATTERY_STATUS})
        return controller

    # commands -------------------------------------------------------------------------------------
    async def set_cruise_speed(self, speed_mps: float) -> None:
        """PX4's MPC_XY_CRUISE: the horizontal speed of missions, go-to without a speed, and RTL."""
        await set_param(self._link, "MPC_XY_CRUISE", float(speed_mps), timeout_s=PARAM_TIMEOUT_S)

    async def arm(self) -> None:
        await self._settled("arm", lambda: self._long(mav.MAV_CMD_COMPONENT_ARM_DISARM, (1.0,)))

    async def disarm(self) -> None:
        await self._check("disarm", await self._long(mav.MAV_CMD_COMPONENT_ARM_DISARM, (0.0,)))

    async def takeoff(self, alt_rel_m: float) -> None:
        # param7 is AMSL for PX4; without it PX4 climbs to MIS_TAKEOFF_ALT only.
        home = await self._home()
        amsl = float(home.absolute_altitude_m) + alt_rel_m
        params = (NAN, 0.0, 0.0, NAN, NAN, NAN, amsl)
        await self._check(f"take off to {alt_rel_m:g} m", await self._long(mav.MAV_CMD_NAV_TAKEOFF, params))

    async def goto(self, target: GeoTarget, speed_mps: float | None = None) -> None:
        amsl = await self._amsl(target)
        # param1 ground speed (-1: default), param2 bit 0: switch to guided (hold) mode
        params = (-1.0 if speed_mps is None else speed_mps, 1.0, 0.0, NAN)
        ack = await self._int(mav.MAV_CMD_DO_REPOSITION, target, amsl, params)
        await self._check(f"go to {target.lat_deg:.6f}, {target.lon_deg:.6f}", ack)

    async def orbit(self, center: GeoTarget, radius_m: float, speed_mps: float) -> None:
        amsl = await self._amsl(center)
        params = (radius_m, speed_mps, float(mav.ORBIT_YAW_BEHAVIOUR_HOLD_FRONT_TO_CIRCLE_CENTER), 0.0)
        ack = await self._int(mav.MAV_CMD_DO_ORBIT, center, amsl, params)
        await self._check(f"orbit {radius_m:g} m", ack)

    async def hold(self) -> None:
        await self._check("hold", await self._set_auto_mode(PX4_AUTO_LOITER))

    async def upload_mission(self, items: Sequence[MissionItem]) -> None:
        plan = MissionPlan(
            [
                MavsdkMissionItem(
                    latitude_deg=item.lat_deg,
                    longitude_deg=item.lon_deg,
                    relative_altitude_m=item.alt_rel_m,
                    speed_m_s=NAN if item.speed_mps is None else item.speed_mps,
                    is_fly_through=item.hold_s == 0,
                    loiter_time_s=item.hold_s,
                    acceptance_radius_m=item.acceptance_radius_m,
                )
                for item in items
            ]
        )
        self._link.watchdog.ensure_connected()
        try:
            await blocking.bounded(
                f"upload a mission to {self._link.name}",
                self._mission.upload_mission(plan),
                MISSION_UPLOAD_TIMEOUT_S,
            )
        except TimeoutError:
            raise CommandTimeout("upload the mission", MISSION_UPLOAD_TIMEOUT_S, 1) from None
        except MissionError as exc:
            raise self._mission_error("upload the mission", exc) from None

    async def start_mission(self) -> None:
        # Right after an upload PX4 may refuse for a second while it checks the mission.
        await self._settled("start the mission", lambda: self._long(mav.MAV_CMD_MISSION_START, (0.0, 0.0)))

    async def pause_mission(self) -> None:
        await self._check("pause the mission", await self._set_auto_mode(PX4_AUTO_LOITER))

    async def resume_mission(self) -> None:
        await self._settled("resume the mission", lambda: self._set_auto_mode(PX4_AUTO_MISSION))

    async def return_to_launch(self) -> None:
        await self._check("return to launch", await self._long(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, ()))

    async def land(self) -> None:
        await self._check("land", await self._long(mav.MAV_CMD_NAV_LAND, (0.0, 0.0, 0.0, NAN, NAN, NAN, NAN)))

    async def emergency_stop(self, *, confirm: bool) -> None:
        if confirm is not True:
            raise CommandRejected(
                "emergency stop", CommandResult.INVALID_ARGUMENT, "stops the motors in flight: confirm=True"
            )
        log.warning("adapters.flight.emergency_stop", component=self._link.name)
        ack = await self._long(mav.MAV_CMD_COMPONENT_ARM_DISARM, (0.0, FORCE_DISARM_MAGIC))
        await self._check("emergency stop", ack)

    # telemetry ------------------------------------------------------------------------------------
    def position(self) -> AsyncIterator[Position]:
        """Positions with the drone's heading, both from GLOBAL_POSITION_INT.

        MAVSDK stores a GLOBAL_POSITION_INT's heading (``hdg``; NaN when the autopilot sends
        "unknown") before it queues the position callbacks of the same message, and runs the
        heading subscribers after the position subscribers: a separate heading stream would pair
        each position with the previous message's heading. Reading MAVSDK's current heading as the
        position arrives pairs it with its own message (or, if this loop lags a whole message
        behind, with the next one).
        """
        return _mapped(
            self._subscribe(self._telemetry._plugin, "position"),
            lambda p: Position(
                float(p.latitude_deg),
                float(p.longitude_deg),
                float(p.absolute_altitude_m),
                float(p.relative_altitude_m),
                _heading_or_none(self._heading_now().heading_deg),
            ),
            keep=on_earth,
        )

    def battery(self) -> AsyncIterator[Battery]:
        return _mapped(
            self._subscribe(self._telemetry._plugin, "battery"),
            lambda b: Battery(float(b.remaining_percent), float(b.voltage_v), self._battery_failed),
        )

    # Flight mode, armed, landed state and health come with every HEARTBEAT, EXTENDED_SYS_STATE
    # and SYS_STATUS (MAVSDK calls back on each): they are passed on when they change, decided in
    # MAVSDK's thread, so that an unchanged value costs the event loop nothing (issue 15).
    def flight_mode(self) -> AsyncIterator[FlightMode]:
        return self._subscribe(
            self._telemetry._plugin, "flight_mode", lambda m: FLIGHT_MODES.get(m.name, FlightMode.UNKNOWN)
        )

    def armed(self) -> AsyncIterator[bool]:
        return self._subscribe(self._telemetry._plugin, "armed", bool)

    def landed_state(self) -> AsyncIterator[LandedState]:
        return self._subscribe(
            self._telemetry._plugin,
            "landed_state",
            lambda s: LandedState[s.name] if s.name in LandedState.__members__ else LandedState.UNKNOWN,
        )

    def health(self) -> AsyncIterator[Health]:
        return self._subscribe(
            self._telemetry._plugin,
            "health",
            lambda h: Health(
                bool(h.is_gyrometer_calibration_ok),
                bool(h.is_accelerometer_calibration_ok),
                bool(h.is_magnetometer_calibration_ok),
                bool(h.is_local_position_ok),
                bool(h.is_global_position_ok),
                bool(h.is_home_position_ok),
                bool(h.is_armable),
            ),
        )

    def mission_progress(self) -> AsyncIterator[MissionProgress]:
        return _mapped(
            self._subscribe(self._mission._plugin, "mission_progress"),
            lambda p: MissionProgress(int(p.current), int(p.total)),
        )

    def link_state(self) -> AsyncIterator[LinkState]:
        return self._link.watchdog.state.updates()

    # ------------------------------------------------------------------------------------------------
    async def _home(self) -> Any:
        try:
            return await blocking.bounded(
                f"read the home of {self._link.name}", self._telemetry.home(), HOME_TIMEOUT_S
            )
        except TimeoutError:
            raise CommandTimeout("read the home position", HOME_TIMEOUT_S, 1) from None

    async def _subscribe(
        self, plugin: Any, topic: str, changes: Callable[[Any], Any] | None = None
    ) -> AsyncIterator[Any]:
        """MAVSDK's ``subscribe_<topic>`` as MAVSDK's asyncio wrapper does it, with the subscribe
        and unsubscribe C calls on the bounded executor instead of the loop, each within a bound.
        With ``changes``, each update is converted by it in MAVSDK's thread and passed on only
        when it differs from the last one passed (the first always is)."""
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[Any] = asyncio.Queue()
        last: list[Any] = []

        def on_update(data: Any, _user_data: Any) -> None:  # MAVSDK's thread
            if changes is not None:
                data = changes(data)
                if last and last[0] == data:
                    return
                last[:] = [data]
            with contextlib.suppress(RuntimeError):  # the loop closed
                loop.call_soon_threadsafe(updates.put_nowait, data)

        what = f"subscribe to {topic} of {self._link.name}"
        try:
            handle = await blocking.call(
                what, getattr(plugin, f"subscribe_{topic}"), on_update, timeout_s=SUBSCRIBE_TIMEOUT_S
            )
        except TimeoutError:
            raise CommandTimeout(f"subscribe to {topic}", SUBSCRIBE_TIMEOUT_S, 1) from None
        try:
            while True:
                yield await updates.get()
        finally:
            unsubscribe = getattr(plugin, f"unsubscribe_{topic}")
            try:
                await blocking.call(f"un{what}", unsubscribe, handle, timeout_s=UNSUBSCRIBE_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("adapters.flight.unsubscribe_abandoned", topic=topic, component=self._link.name)

    async def _long(self, command: int, params: tuple[float, ...]) -> CommandAck:
        self._link.watchdog.ensure_connected()
        return await self._link.commands.command_long(command, params)

    async def _int(
        self, command: int, target: GeoTarget, amsl_m: float, params: tuple[float, ...]
    ) -> CommandAck:
        self._link.watchdog.ensure_connected()
        return await self._link.commands.command_int(
            command,
            frame=mav.MAV_FRAME_GLOBAL_INT,  # the only frame PX4 accepts in COMMAND_INT
            params=params,
            x=round(target.lat_deg * 1e7),
            y=round(target.lon_deg * 1e7),
            z=amsl_m,
        )

    async def _set_auto_mode(self, sub_mode: int) -> CommandAck:
        params = (float(mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED), float(PX4_AUTO), float(sub_mode))
        return await self._long(mav.MAV_CMD_DO_SET_MODE, params)

    async def _amsl(self, target: GeoTarget) -> float:
        if target.reference is AltitudeReference.AMSL:
            return target.altitude_m
        home = await self._home()
        if math.isnan(home.absolute_altitude_m):
            raise CommandRejected(
                "fly to a relative altitude", CommandResult.DENIED, "home position not known yet"
            )
        return float(home.absolute_altitude_m) + target.altitude_m

    async def _check(self, what: str, ack: CommandAck) -> None:
        raise_for(ack, what, self._link.name, self._link.watchdog.silent_s())

    async def _settled(self, what: str, send: Callable[[], Any]) -> None:
        """Send until PX4 stops refusing only for now, for at most ``SETTLE_S``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + SETTLE_S
        while True:
            ack: CommandAck = await send()
            if ack.result.ok or not ack.result.retryable or loop.time() + SETTLE_RETRY_S > end:
                await self._check(what, ack)
                return
            log.info("adapters.flight.retry", what=what, result=ack.result.value, reason=ack.text)
            await asyncio.sleep(SETTLE_RETRY_S)

    def _mission_error(self, what: str, exc: MissionError) -> Exception:
        name = getattr(exc.result, "name", "UNKNOWN")
        if name == "NO_SYSTEM":
            return LinkLost(self._link.name, self._link.watchdog.silent_s())
        if name == "TIMEOUT":
            return CommandTimeout(what, 0.0, 1)
        return CommandRejected(what, MISSION_RESULTS.get(name, CommandResult.FAILED), str(exc))


def _heading_or_none(heading_deg: float) -> float | None:
    """MAVSDK's heading (NaN: unknown) as the protocol's: [0, 360) or None."""
    value = float(heading_deg)
    return value % 360.0 if math.isfinite(value) else None


def on_earth(position: Position) -> bool:
    """Whether ``position`` is a place: finite, latitude within ±90°, longitude within ±180°.
    A GLOBAL_POSITION_INT carries int32s, so garbage or a forged frame can say 214° north; such a
    position is dropped here (logged) and never reaches the core, whose geometry refuses it."""
    values = (position.lat_deg, position.lon_deg, position.alt_amsl_m, position.alt_rel_m)
    ok = (
        all(math.isfinite(v) for v in values)
        and -90.0 <= position.lat_deg <= 90.0
        and -180.0 <= position.lon_deg <= 180.0
    )
    if not ok:
        log.warning("adapters.flight.position_dropped", lat_deg=position.lat_deg, lon_deg=position.lon_deg)
    return ok


async def _mapped(
    stream: AsyncIterator[Any], convert: Callable[[Any], T], keep: Callable[[T], bool] | None = None
) -> AsyncIterator[T]:
    async for value in stream:
        converted = convert(value)
        if keep is None or keep(converted):
            yield converted
