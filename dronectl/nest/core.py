"""What one nest controller keeps true: the nest's state, its telemetry, its events and flights.

:class:`NestCore` holds the latest telemetry, derives the nest's phase through the state machine
(``dronectl.domain.nest_state``), records every transition and the flight's events in the audit
store before telling the listeners, closes the dock after a landing, and gives the snapshot the
safety checks read. The telemetry watchers (``telemetry``), the flight operations
(``flight_ops``), the in-flight guard (``guard``) and the payload (``payload``) work on it;
``controller.NestController`` is one and puts them together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from adapters import errors as adapter_errors
from adapters.protocols import CommandResult, CoverState, LandedState
from dronectl.audit import AuditStore, FlightEnd, FlightEvent, FlightOutcome
from dronectl.audit.records import TransitionRecord
from dronectl.domain import nest_state as ns
from dronectl.domain.clock import Clock
from dronectl.domain.config import NestConfig
from dronectl.domain.drain import DrainMeter
from dronectl.domain.errors import CommandFailed, CommandTimeout, DronectlError, LinkLost
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import (
    Blocker,
    DronePosition,
    LaunchRequest,
    NestSnapshot,
    SafetyPolicy,
    WeatherReading,
)
from dronectl.nest.types import (
    DockTelemetry,
    DroneTelemetry,
    Flight,
    Listener,
    NestEvent,
    NestHardware,
    OtherFlights,
)

RETRY_WITHIN_S = 60.0  # one action, resent through lost answers and a dropped link, at most this long


def transient(exc: adapter_errors.AdapterError) -> bool:
    """A failure worth sending the same (idempotent) command again for: no answer, a link that
    dropped, a component busy or refusing only for now."""
    if isinstance(exc, adapter_errors.LinkLost | adapter_errors.CommandTimeout):
        return True
    return isinstance(exc, adapter_errors.CommandRejected) and (
        exc.result.retryable or exc.result is CommandResult.LINK_LOST
    )


def translate(command: str, nest_id: int, exc: adapter_errors.AdapterError) -> DronectlError:
    """An adapter's error as the service's error for ``command``."""
    if isinstance(exc, adapter_errors.LinkLost):
        return LinkLost(command, nest_id, str(exc))
    if isinstance(exc, adapter_errors.CommandTimeout):
        return CommandTimeout(command, exc.timeout_s, nest_id)
    return CommandFailed(command, str(exc), nest_id)


class NestCore:
    def __init__(
        self,
        config: NestConfig,
        policy: SafetyPolicy,
        audit: AuditStore,
        fleet: OtherFlights,
        clock: Clock,
    ) -> None:
        self.config = config
        self.nest_id = config.id
        self.home = GeoPoint(config.lat, config.lon)
        self._hw: NestHardware | None = None
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
        self._tg: asyncio.TaskGroup | None = None
        self.returning_for: str | None = None  # why the guard sent the drone home
        self.drain = DrainMeter()
        self._closing_cover = False
        # why the nest cannot get back to ready by itself, and what an operator can do (shown as a
        # device fault, so it blocks launches and is published); None while all is well
        self.recovery_problem: str | None = None
        self.drone_faults: tuple[str, ...] = ()  # what the drone reports failed (``faults.FaultReports``)

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

    @property
    def running(self) -> bool:
        """The nest runs (its TaskGroup is there to hold its tasks)."""
        return self._tg is not None

    # --- observations ----------------------------------------------------------------------

    async def notify(self) -> None:
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

    def drone_in_air(self) -> bool:
        return self.drone.landed in (LandedState.IN_AIR, LandedState.TAKING_OFF, LandedState.LANDING)

    # --- state machine ---------------------------------------------------------------------

    async def apply(self, event: ns.Event) -> ns.Transition:
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
            self.event("phase", t.cause, phase=t.state.phase.value, previous=t.before.phase.value)
            await self._after_transition(t)
        await self.notify()
        return t

    async def _after_transition(self, t: ns.Transition) -> None:
        phase = t.state.phase
        if phase is ns.NestPhase.POST_FLIGHT and t.before.phase in ns.AIRBORNE:
            await self._flight_over(FlightOutcome.COMPLETED, "landed in the dock")
            self.spawn(self._close_cover_after_landing(), "post_flight")
        elif phase is ns.NestPhase.FAULT and t.before.phase in ns.AIRBORNE:
            await self._flight_over(FlightOutcome.LANDED_AWAY, t.cause)
        elif phase is ns.NestPhase.RETURNING and t.before.phase is not ns.NestPhase.RETURNING:
            await self.flight_event("returning", t.cause)
        elif phase is ns.NestPhase.ON_STATION:
            await self.flight_event("on_station", t.cause)

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
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
            self.event("fault", f"{what}: {exc}")

    async def _close_cover_after_landing(self) -> None:
        await self.wait_for(lambda: self.drone.armed is False, 30.0, "wait for disarm")
        await self.close_cover()

    async def close_cover(self) -> None:
        if self._closing_cover:
            return
        self._closing_cover = True
        try:
            await self.resilient(
                "close cover",
                self.hw.dock.close_cover,
                done=lambda: self.dock.status is not None and self.dock.status.cover is CoverState.CLOSED,
                link=lambda: self.dock.link_up,
            )
            await self.apply(ns.CoverClosed())
        finally:
            self._closing_cover = False

    async def call(self, what: str, action: Awaitable[None]) -> None:
        """Await an adapter's action; its error as the service's (``translate``)."""
        try:
            await action
        except adapter_errors.AdapterError as exc:
            raise translate(what, self.nest_id, exc) from exc

    async def resilient(
        self,
        what: str,
        action: Callable[[], Awaitable[None]],
        done: Callable[[], bool] | None,
        link: Callable[[], bool],
        within_s: float = RETRY_WITHIN_S,
    ) -> None:
        """Carry out an idempotent ``action`` through lost packets: after a failure that may be
        only the link's (``transient``), the component's state is checked (``done``: it happened,
        only the answer was lost) and the action sent again once the link (``link``) is up, until
        ``within_s`` has passed. A refusal (cover jammed, arming denied) is not retried."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within_s
        attempt = 0
        while True:
            attempt += 1
            try:
                await action()
                return
            except adapter_errors.AdapterError as exc:
                if done is not None and done():
                    self.log.info("nest.answer_lost", action=what, attempt=attempt, error=str(exc))
                    return
                if not transient(exc) or loop.time() >= end:
                    raise translate(what, self.nest_id, exc) from exc
                self.log.info("nest.retry", action=what, attempt=attempt, error=str(exc))
                failure = exc
            try:  # the link back (a lost heartbeat or two), and the state it reports
                await self.wait_for(link, max(0.1, end - loop.time()), f"{what}: link")
            except CommandTimeout:
                raise translate(what, self.nest_id, failure) from failure
            with contextlib.suppress(CommandTimeout):
                await self.wait_for(lambda: done is not None and done(), 0.2, f"{what}: state")
            if done is not None and done():
                return

    # --- events and flights ----------------------------------------------------------------

    def event(self, kind: str, message: str, **data: Any) -> None:
        event = NestEvent(self.nest_id, kind, message, dict(data))
        for listener in list(self.listeners):
            listener(event)

    async def flight_event(self, kind: str, message: str, **data: Any) -> None:
        """Record the event with the flight, then tell the listeners: whatever was announced is
        in the audit store (a kill -9 right after loses nothing that anyone was told)."""
        if self.flight is not None:
            await self.audit.record_event(
                FlightEvent(self.flight.flight_id, self.clock.wall(), kind, message, data or None)
            )
        self.event(kind, message, **data)

    async def _flight_over(self, outcome: FlightOutcome, note: str) -> None:
        if self.flight is None:
            return
        flight, self.flight = self.flight, None
        self.returning_for = None
        await self.audit.record_event(FlightEvent(flight.flight_id, self.clock.wall(), "landed", note))
        await self.audit.end_flight(FlightEnd(flight.flight_id, self.clock.wall(), outcome, note))
        self.event("landed", note, flight_id=flight.flight_id, outcome=outcome.value)

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
        faults += self.drone_faults
        if self.recovery_problem is not None:
            faults.append(self.recovery_problem)
        return NestSnapshot(
            nest_id=self.nest_id,
            name=self.config.name,
            home=self.home,
            state=self.state,
            battery_pct=self.drone.battery_pct,
            weather=weather,
            device_faults=tuple(faults),
            drain_pct_per_min=self.drain.rate_pct_per_min(),
        )

    def drone_position(self) -> DronePosition | None:
        pos = self.drone.position
        if pos is None:
            return None
        return DronePosition(GeoPoint(pos.lat_deg, pos.lon_deg), pos.alt_rel_m)

    def blockers_for_launch(self, target: GeoPoint, alt_above_home_m: float) -> tuple[Blocker, ...]:
        request = LaunchRequest(target, alt_above_home_m)
        return self.policy.check_launch(self.snapshot(), request, self.fleet.others(self.nest_id))
