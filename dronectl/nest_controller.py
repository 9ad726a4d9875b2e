"""One nest under control: its hardware adapters, its state machine, its operations and watches.

The controller turns intentions ("launch to this point", "come home") into acknowledged
actions on the nest's adapters (``adapters.protocols``), and keeps the nest's phase
(``dronectl.nest_state``) true to what the hardware reports. Safety checks
(``dronectl.safety``) run before anything is sent; a refusal lists every reason.

Tasks, all owned by :meth:`NestController.run`'s TaskGroup (named ``nest[07].<what>``):
telemetry watchers (drone, dock), the in-flight guard (battery reserve, geofence), and the
operation in progress (at most one; a newer command that supersedes it cancels it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import structlog

from adapters import errors as adapter_errors
from adapters.protocols import (
    AltitudeReference,
    AudioClip,
    ChargerState,
    CoverState,
    DockStatus,
    DockWeather,
    FlightMode,
    GeoTarget,
    Health,
    LandedState,
    LightPattern,
    Position,
)
from dronectl import nest_state as ns
from dronectl.audit import AuditStore, FlightEnd, FlightEvent, FlightOutcome, FlightStart, TrackSample
from dronectl.audit.records import TransitionRecord
from dronectl.clock import Clock
from dronectl.config import NestConfig
from dronectl.drain import DrainMeter
from dronectl.errors import CommandFailed, CommandRefused, CommandTimeout, DronectlError, LinkLost
from dronectl.flight_guard import guard_reason
from dronectl.geo import GeoPoint, distance_m
from dronectl.nest_types import (  # re-exported: the rest of the service imports them from here
    DockTelemetry,
    DroneTelemetry,
    FleetView,
    Flight,
    Listener,
    NestEvent,
    NestHardware,
)
from dronectl.safety import (
    Blocker,
    BlockerCode,
    DronePosition,
    GotoRequest,
    LaunchRequest,
    NestSnapshot,
    OrbitRequest,
    SafetyPolicy,
    WeatherReading,
)
from dronectl.speech_clips import SpeechClips
from dronectl.tts import TtsError, render_speech_async

__all__ = [
    "DockTelemetry",
    "DroneTelemetry",
    "FleetView",
    "Flight",
    "Listener",
    "NestController",
    "NestEvent",
    "NestHardware",
    "SpeechClips",
]

ARRIVAL_RADIUS_M = 5.0
TAKEOFF_TIMEOUT_S = 90.0
ARM_RETRY_S = 30.0  # PX4 may refuse to arm for a while after boot or after the cover opens
COVER_TIMEOUT_S = 60.0
GUARD_PERIOD_S = 1.0
OP_CANCEL_WAIT_S = 10.0

_MODE_TO_PHASE_MODE = {
    FlightMode.TAKEOFF: ns.FlightMode.TAKEOFF,
    FlightMode.HOLD: ns.FlightMode.HOLD,
    FlightMode.MISSION: ns.FlightMode.MISSION,
    FlightMode.RETURN_TO_LAUNCH: ns.FlightMode.RETURN,
    FlightMode.LAND: ns.FlightMode.LAND,
    FlightMode.PRECISION_LAND: ns.FlightMode.LAND,
    FlightMode.POSITION: ns.FlightMode.POSITION,
    FlightMode.OFFBOARD: ns.FlightMode.POSITION,
}
_COVER = {
    CoverState.UNKNOWN: ns.CoverState.UNKNOWN,
    CoverState.CLOSED: ns.CoverState.CLOSED,
    CoverState.OPENING: ns.CoverState.OPENING,
    CoverState.OPEN: ns.CoverState.OPEN,
    CoverState.CLOSING: ns.CoverState.CLOSING,
    CoverState.JAMMED: ns.CoverState.STOPPED,
}


def _translate(command: str, nest_id: int, exc: adapter_errors.AdapterError) -> DronectlError:
    if isinstance(exc, adapter_errors.LinkLost):
        return LinkLost(command, nest_id, str(exc))
    if isinstance(exc, adapter_errors.CommandTimeout):
        return CommandTimeout(command, exc.timeout_s, nest_id)
    return CommandFailed(command, str(exc), nest_id)


class NestController:
    def __init__(
        self,
        config: NestConfig,
        policy: SafetyPolicy,
        audit: AuditStore,
        fleet: FleetView,
        clock: Clock,
    ) -> None:
        self.config = config
        self.nest_id = config.id
        self.home = GeoPoint(config.lat, config.lon)
        self._hw: NestHardware | None = None
        self._cruise_configured = False
        self._speech_clips = SpeechClips()
        self.policy = policy
        self.audit = audit
        self.fleet = fleet
        self.clock = clock
        self.state = ns.NestState()
        self.drone = DroneTelemetry()
        self.dock = DockTelemetry()
        self._flight: Flight | None = None
        self.listeners: list[Listener] = []
        self._nest_log = structlog.get_logger("dronectl.nest").bind(nest=self.nest_id)
        self.log = self._nest_log
        self._changed = asyncio.Condition()
        self._op: asyncio.Task[None] | None = None
        self._op_claims = 0  # bumped by every command that takes the flight over (see goto)
        self._tg: asyncio.TaskGroup | None = None
        self._last_drone_status: ns.DroneStatus | None = None
        self._last_dock_status: ns.DockStatus | None = None
        self._returning_for: str | None = None  # why the guard sent the drone home
        self._drain = DrainMeter()
        self._closing_cover = False
        fleet.add(self)

    # --- running ---------------------------------------------------------------------------

    @property
    def flight(self) -> Flight | None:
        """The flight in progress; the nest's log lines carry its id while there is one."""
        return self._flight

    @flight.setter
    def flight(self, flight: Flight | None) -> None:
        self._flight = flight
        self.log = self._nest_log.bind(flight=flight.flight_id) if flight is not None else self._nest_log

    @property
    def hw(self) -> NestHardware:
        if self._hw is None:
            raise LinkLost("command", self.nest_id, "nest not attached yet")
        return self._hw

    async def run(self, hardware: NestHardware, resume_flight: Flight | None = None) -> None:
        """Watch and guard the nest through ``hardware`` until cancelled.

        ``resume_flight``: a flight the audit store says was open when the controller last
        stopped; the controller re-attaches to it and never launches it again.
        """
        if resume_flight is not None and self.flight is None:
            self.flight = resume_flight
            self.log.info("nest.flight_resumed", flight=resume_flight.flight_id)
        self._hw = hardware
        self._cruise_configured = False  # set on the drone at the first launch after (re)attaching
        self._speech_clips = SpeechClips()  # a payload that was away may have lost its clips
        try:
            await self._run()
        finally:
            op = self._op
            if op is not None and not op.done():
                op.cancel()
                await asyncio.wait({op}, timeout=OP_CANCEL_WAIT_S)  # as a TaskGroup would wait for it
            self._hw = None
            self._tg = None
            self.drone = replace(self.drone, link_up=False)
            self.dock = replace(self.dock, link_up=False)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            name = f"nest[{self.nest_id:02d}]"
            tg.create_task(self._watch(self.hw.flight.position(), self._on_position), name=f"{name}.position")
            tg.create_task(self._watch(self.hw.flight.battery(), self._on_battery), name=f"{name}.battery")
            tg.create_task(self._watch(self.hw.flight.armed(), self._on_armed), name=f"{name}.armed")
            tg.create_task(self._watch(self.hw.flight.landed_state(), self._on_landed), name=f"{name}.landed")
            tg.create_task(self._watch(self.hw.flight.flight_mode(), self._on_mode), name=f"{name}.mode")
            tg.create_task(self._watch(self.hw.flight.health(), self._on_health), name=f"{name}.health")
            tg.create_task(self._watch(self.hw.flight.link_state(), self._on_drone_link), name=f"{name}.link")
            tg.create_task(self._watch(self.hw.dock.status(), self._on_dock_status), name=f"{name}.dock")
            tg.create_task(self._watch(self.hw.dock.weather(), self._on_weather), name=f"{name}.weather")
            tg.create_task(
                self._watch(self.hw.dock.link_state(), self._on_dock_link), name=f"{name}.dock_link"
            )
            tg.create_task(self._guard(), name=f"{name}.guard")

    @staticmethod
    async def _watch(stream: AsyncIterator[Any], handler: Callable[[Any], Awaitable[None] | None]) -> None:
        async for value in stream:
            result = handler(value)
            if result is not None:
                await result

    # --- observations ----------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Until ``predicate()`` holds (checked on every telemetry change), or CommandTimeout."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(predicate)
        except TimeoutError:
            raise CommandTimeout(what, timeout_s, self.nest_id) from None

    async def _on_position(self, pos: Position) -> None:
        before = self.drone.position
        speed = self.drone.ground_speed_mps
        now = self.clock.monotonic()
        if before is not None and self._last_pos_mono is not None and now > self._last_pos_mono:
            moved = distance_m(GeoPoint(before.lat_deg, before.lon_deg), GeoPoint(pos.lat_deg, pos.lon_deg))
            speed = moved / (now - self._last_pos_mono)
        self._last_pos_mono = now
        self.drone = replace(self.drone, position=pos, ground_speed_mps=speed)
        if self.flight is not None and self.state.flying:
            await self.audit.record_track(
                TrackSample(
                    self.flight.flight_id,
                    self.clock.wall(),
                    pos.lat_deg,
                    pos.lon_deg,
                    pos.alt_amsl_m,
                    speed,
                    self.drone.battery_pct if self.drone.battery_pct is not None else -1.0,
                )
            )
        await self._notify()

    _last_pos_mono: float | None = None

    async def _on_battery(self, battery: Any) -> None:
        self.drone = replace(self.drone, battery_pct=battery.remaining_pct)
        self._drain.add(self.clock.monotonic(), battery.remaining_pct, self.state.flying)
        await self._notify()

    async def _on_armed(self, armed: bool) -> None:
        self.drone = replace(self.drone, armed=armed)
        await self._drone_status_changed()

    async def _on_landed(self, landed: LandedState) -> None:
        self.drone = replace(self.drone, landed=landed)
        await self._drone_status_changed()

    async def _on_mode(self, mode: FlightMode) -> None:
        self.drone = replace(self.drone, mode=mode)
        await self._drone_status_changed()

    async def _on_health(self, health: Health) -> None:
        self.drone = replace(self.drone, health=health)
        await self._drone_status_changed()

    async def _on_drone_link(self, link: Any) -> None:
        was = self.drone.link_up
        self.drone = replace(self.drone, link_up=link.connected)
        if was and not link.connected:
            self._event("link_lost", "drone link lost", silent_s=link.silent_s)
            await self._apply(ns.LinkLost())
        elif link.connected and not was:
            self._event("link_up", "drone link up")
            await self._apply(ns.LinkUp())
        await self._notify()

    async def _drone_status_changed(self) -> None:
        d = self.drone
        if d.armed is None or d.landed is LandedState.UNKNOWN:
            await self._notify()
            return
        status = ns.DroneStatus(
            armed=d.armed,
            in_air=d.landed in (LandedState.IN_AIR, LandedState.TAKING_OFF, LandedState.LANDING),
            ready_to_arm=d.health is not None and d.health.armable,
            mode=_MODE_TO_PHASE_MODE.get(d.mode, ns.FlightMode.UNKNOWN),
        )
        if status != self._last_drone_status:
            self._last_drone_status = status
            await self._apply(status)
        await self._notify()

    async def _on_dock_status(self, status: DockStatus) -> None:
        self.dock = replace(self.dock, status=status)
        event = ns.DockStatus(
            cover=_COVER[status.cover],
            drone_in_dock=status.drone_in_dock,
            charging=status.charger is ChargerState.CHARGING,
        )
        if event != self._last_dock_status:
            self._last_dock_status = event
            await self._apply(event)
        await self._notify()

    async def _on_weather(self, weather: DockWeather) -> None:
        self.dock = replace(self.dock, weather=weather)
        await self._notify()

    async def _on_dock_link(self, link: Any) -> None:
        was = self.dock.link_up
        self.dock = replace(self.dock, link_up=link.connected)
        if was and not link.connected:
            self._event("link_lost", "dock link lost", silent_s=link.silent_s)
        elif link.connected and not was:
            self._event("link_up", "dock link up")
        await self._notify()

    # --- state machine ---------------------------------------------------------------------

    async def _apply(self, event: ns.Event) -> ns.Transition:
        t = ns.transition(self.state, event)
        if not t.accepted:
            self.log.info("nest.event_rejected", rejected=type(event).__name__, cause=t.cause)
            return t
        self.state = t.state
        if t.phase_changed:
            self.log.info(
                "nest.transition", from_phase=t.before.phase.value, to=t.state.phase.value, cause=t.cause
            )
            await self.audit.record_transition(
                TransitionRecord(
                    self.nest_id, self.clock.wall(), t.before.phase.value, t.state.phase.value, t.cause
                )
            )
            self._event("phase", t.cause, phase=t.state.phase.value, previous=t.before.phase.value)
            await self._after_transition(t)
        await self._notify()
        return t

    async def _after_transition(self, t: ns.Transition) -> None:
        phase = t.state.phase
        if phase is ns.NestPhase.POST_FLIGHT and t.before.phase in ns.AIRBORNE:
            await self._flight_over(FlightOutcome.COMPLETED, "landed in the dock")
            self._spawn(self._close_cover_after_landing(), "post_flight")
        elif phase is ns.NestPhase.FAULT and t.before.phase in ns.AIRBORNE:
            await self._flight_over(FlightOutcome.LANDED_AWAY, t.cause)
        elif phase is ns.NestPhase.RETURNING and t.before.phase is not ns.NestPhase.RETURNING:
            await self._flight_event("returning", t.cause)
        elif phase is ns.NestPhase.ON_STATION:
            await self._flight_event("on_station", t.cause)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``coro`` in the nest's TaskGroup; dropped (closed, not leaked) once the nest stops."""
        if self._tg is None:
            coro.close()
            return
        wrapper = self._logged(coro, what)
        try:
            self._tg.create_task(wrapper, name=f"nest[{self.nest_id:02d}].{what}")
        except RuntimeError:  # the TaskGroup is shutting down: the nest is stopping
            wrapper.close()
            coro.close()

    async def _logged(self, coro: Awaitable[None], what: str) -> None:
        try:
            await coro
        except DronectlError as exc:
            self.log.warning("nest.task_failed", task=what, error=str(exc))
            self._event("fault", f"{what}: {exc}")

    async def _close_cover_after_landing(self) -> None:
        await self.wait_for(lambda: self.drone.armed is False, 30.0, "wait for disarm")
        await self._close_cover()

    async def _close_cover(self) -> None:
        if self._closing_cover:
            return
        self._closing_cover = True
        try:
            await self._call("close cover", self.hw.dock.close_cover())
            await self._apply(ns.CoverClosed())
        finally:
            self._closing_cover = False

    # --- events and flights ----------------------------------------------------------------

    def _event(self, kind: str, message: str, **data: Any) -> None:
        event = NestEvent(self.nest_id, kind, message, dict(data))
        for listener in list(self.listeners):
            listener(event)

    async def _flight_event(self, kind: str, message: str, **data: Any) -> None:
        """Record the event with the flight, then tell the listeners: whatever was announced is
        in the audit store (a kill -9 right after loses nothing that anyone was told)."""
        if self.flight is not None:
            await self.audit.record_event(
                FlightEvent(self.flight.flight_id, self.clock.wall(), kind, message, data or None)
            )
        self._event(kind, message, **data)

    async def _flight_over(self, outcome: FlightOutcome, note: str) -> None:
        if self.flight is None:
            return
        flight, self.flight = self.flight, None
        self._returning_for = None
        await self.audit.record_event(FlightEvent(flight.flight_id, self.clock.wall(), "landed", note))
        await self.audit.end_flight(FlightEnd(flight.flight_id, self.clock.wall(), outcome, note))
        self._event("landed", note, flight_id=flight.flight_id, outcome=outcome.value)

    # --- snapshot for the safety checks ----------------------------------------------------

    def snapshot(self) -> NestSnapshot:
        w = self.dock.weather
        weather = (
            WeatherReading(
                w.wind_speed_mps, w.wind_gust_mps, w.wind_from_deg, w.precipitation_mmph, w.air_temperature_c
            )
            if w is not None and self.dock.link_up
            else None
        )
        faults: list[str] = []
        status = self.dock.status
        if status is not None:
            faults += [f.value.replace("_", " ") for f in sorted(status.faults, key=lambda f: f.value)]
            if status.cover is CoverState.JAMMED and "cover jammed" not in faults:
                faults.append("cover jammed")
        if not self.dock.link_up and self.state.phase is not ns.NestPhase.OFFLINE:
            faults.append("dock link lost")
        return NestSnapshot(
            nest_id=self.nest_id,
            name=self.config.name,
            home=self.home,
            state=self.state,
            battery_pct=self.drone.battery_pct,
            weather=weather,
            device_faults=tuple(faults),
            drain_pct_per_min=self._drain.rate_pct_per_min(),
        )

    def drone_position(self) -> DronePosition | None:
        pos = self.drone.position
        if pos is None:
            return None
        return DronePosition(GeoPoint(pos.lat_deg, pos.lon_deg), pos.alt_rel_m)

    def blockers_for_launch(self, target: GeoPoint, alt_above_home_m: float) -> tuple[Blocker, ...]:
        request = LaunchRequest(target, alt_above_home_m)
        return self.policy.check_launch(self.snapshot(), request, self.fleet.others(self.nest_id))

    # --- operations ------------------------------------------------------------------------

    async def _call(self, what: str, action: Awaitable[None]) -> None:
        try:
            await action
        except adapter_errors.AdapterError as exc:
            raise _translate(what, self.nest_id, exc) from exc

    def _start_op(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Run ``coro`` as the nest's operation, cancelling the one it supersedes."""
        if self._tg is None:
            coro.close()
            raise CommandFailed(what, "nest controller not running", self.nest_id)
        if self._op is not None and not self._op.done():
            self._op.cancel()
        # Not in the nest's TaskGroup: an operation that fails (a command timing out, a link lost)
        # is reported and keeps its exception for whoever awaits it, but never takes the nest's
        # watchers and guard down with it. run() cancels it when the nest stops.
        op = asyncio.get_running_loop().create_task(coro, name=f"nest[{self.nest_id:02d}].op.{what}")
        op.add_done_callback(functools.partial(self._op_done, what))
        self._op = op
        return op

    def _op_done(self, what: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, DronectlError):
            self.log.warning("nest.operation_failed", operation=what, error=str(exc))
        else:
            self.log.error("nest.operation_crashed", operation=what, error=repr(exc), exc_info=exc)
        self._event("operation_failed", f"{what}: {exc}", operation=what)

    async def launch(
        self,
        target: GeoPoint,
        alt_above_home_m: float,
        command_id: str | None = None,
        speed_mps: float | None = None,
    ) -> asyncio.Task[None]:
        """Check, then start the launch; returns the task that flies it to station.

        Raises CommandRefused (nothing sent) when any blocker holds.
        """
        blockers = self.blockers_for_launch(target, alt_above_home_m)
        if blockers:
            self._event("refused", "; ".join(b.message for b in blockers), action="launch")
            raise CommandRefused("launch", blockers)
        t = await self._apply(ns.LaunchRequested(f"to {target} at {alt_above_home_m:.0f} m"))
        if not t.accepted:
            raise CommandRefused("launch", [Blocker(BlockerCode.NEST_NOT_READY, t.cause)])
        flight = Flight(
            uuid.uuid4().hex[:12], target, alt_above_home_m, self.clock.monotonic(), command_id, speed_mps
        )
        self.flight = flight
        await self.audit.start_flight(
            FlightStart(
                flight.flight_id,
                self.nest_id,
                self.clock.wall(),
                command_id,
                target.lat_deg,
                target.lon_deg,
                alt_above_home_m,
            )
        )
        return self._start_op(self._fly_launch(flight), "launch")

    async def _fly_launch(self, flight: Flight) -> None:
        assert flight.target is not None
        try:
            problems = self._preflight_problems()
            if not problems and not self._cruise_configured:
                # The safety checks plan with the energy model's cruise speed: the drone must fly it
                # (out, on missions and on its own RTL), or the battery estimates are wrong.
                cruise = self.policy.model.cruise_airspeed_mps
                try:
                    await self._call("set cruise speed", self.hw.flight.set_cruise_speed(cruise))
                    self._cruise_configured = True
                except DronectlError as exc:
                    problems.append(f"cruise speed {cruise:g} m/s not set on the drone ({exc})")
            if problems:
                await self._apply(ns.PreflightFailed("; ".join(problems)))
                raise CommandFailed("launch", "preflight: " + "; ".join(problems), self.nest_id)
            await self._apply(ns.PreflightPassed())
            await self._flight_event("preflight_passed", "preflight checklist passed")
            status = self.dock.status
            if status is not None and status.charger is ChargerState.CHARGING:
                await self._call("stop charging", self.hw.dock.set_charging(False))
            await self._call("open cover", self.hw.dock.open_cover())
            await self._apply(ns.CoverOpened())
            await self._arm_with_retry()
            await self._call("take off", self.hw.flight.takeoff(flight.alt_above_home_m))
            await self.wait_for(lambda: self.state.phase in ns.AIRBORNE, TAKEOFF_TIMEOUT_S, "take off")
            await self._flight_event("launched", f"airborne from nest {self.nest_id}")
            await self._wait_climb(flight.alt_above_home_m)
        except (DronectlError, asyncio.CancelledError) as exc:
            if (
                self.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING)
                and not self.drone_in_air()
            ):
                await self._abort_on_ground(flight, str(exc) or "cancelled")
            raise
        await self._fly_to_station(flight.target, flight.alt_above_home_m, flight.speed_mps)

    async def _fly_to_station(
        self, target: GeoPoint, alt_above_home_m: float, speed_mps: float | None = None
    ) -> None:
        goal = GeoTarget(target.lat_deg, target.lon_deg, alt_above_home_m, AltitudeReference.RELATIVE)
        await self._call("go to", self.hw.flight.goto(goal, speed_mps))
        await self._flight_event("en_route", f"flying to {target}", lat=target.lat_deg, lon=target.lon_deg)
        await self.wait_for(
            lambda: self._distance_to(target) < ARRIVAL_RADIUS_M or not self.state.flying,
            3600.0,
            "reach station",
        )
        if self.state.phase is ns.NestPhase.EN_ROUTE:
            await self._apply(ns.ReachedStation())

    async def _wait_climb(self, alt_above_home_m: float) -> None:
        def climbed() -> bool:
            pos = self.drone.position
            return (pos is not None and pos.alt_rel_m >= alt_above_home_m * 0.9) or not self.state.flying

        await self.wait_for(climbed, TAKEOFF_TIMEOUT_S, "climb")

    async def _arm_with_retry(self) -> None:
        deadline = self.clock.monotonic() + ARM_RETRY_S
        while True:
            try:
                await self.hw.flight.arm()
                return
            except adapter_errors.CommandRejected as exc:
                if not exc.result.retryable or self.clock.monotonic() > deadline:
                    raise _translate("arm", self.nest_id, exc) from exc
            except adapter_errors.AdapterError as exc:
                raise _translate("arm", self.nest_id, exc) from exc
            # PX4 answers TEMPORARILY_REJECTED until its checks pass: wait for the next health report
            with contextlib.suppress(CommandTimeout):
                await self.wait_for(lambda: False, 1.0, "arm retry")

    async def _abort_on_ground(self, flight: Flight, reason: str) -> None:
        with contextlib.suppress(DronectlError):
            if self.drone.armed:
                await self._call("disarm", self.hw.flight.disarm())
        await self._apply(ns.LaunchAborted(reason))
        self.flight = None
        await self.audit.end_flight(
            FlightEnd(flight.flight_id, self.clock.wall(), FlightOutcome.ABORTED, reason)
        )
        self._event("launch_aborted", reason, flight_id=flight.flight_id)
        if self.state.phase is ns.NestPhase.POST_FLIGHT:
            self._spawn(self._close_cover(), "close_cover")

    def drone_in_air(self) -> bool:
        return self.drone.landed in (LandedState.IN_AIR, LandedState.TAKING_OFF, LandedState.LANDING)

    def _distance_to(self, target: GeoPoint) -> float:
        pos = self.drone.position
        if pos is None:
            return float("inf")
        return distance_m(GeoPoint(pos.lat_deg, pos.lon_deg), target)

    def _preflight_problems(self) -> list[str]:
        problems = []
        if not self.drone.link_up:
            problems.append("drone link down")
        if not self.dock.link_up:
            problems.append("dock link down")
        if self.drone.health is None:
            problems.append("drone health not reported")
        elif not self.drone.health.global_position_ok:
            problems.append("no GPS position")
        if self.drone.armed:
            problems.append("drone already armed")
        status = self.dock.status
        if status is None:
            problems.append("dock status not reported")
        elif not status.drone_in_dock:
            problems.append("drone not in the dock")
        return problems

    def _require_airborne(self, action: str) -> DronePosition:
        position = self.drone_position()
        if not self.state.flying or self.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING):
            raise CommandRefused(
                action, [Blocker(BlockerCode.NOT_AIRBORNE, f"drone is {self.state.phase.value}")]
            )
        if position is None:
            raise CommandRefused(action, [Blocker(BlockerCode.NOT_AIRBORNE, "drone position not known")])
        return position

    async def goto(
        self, target: GeoPoint, alt_above_home_m: float, speed_mps: float | None = None
    ) -> asyncio.Task[None]:
        drone = self._require_airborne("go to")
        blockers = self.policy.check_goto(
            self.snapshot(), drone, GotoRequest(target, alt_above_home_m), self.fleet.others(self.nest_id)
        )
        if blockers:
            self._event("refused", "; ".join(b.message for b in blockers), action="goto")
            raise CommandRefused("go to", blockers)
        self._op_claims += 1
        claim = self._op_claims
        await self._apply(ns.GotoRequested(f"to {target}"))
        if claim != self._op_claims:  # a later command took the flight over while this one was recorded
            raise CommandFailed("go to", "superseded by a later command before it started", self.nest_id)
        if self.flight is not None:
            self.flight = replace(
                self.flight, target=target, alt_above_home_m=alt_above_home_m, speed_mps=speed_mps
            )
        return self._start_op(self._fly_to_station(target, alt_above_home_m, speed_mps), "goto")

    async def orbit(
        self, centre: GeoPoint, radius_m: float, alt_above_home_m: float, speed_mps: float = 5.0
    ) -> None:
        drone = self._require_airborne("orbit")
        blockers = self.policy.check_orbit(
            self.snapshot(),
            drone,
            OrbitRequest(centre, radius_m, alt_above_home_m),
            self.fleet.others(self.nest_id),
        )
        if blockers:
            self._event("refused", "; ".join(b.message for b in blockers), action="orbit")
            raise CommandRefused("orbit", blockers)
        self._op_claims += 1
        if self._op is not None and not self._op.done():
            self._op.cancel()
        goal = GeoTarget(centre.lat_deg, centre.lon_deg, alt_above_home_m, AltitudeReference.RELATIVE)
        await self._call("orbit", self.hw.flight.orbit(goal, radius_m, speed_mps))
        if self.flight is not None:
            self.flight = replace(self.flight, target=centre)
        await self._flight_event("orbit", f"orbiting {centre} at {radius_m:.0f} m", radius_m=radius_m)

    async def hold(self) -> None:
        self._require_airborne("hold")
        self._op_claims += 1
        if self._op is not None and not self._op.done():
            self._op.cancel()
        await self._call("hold", self.hw.flight.hold())
        await self._flight_event("hold", "holding position")

    async def return_home(self, reason: str = "operator") -> None:
        if not self.state.flying:
            raise CommandRefused(
                "return", [Blocker(BlockerCode.NOT_AIRBORNE, f"drone is {self.state.phase.value}")]
            )
        if self.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING) and not self.drone_in_air():
            await self.abort(reason)
            return
        self._op_claims += 1
        if self._op is not None and not self._op.done():
            self._op.cancel()
        await self._call("return", self.hw.flight.return_to_launch())
        await self._apply(ns.ReturnRequested(reason))

    async def land(self) -> None:
        self._require_airborne("land")
        self._op_claims += 1
        if self._op is not None and not self._op.done():
            self._op.cancel()
        await self._call("land", self.hw.flight.land())
        await self._apply(ns.LandingStarted())

    async def abort(self, reason: str = "operator abort") -> None:
        """Stop a launch on the ground; in the air, come home."""
        if self.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING) and not self.drone_in_air():
            op = self._op
            if op is not None and not op.done():
                op.cancel()
                with contextlib.suppress(asyncio.CancelledError, DronectlError):
                    await op
            elif self.flight is not None:
                await self._abort_on_ground(self.flight, reason)
            return
        if self.state.flying:
            await self.return_home(reason)
            return
        raise CommandRefused(
            "abort", [Blocker(BlockerCode.NOT_AIRBORNE, f"nothing to abort ({self.state.phase.value})")]
        )

    async def set_maintenance(self, on: bool, reason: str = "") -> None:
        t = await self._apply(ns.MaintenanceSet(on, reason))
        if not t.accepted:
            raise CommandRefused("maintenance", [Blocker(BlockerCode.NEST_BUSY, t.cause)])

    async def say(self, text: str, lang: str = "zh", volume_pct: int | None = None, repeat: int = 0) -> None:
        """Speech rendered here (espeak-ng), sent to the loudspeaker as a clip, and played; the same
        text again plays the clip already on the payload. Without a local engine, the payload's own
        text-to-speech speaks it."""
        key = (text, lang)
        clip_id = self._speech_clips.get(key)
        if clip_id is None:
            try:
                pcm, rate = await render_speech_async(text, lang)
            except TtsError as exc:
                self.log.warning("nest.tts_unavailable", error=str(exc))
                await self._call(
                    "speak", self.hw.payload.say(text, lang=lang, volume_pct=volume_pct, repeat=repeat)
                )
                await self._flight_event("speaker", text, lang=lang, rendered_by="payload")
                return
            clip_id = self._speech_clips.store(key)
            await self._call("upload speech", self.hw.payload.upload_clip(AudioClip(clip_id, pcm, rate)))
        try:
            await self._call(
                "speak", self.hw.payload.play_clip(clip_id, repeat=repeat, volume_pct=volume_pct)
            )
        except CommandFailed:
            self._speech_clips.forget(
                key
            )  # the payload may have lost it (restarted): render it again next time
            raise
        await self._flight_event("speaker", text, lang=lang, clip_id=clip_id)

    async def stop_speaker(self) -> None:
        await self._call("stop speaker", self.hw.payload.stop_speaker())

    async def set_light(self, pattern: LightPattern, brightness_pct: int = 100) -> None:
        await self._call("light", self.hw.payload.set_light(pattern, brightness_pct))
        await self._flight_event("light", f"light {pattern.value}", pattern=pattern.value)

    # --- in-flight guard -------------------------------------------------------------------

    async def _guard(self) -> None:
        """Battery reserve and geofence, checked on every telemetry change (at most 1 Hz)."""
        while True:
            with contextlib.suppress(CommandTimeout):
                await self.wait_for(lambda: False, GUARD_PERIOD_S, "guard tick")
            reason = self._guard_reason()
            if reason is None or self._returning_for is not None:
                continue
            self._returning_for = reason
            self.log.warning("nest.guard_return", reason=reason)
            await self._flight_event("returning", reason, automatic=True)
            try:
                await self.return_home(reason)
            except DronectlError as exc:
                self._returning_for = None
                self.log.warning("nest.guard_return_failed", error=str(exc))

    def _guard_reason(self) -> str | None:
        return guard_reason(
            self.state.phase,
            self.drone.position,
            self.drone.battery_pct,
            self.dock.weather,
            self.home,
            self.policy,
            self._drain.rate_pct_per_min(),
        )
