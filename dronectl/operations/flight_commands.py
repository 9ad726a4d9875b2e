"""The flight commands: launch, go to, orbit, hold, return home, land and abort.

:class:`FlightCommands` checks each against the nest (link, airborne, the safety policy), starts
it, and follows it to its end: a launch or a goto until on station, a return or an abort until
down (in the dock or not), a land until on the ground; hold and orbit when acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dronectl.domain import nest_state as ns
from dronectl.domain.errors import DronectlError
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import GotoRequest, OrbitRequest
from dronectl.nest.controller import NestController
from dronectl.operations.command_run import (
    FLIGHT_TIMEOUT_S,
    Following,
    Refusal,
    Run,
    RunnerOwner,
    require_airborne,
    require_link,
    wait,
)
from dronectl.operations.models import AbortArgs, ErrorCode, GotoArgs, LaunchArgs, OrbitArgs

ORBIT_DEFAULT_SPEED_MPS = 5.0
_DOCKED_OR_DOWN = ns.DOCKED | {ns.NestPhase.POST_FLIGHT}


def _phase_left(c: NestController, phase: ns.NestPhase) -> Callable[[], bool]:
    return lambda: c.state.phase is not phase


class FlightCommands:
    def __init__(self, owner: RunnerOwner, following: Following) -> None:
        self.owner = owner
        self._following = following

    async def launch(self, run: Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, LaunchArgs)
        target = GeoPoint(args.target.lat, args.target.lon)
        blockers = c.blockers_for_launch(target, args.target.alt_m)
        if blockers:
            raise Refusal.of("launch", blockers)
        if not await self._following.start(run, c, "preflight checks passed"):
            return
        try:
            op = await c.launch(
                target, args.target.alt_m, command_id=run.command.id, speed_mps=args.speed_mps
            )
        except DronectlError as exc:
            await run.fail_with(exc)
            return
        if c.flight is not None:
            self.owner.flight_started(c.flight.flight_id, self.owner.wall())
        await self._follow_to_station(run, c, op, "launch")

    async def goto(self, run: Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, GotoArgs)
        require_link(c, "go to")
        require_airborne(c, "go to")
        drone = c.drone_position()
        assert drone is not None
        target = GeoPoint(args.target.lat, args.target.lon)
        blockers = c.policy.check_goto(
            c.snapshot(), drone, GotoRequest(target, args.target.alt_m), c.fleet.others(c.nest_id)
        )
        if blockers:
            raise Refusal.of("go to", blockers)
        if not await self._following.start(run, c):
            return
        try:
            op = await c.goto(target, args.target.alt_m, speed_mps=args.speed_mps)
        except DronectlError as exc:
            await run.fail_with(exc)
            return
        await self._follow_to_station(run, c, op, "go to")

    async def _follow_to_station(
        self, run: Run, c: NestController, op: asyncio.Task[None], action: str
    ) -> None:
        last = c.state.phase
        await run.step(f"{last.value}")
        while not op.done():
            wake = await wait(c, _phase_left(c, last), run, op, FLIGHT_TIMEOUT_S)
            if wake == "superseded":
                await run.cancel(f"{action} superseded by {run.superseded_by}")
                return
            if wake == "timeout":
                await run.fail(ErrorCode.TIMEOUT, f"{action}: not on station after {FLIGHT_TIMEOUT_S:g} s")
                return
            if c.state.phase is not last:
                last = c.state.phase
                await run.step(last.value)
        if op.cancelled():
            by = f"superseded by {run.superseded_by}" if run.superseded_by else "superseded"
            await run.cancel(f"{action} cancelled ({by}; nest {c.state.phase.value})")
            return
        exc = op.exception()
        if exc is not None:
            await run.fail_with(exc)
            return
        if c.state.phase is ns.NestPhase.ON_STATION:
            pos = c.drone.position
            result: dict[str, Any] = {"flight_id": c.flight.flight_id if c.flight else None}
            if pos is not None:
                result["position"] = {
                    "lat": pos.lat_deg,
                    "lon": pos.lon_deg,
                    "alt_m": round(pos.alt_rel_m, 1),
                }
            await run.succeed("on station", result)
        else:
            await run.fail(
                ErrorCode.FAILED, f"{action}: the flight ended before station ({c.state.phase.value})"
            )

    async def orbit(self, run: Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, OrbitArgs)
        require_link(c, "orbit")
        require_airborne(c, "orbit")
        drone = c.drone_position()
        assert drone is not None
        centre = GeoPoint(args.center.lat, args.center.lon)
        blockers = c.policy.check_orbit(
            c.snapshot(),
            drone,
            OrbitRequest(centre, args.radius_m, args.center.alt_m),
            c.fleet.others(c.nest_id),
        )
        if blockers:
            raise Refusal.of("orbit", blockers)
        note = "" if args.clockwise else "counter-clockwise not supported yet: the orbit is flown clockwise"
        if not await self._following.start(run, c, note):
            return
        if not await run.attempt(
            c.orbit(centre, args.radius_m, args.center.alt_m, args.speed_mps or ORBIT_DEFAULT_SPEED_MPS)
        ):
            return
        await run.succeed(f"orbiting {centre} at {args.radius_m:g} m")

    async def hold(self, run: Run, c: NestController) -> None:
        require_link(c, "hold")
        require_airborne(c, "hold")
        if not await self._following.start(run, c):
            return
        if not await run.attempt(c.hold()):
            return
        await run.succeed("holding position")

    async def return_home(self, run: Run, c: NestController) -> None:
        if not c.state.flying:
            raise Refusal(ErrorCode.REFUSED, "return refused", [f"drone is {c.state.phase.value}"])
        require_link(c, "return")
        if not await self._following.start(run, c):
            return
        if not await run.attempt(c.return_home(f"{run.command.actor_id}: return home")):
            return
        await self._follow_home(run, c, "return")

    async def _follow_home(self, run: Run, c: NestController, action: str) -> None:
        """Until the drone is down: succeeded in its dock, failed elsewhere."""
        last = c.state.phase
        await run.step(last.value)
        while c.state.flying:
            wake = await wait(c, _phase_left(c, last), run, None, FLIGHT_TIMEOUT_S)
            if wake == "superseded":
                await run.cancel(f"{action} superseded by {run.superseded_by}")
                return
            if wake == "timeout":
                await run.fail(ErrorCode.TIMEOUT, f"{action}: not down after {FLIGHT_TIMEOUT_S:g} s")
                return
            last = c.state.phase
            if c.state.flying:
                await run.step(last.value)
        if c.state.phase in _DOCKED_OR_DOWN:
            await run.succeed("landed in the dock", {"phase": c.state.phase.value})
        else:
            await run.fail(
                ErrorCode.FAILED, f"{action}: the drone came down outside its dock ({c.state.phase.value})"
            )

    async def land(self, run: Run, c: NestController) -> None:
        require_link(c, "land")
        require_airborne(c, "land")
        if not await self._following.start(run, c):
            return
        if not await run.attempt(c.land()):
            return
        await run.step("landing")
        while not (c.drone.armed is False and not c.drone_in_air()):
            wake = await wait(
                c, lambda: c.drone.armed is False and not c.drone_in_air(), run, None, FLIGHT_TIMEOUT_S
            )
            if wake == "superseded":
                await run.cancel(f"land superseded by {run.superseded_by}")
                return
            if wake == "timeout":
                await run.fail(ErrorCode.TIMEOUT, "land: still not down")
                return
        status = c.dock.status
        in_dock = status is not None and status.drone_in_dock
        await run.succeed(
            "landed" + (" in the dock" if in_dock else " outside the dock"), {"in_dock": in_dock}
        )

    async def abort(self, run: Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, AbortArgs)
        if not c.state.flying:
            raise Refusal(ErrorCode.REFUSED, "abort refused", [f"nothing to abort ({c.state.phase.value})"])
        on_ground = c.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING) and not c.drone_in_air()
        if not await self._following.start(run, c):
            return
        if not await run.attempt(c.abort(args.reason or f"abort by {run.command.actor_id}")):
            return
        if on_ground:
            await run.succeed(f"launch stopped on the ground ({c.state.phase.value})")
        else:
            await self._follow_home(run, c, "abort")
