"""Black ice: a patrol drone flies a stretch's waypoints back and forth while the lookout watches.

:class:`BlackIcePatrol` flies the legs (one goto each, as the actor ``patrol``); on a finding the
legs stop, the drone holds over the ice and the lookout responds (warning, lights, picture,
ground units) with the mission's id; a holding drone is watched until relieved or interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from dronectl.automations.patrols.relief import Relief
from dronectl.automations.patrols.steps import ACTOR_ID, Interrupted, MissionSteps, closing, why_failed
from dronectl.domain.patrols import missions as ms
from dronectl.nest.controller import NestController
from dronectl.operations.models import GotoArgs, Method, ProgressState

log = structlog.get_logger("dronectl.patrols")


class BlackIcePatrol:
    """The legs and the watch of one black-ice mission."""

    def __init__(self, flight: MissionSteps, relief: Relief) -> None:
        self.flight = flight
        self.relief = relief

    async def fly(self) -> None:
        assert self.flight.m.nest_id is not None
        c = self.flight.fleet.nest(self.flight.m.nest_id)
        if self.flight.m.state is ms.MissionState.HOLDING:
            await self._hold_watch(c)
            return
        finding = None
        async with contextlib.AsyncExitStack() as stack:
            ice: asyncio.Task[Any] | None = None
            if self.flight.service.lookout is not None:
                ice = asyncio.get_running_loop().create_task(
                    self._first_ice(c.nest_id), name=f"patrol[{self.flight.m.id}].ice"
                )
                stack.push_async_callback(_cancel, ice)
            finding = await self._legs(c, ice)
        if finding is None:
            return
        await self.flight.service.apply(
            self.flight.live,
            ms.Hold(f"black ice at {finding.position} ({finding.coverage_pct:.0f} % of the picture)"),
        )
        assert self.flight.service.lookout is not None
        try:
            await self.flight.race(
                self.flight.service.lookout.respond_to_ice(
                    c.nest_id, finding, actor_id=ACTOR_ID, mission_id=self.flight.m.id
                )
            )
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - the response failed; the drone still holds over the ice
            log.warning("patrol.ice_response_failed", id=self.flight.m.id, nest=c.nest_id, error=repr(exc))

    async def _first_ice(self, nest_id: int) -> Any:
        assert self.flight.service.lookout is not None
        async with closing(self.flight.service.lookout.ice_findings(nest_id)) as findings:
            async for finding in findings:
                return finding
        return None

    async def _legs(self, c: NestController, ice: asyncio.Task[Any] | None) -> Any:
        """Fly the waypoints back and forth until ice is found (returned), the drone is lost, a
        relief takes over or the mission is interrupted."""
        refused = 0
        crowded_since: float | None = None
        n = len(self.flight.waypoints)
        while (
            self.flight.m.state in (ms.MissionState.PATROLLING, ms.MissionState.HANDING_OVER)
            and self.flight.m.nest_id == c.nest_id
        ):
            if ice is not None and ice.done():
                if not ice.cancelled() and ice.exception() is not None:
                    log.warning("patrol.lookout_failed", id=self.flight.m.id, error=repr(ice.exception()))
                elif not ice.cancelled() and ice.result() is not None:
                    return ice.result()
                ice = None
            if await self.flight.taken_for_incident(c) or await self.relief.maybe(c):
                return None
            target = self.flight.waypoints[ms.waypoint_index(self.flight.m.leg + 1, n)]
            command = self.flight.command(
                Method.GOTO,
                c.nest_id,
                GotoArgs(target=self.flight.target(target), speed_mps=self.flight.config.speed_mps),
            )
            leg = asyncio.get_running_loop().create_task(
                self.flight.execute(command), name=f"patrol[{self.flight.m.id}].leg"
            )
            watched: list[asyncio.Future[Any]] = [leg] + ([ice] if ice is not None else [])
            try:
                await self.flight.race(asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED))
            finally:
                if not leg.done():
                    leg.cancel()
                    await asyncio.gather(leg, return_exceptions=True)
            if leg.cancelled():
                continue  # the ice task finished first: looked at above
            last = leg.result()
            if last is not None and last.state is ProgressState.SUCCEEDED:
                refused, crowded_since = 0, None
                await self.flight.service.apply(self.flight.live, ms.LegDone())
                continue
            if await self.flight.taken_for_incident(c):
                return None
            problem = self.flight.flight_problem(c)
            if problem is not None or (last is not None and "superseded" in last.message):
                await self.flight.lost(
                    c, problem or f"retasked ({last.message if last else ''})", exclude=False
                )
                return None
            log.warning("patrol.leg_refused", id=self.flight.m.id, nest=c.nest_id, reason=why_failed(last))
            if "battery" in why_failed(last) and await self.relief.maybe(c, force=True):
                return None  # it cannot go on: a relief takes the stretch over
            now = self.flight.clock.monotonic()
            if (
                "separation" in why_failed(last)
                and now - (crowded_since or now) < self.flight.s.separation_wait_s
            ):
                crowded_since = crowded_since or now  # another drone (one relieved) is leaving: wait
                await self.flight.race(self.flight.service.sleep(self.flight.s.watch_s))
                continue
            crowded_since = None
            refused += 1
            if refused >= self.flight.s.max_refused_legs:
                self.flight.live.stop_why = f"{refused} legs refused in a row: {why_failed(last)}"
                raise Interrupted
            await self.flight.service.apply(self.flight.live, ms.LegDone(skipped=why_failed(last)))
        return None

    async def _hold_watch(self, c: NestController) -> None:
        """A holding drone: watch its flight and its battery until interrupted or relieved."""
        while self.flight.m.state is ms.MissionState.HOLDING and self.flight.m.nest_id == c.nest_id:
            problem = self.flight.flight_problem(c)
            if problem is not None:
                await self.flight.lost(c, problem, exclude=False)
                return
            if await self.flight.taken_for_incident(c) or await self.relief.maybe(c):
                return
            await self.flight.race(self.flight.service.sleep(self.flight.s.watch_s))


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
