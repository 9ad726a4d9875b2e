"""The nest's flight operations: launch, go to, orbit, hold, return, land and abort.

:class:`FlightOperations` checks each against the safety policy (a refusal lists every reason,
nothing sent), then carries it out on the nest's adapters: the launch from the dock (preflight,
cover, arming, take-off, climb, the flight to station), the operation in progress (at most one;
a newer command that supersedes it cancels it), and the abort of a launch still on the ground.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from adapters import errors as adapter_errors
from adapters.protocols import (
    AltitudeReference,
    ChargerState,
    CoverState,
    DockStatus,
    FlightMode,
    GeoTarget,
    LandedState,
)
from dronectl.audit import FlightEnd, FlightOutcome, FlightStart
from dronectl.domain import nest_state as ns
from dronectl.domain.errors import CommandFailed, CommandRefused, CommandTimeout, DronectlError
from dronectl.domain.geo import GeoPoint, distance_m
from dronectl.domain.safety import Blocker, BlockerCode, DronePosition, GotoRequest, OrbitRequest
from dronectl.nest.core import NestCore, transient, translate
from dronectl.nest.types import Flight

ARRIVAL_RADIUS_M = 5.0
TAKEOFF_TIMEOUT_S = 90.0
ARM_RETRY_S = 30.0  # PX4 may refuse to arm for a while after boot or after the cover opens
COVER_TIMEOUT_S = 60.0
MODE_TIMEOUT_S = 10.0
# PX4 arms only in a mode that does not prevent arming (commander's mode_req_prevent_arming: Return,
# Land, Precision Land, Orbit, Follow Target ...; the manual modes need a stick). A drone left in
# Return after its last flight is put in Hold (AUTO.LOITER) first. Takeoff is armable too, but a
# drone armed in it climbs at once to PX4's own take-off height: the launch arms in Hold only.
ARMABLE_MODES = frozenset({FlightMode.HOLD})
OP_CANCEL_WAIT_S = 10.0


class FlightOperations:
    """The flight operations of one nest, and the operation in progress."""

    def __init__(self, nest: NestCore) -> None:
        self._nest = nest
        self._cruise_configured = False
        self._op: asyncio.Task[None] | None = None
        self._op_claims = 0  # bumped by every command that takes the flight over (see goto)

    def attached(self) -> None:
        """The nest's adapters were (re)attached: the cruise speed is set again at the next launch."""
        self._cruise_configured = False

    async def stop(self) -> None:
        """Cancel the operation in progress, and wait for it (as a TaskGroup would)."""
        op = self._op
        if op is not None and not op.done():
            op.cancel()
            await asyncio.wait({op}, timeout=OP_CANCEL_WAIT_S)

    def _start_op(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Run ``coro`` as the nest's operation, cancelling the one it supersedes."""
        nest_id = self._nest.nest_id
        if not self._nest.running:
            coro.close()
            raise CommandFailed(what, "nest controller not running", nest_id)
        if self._op is not None and not self._op.done():
            self._op.cancel()
        # Not in the nest's TaskGroup: an operation that fails (a command timing out, a link lost)
        # is reported and keeps its exception for whoever awaits it, but never takes the nest's
        # watchers and guard down with it. run() cancels it when the nest stops.
        op = asyncio.get_running_loop().create_task(coro, name=f"nest[{nest_id:02d}].op.{what}")
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
            self._nest.log.warning("nest.operation_failed", operation=what, error=str(exc))
        else:
            self._nest.log.error("nest.operation_crashed", operation=what, error=repr(exc), exc_info=exc)
        self._nest.event("operation_failed", f"{what}: {exc}", operation=what)

    def _supersede(self) -> None:
        """A command takes the flight over: the operation in progress is cancelled."""
        self._op_claims += 1
        if self._op is not None and not self._op.done():
            self._op.cancel()

    # --- launch ----------------------------------------------------------------------------

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
        nest = self._nest
        blockers = nest.blockers_for_launch(target, alt_above_home_m)
        if blockers:
            nest.event("refused", "; ".join(b.message for b in blockers), action="launch")
            raise CommandRefused("launch", blockers)
        t = await nest.apply(ns.LaunchRequested(f"to {target} at {alt_above_home_m:.0f} m"))
        if not t.accepted:
            raise CommandRefused("launch", [Blocker(BlockerCode.NEST_NOT_READY, t.cause)])
        flight = Flight(
            uuid.uuid4().hex[:12], target, alt_above_home_m, nest.clock.monotonic(), command_id, speed_mps
        )
        nest.flight = flight
        await nest.audit.start_flight(
            FlightStart(
                flight.flight_id,
                nest.nest_id,
                nest.clock.wall(),
                command_id,
                target.lat_deg,
                target.lon_deg,
                alt_above_home_m,
            )
        )
        return self._start_op(self._fly_launch(flight), "launch")

    async def _fly_launch(self, flight: Flight) -> None:
        assert flight.target is not None
        nest = self._nest
        try:
            problems = self._preflight_problems()
            if not problems and not self._cruise_configured:
                # The safety checks plan with the energy model's cruise speed: the drone must fly it
                # (out, on missions and on its own RTL), or the battery estimates are wrong.
                cruise = nest.policy.model.cruise_airspeed_mps
                try:
                    await self._drone("set cruise speed", lambda: nest.hw.flight.set_cruise_speed(cruise))
                    self._cruise_configured = True
                except DronectlError as exc:
                    problems.append(f"cruise speed {cruise:g} m/s not set on the drone ({exc})")
            if problems:
                await nest.apply(ns.PreflightFailed("; ".join(problems)))
                raise CommandFailed("launch", "preflight: " + "; ".join(problems), nest.nest_id)
            await self.into_armable_mode()
            await nest.apply(ns.PreflightPassed())
            await nest.flight_event("preflight_passed", "preflight checklist passed")
            status = nest.dock.status
            if status is not None and status.charger is ChargerState.CHARGING:
                await self._dock(
                    "stop charging",
                    lambda: nest.hw.dock.set_charging(False),
                    lambda: self._dock_status_is(lambda s: s.charger is not ChargerState.CHARGING),
                )
            await self._dock(
                "open cover",
                nest.hw.dock.open_cover,
                lambda: self._dock_status_is(lambda s: s.cover is CoverState.OPEN),
            )
            await nest.apply(ns.CoverOpened())
            await self._arm_with_retry()
            await self._drone(
                "take off",
                lambda: nest.hw.flight.takeoff(flight.alt_above_home_m),
                lambda: nest.drone.landed in (LandedState.TAKING_OFF, LandedState.IN_AIR),
            )
            await nest.wait_for(lambda: nest.state.phase in ns.AIRBORNE, TAKEOFF_TIMEOUT_S, "take off")
            await nest.flight_event("launched", f"airborne from nest {nest.nest_id}")
            await self._wait_climb(flight.alt_above_home_m)
        except (DronectlError, asyncio.CancelledError) as exc:
            if (
                nest.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING)
                and not nest.drone_in_air()
            ):
                await self._abort_on_ground(flight, str(exc) or "cancelled")
            raise
        await self._fly_to_station(flight.target, flight.alt_above_home_m, flight.speed_mps)

    async def _fly_to_station(
        self, target: GeoPoint, alt_above_home_m: float, speed_mps: float | None = None
    ) -> None:
        nest = self._nest
        goal = GeoTarget(target.lat_deg, target.lon_deg, alt_above_home_m, AltitudeReference.RELATIVE)
        await self._drone("go to", lambda: nest.hw.flight.goto(goal, speed_mps))
        await nest.flight_event("en_route", f"flying to {target}", lat=target.lat_deg, lon=target.lon_deg)
        await nest.wait_for(
            lambda: self._distance_to(target) < ARRIVAL_RADIUS_M or not nest.state.flying,
            3600.0,
            "reach station",
        )
        if nest.state.phase is ns.NestPhase.EN_ROUTE:
            await nest.apply(ns.ReachedStation())

    async def _wait_climb(self, alt_above_home_m: float) -> None:
        nest = self._nest

        def climbed() -> bool:
            pos = nest.drone.position
            return (pos is not None and pos.alt_rel_m >= alt_above_home_m * 0.9) or not nest.state.flying

        await nest.wait_for(climbed, TAKEOFF_TIMEOUT_S, "climb")

    async def into_armable_mode(self) -> None:
        """Put the drone in Hold unless its mode is armable (PX4 refuses to arm in Return: "Arming
        denied: Return mode not armable"); returns once the drone reports the mode."""
        nest = self._nest
        if nest.drone.mode in ARMABLE_MODES:
            return
        left = nest.drone.mode
        await self._drone("set Hold mode", nest.hw.flight.hold, lambda: nest.drone.mode in ARMABLE_MODES)
        await nest.wait_for(lambda: nest.drone.mode in ARMABLE_MODES, MODE_TIMEOUT_S, "Hold mode")
        nest.log.info("nest.mode_left", left=left.value, mode=nest.drone.mode.value)

    async def _arm_with_retry(self) -> None:
        nest = self._nest
        deadline = nest.clock.monotonic() + ARM_RETRY_S
        while True:
            try:
                await nest.hw.flight.arm()
                return
            except adapter_errors.CommandRejected as exc:
                if not exc.result.retryable or nest.clock.monotonic() > deadline:
                    raise translate("arm", nest.nest_id, exc) from exc
            except adapter_errors.AdapterError as exc:
                # a lost answer or a dropped link: armed all the same, or worth sending again
                if nest.drone.armed:
                    return
                if not transient(exc) or nest.clock.monotonic() > deadline:
                    raise translate("arm", nest.nest_id, exc) from exc
            # PX4 answers TEMPORARILY_REJECTED until its checks pass: wait for the next health report
            with contextlib.suppress(CommandTimeout):
                await nest.wait_for(lambda: nest.drone.armed is True, 1.0, "arm retry")
            if nest.drone.armed:
                return

    async def _abort_on_ground(self, flight: Flight, reason: str) -> None:
        nest = self._nest
        with contextlib.suppress(DronectlError):
            if nest.drone.armed:
                await nest.call("disarm", nest.hw.flight.disarm())
        await nest.apply(ns.LaunchAborted(reason))
        nest.flight = None
        await nest.audit.end_flight(
            FlightEnd(flight.flight_id, nest.clock.wall(), FlightOutcome.ABORTED, reason)
        )
        nest.event("launch_aborted", reason, flight_id=flight.flight_id)
        if nest.state.phase is ns.NestPhase.POST_FLIGHT:
            nest.spawn(nest.close_cover(), "close_cover")

    async def _drone(
        self, what: str, action: Callable[[], Awaitable[None]], done: Callable[[], bool] | None = None
    ) -> None:
        """A command to the drone, sent again through lost packets (``NestCore.resilient``)."""
        nest = self._nest
        await nest.resilient(what, action, done, lambda: nest.drone.link_up)

    async def _dock(
        self, what: str, action: Callable[[], Awaitable[None]], done: Callable[[], bool] | None = None
    ) -> None:
        """A command to the dock, sent again through lost packets; ``done`` reads its status."""
        nest = self._nest
        await nest.resilient(what, action, done, lambda: nest.dock.link_up)

    def _dock_status_is(self, predicate: Callable[[DockStatus], bool]) -> bool:
        status = self._nest.dock.status
        return status is not None and self._nest.dock.link_up and predicate(status)

    def _distance_to(self, target: GeoPoint) -> float:
        pos = self._nest.drone.position
        if pos is None:
            return float("inf")
        return distance_m(GeoPoint(pos.lat_deg, pos.lon_deg), target)

    def _preflight_problems(self) -> list[str]:
        drone, dock = self._nest.drone, self._nest.dock
        problems = []
        if not drone.link_up:
            problems.append("drone link down")
        if not dock.link_up:
            problems.append("dock link down")
        if drone.health is None:
            problems.append("drone health not reported")
        elif not drone.health.global_position_ok:
            problems.append("no GPS position")
        if drone.armed:
            problems.append("drone already armed")
        status = dock.status
        if status is None:
            problems.append("dock status not reported")
        elif not status.drone_in_dock:
            problems.append("drone not in the dock")
        return problems

    # --- in the air ------------------------------------------------------------------------

    def _require_airborne(self, action: str) -> DronePosition:
        nest = self._nest
        position = nest.drone_position()
        if not nest.state.flying or nest.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING):
            raise CommandRefused(
                action, [Blocker(BlockerCode.NOT_AIRBORNE, f"drone is {nest.state.phase.value}")]
            )
        if position is None:
            raise CommandRefused(action, [Blocker(BlockerCode.NOT_AIRBORNE, "drone position not known")])
        return position

    async def goto(
        self, target: GeoPoint, alt_above_home_m: float, speed_mps: float | None = None
    ) -> asyncio.Task[None]:
        nest = self._nest
        drone = self._require_airborne("go to")
        blockers = nest.policy.check_goto(
            nest.snapshot(), drone, GotoRequest(target, alt_above_home_m), nest.fleet.others(nest.nest_id)
        )
        if blockers:
            nest.event("refused", "; ".join(b.message for b in blockers), action="goto")
            raise CommandRefused("go to", blockers)
        self._op_claims += 1
        claim = self._op_claims
        await nest.apply(ns.GotoRequested(f"to {target}"))
        if claim != self._op_claims:  # a later command took the flight over while this one was recorded
            raise CommandFailed("go to", "superseded by a later command before it started", nest.nest_id)
        if nest.flight is not None:
            nest.flight = replace(
                nest.flight, target=target, alt_above_home_m=alt_above_home_m, speed_mps=speed_mps
            )
        return self._start_op(self._fly_to_station(target, alt_above_home_m, speed_mps), "goto")

    async def orbit(
        self, centre: GeoPoint, radius_m: float, alt_above_home_m: float, speed_mps: float = 5.0
    ) -> None:
        nest = self._nest
        drone = self._require_airborne("orbit")
        blockers = nest.policy.check_orbit(
            nest.snapshot(),
            drone,
            OrbitRequest(centre, radius_m, alt_above_home_m),
            nest.fleet.others(nest.nest_id),
        )
        if blockers:
            nest.event("refused", "; ".join(b.message for b in blockers), action="orbit")
            raise CommandRefused("orbit", blockers)
        self._supersede()
        goal = GeoTarget(centre.lat_deg, centre.lon_deg, alt_above_home_m, AltitudeReference.RELATIVE)
        await nest.call("orbit", nest.hw.flight.orbit(goal, radius_m, speed_mps))
        if nest.flight is not None:
            nest.flight = replace(nest.flight, target=centre)
        await nest.flight_event("orbit", f"orbiting {centre} at {radius_m:.0f} m", radius_m=radius_m)

    async def hold(self) -> None:
        self._require_airborne("hold")
        self._supersede()
        await self._drone("hold", self._nest.hw.flight.hold, lambda: self._nest.drone.mode is FlightMode.HOLD)
        await self._nest.flight_event("hold", "holding position")

    async def return_home(self, reason: str = "operator") -> None:
        nest = self._nest
        if not nest.state.flying:
            raise CommandRefused(
                "return", [Blocker(BlockerCode.NOT_AIRBORNE, f"drone is {nest.state.phase.value}")]
            )
        if nest.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING) and not nest.drone_in_air():
            await self.abort(reason)
            return
        self._supersede()
        await self._drone(
            "return", nest.hw.flight.return_to_launch, lambda: nest.drone.mode is FlightMode.RETURN_TO_LAUNCH
        )
        await nest.apply(ns.ReturnRequested(reason))

    async def land(self) -> None:
        self._require_airborne("land")
        self._supersede()
        await self._drone("land", self._nest.hw.flight.land, lambda: self._nest.drone.mode is FlightMode.LAND)
        await self._nest.apply(ns.LandingStarted())

    async def abort(self, reason: str = "operator abort") -> None:
        """Stop a launch on the ground; in the air, come home."""
        nest = self._nest
        if nest.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING) and not nest.drone_in_air():
            op = self._op
            if op is not None and not op.done():
                op.cancel()
                with contextlib.suppress(asyncio.CancelledError, DronectlError):
                    await op
            elif nest.flight is not None:
                await self._abort_on_ground(nest.flight, reason)
            return
        if nest.state.flying:
            await self.return_home(reason)
            return
        raise CommandRefused(
            "abort", [Blocker(BlockerCode.NOT_AIRBORNE, f"nothing to abort ({nest.state.phase.value})")]
        )
