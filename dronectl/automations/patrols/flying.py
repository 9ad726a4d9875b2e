"""One patrol mission in the air: choose the nest, launch, fly the mission, return.

:class:`MissionFlight` runs in the mission's task (owned by the patrol service). Every flight
command goes through ``owner.execute`` as the actor ``patrol`` in the role ``automation``, so the
safety policy checks it, the audit store records it, and a pilot holding manual control refuses
it. Each step races the mission's ``interrupt`` (a stop, a pilot taking the nest): the flight
leaves off at once and the service's transition says why.

Here the mission's course (launch, interrupts, return); on the route the mission's kind flies it:

- ``black_ice``: the drone flies the stretch's waypoints back and forth while the lookout watches
  the video; on a finding the legs stop, the drone holds over the ice and the lookout responds;
- ``congestion``: the drone hovers over the stretch's middle and samples the traffic;
- ``relief``: the handover to a relief nest before the battery runs out, for either kind;
- ``steps``: what they all share (the live mission, the settings, commands, the interrupt).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from dronectl.automations.patrols.black_ice import BlackIcePatrol
from dronectl.automations.patrols.congestion import CongestionWatch
from dronectl.automations.patrols.relief import Relief
from dronectl.automations.patrols.steps import Interrupted, LiveMission, MissionHost, MissionSteps, why_failed
from dronectl.domain.dispatch import SceneRequest, plan
from dronectl.domain.errors import CommandTimeout
from dronectl.domain.geo import GeoPoint
from dronectl.domain.patrols import missions as ms
from dronectl.operations.models import LaunchArgs, Method, ProgressState

log = structlog.get_logger("dronectl.patrols")

LANDED_TIMEOUT_S = 3600.0


class MissionFlight(MissionSteps):
    """One mission in the air, in the mission's task: its course from launch to the end."""

    def __init__(self, service: MissionHost, live: LiveMission) -> None:
        super().__init__(service, live)
        self.relief = Relief(self)
        self.black_ice = BlackIcePatrol(self, self.relief)
        self.congestion = CongestionWatch(self, self.relief)

    # --- the mission's course ---------------------------------------------------------------

    async def run(self) -> None:
        try:
            while self.m.active:
                if await self._interrupted():
                    continue
                state = self.m.state
                try:
                    if state is ms.MissionState.PLANNED:
                        await self._launch()
                    elif state in ms.FLYING_THE_ROUTE:
                        if self.m.kind is ms.MissionKind.BLACK_ICE:
                            await self.black_ice.fly()
                        else:
                            await self.congestion.fly()
                    elif state is ms.MissionState.RETURNING:
                        await self._return()
                    else:  # launching without a launch task (only after a restart)
                        await self.service.apply(
                            self.live, ms.End("the launch was not followed", failed=True)
                        )
                except Interrupted:
                    continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("patrol.crashed", id=self.m.id)
            with contextlib.suppress(Exception):
                await self.service.apply(self.live, ms.End(f"internal error: {exc!r}", failed=True))
        finally:
            self.clear_work()

    async def _interrupted(self) -> bool:
        """Act on a take-over or a stop; True when the mission changed state."""
        live = self.live
        if live.taken_by is not None:
            nest = live.taken_nest if live.taken_nest is not None else self.m.nest_id
            others = [n for n in (self.m.nest_id, self.m.relief_nest_id) if n is not None and n != nest]
            self.clear_work()
            await self.service.apply(live, ms.End(f"nest {nest} taken over by {live.taken_by}"))
            for other in others:  # the mission's other drone (a handover) has nothing to do now
                await self.send_home(other, f"mission ended: nest {nest} taken over")
            return True
        if live.stop_why is not None and self.m.state is not ms.MissionState.RETURNING:
            live.interrupt.clear()
            relief = self.m.relief_nest_id
            await self.service.apply(live, ms.Stop(live.stop_why))
            if relief is not None:
                await self.send_home(relief, "relief no longer needed")
            return True
        live.interrupt.clear()
        return False

    # --- choosing a nest and launching ------------------------------------------------------

    def _targets(self) -> list[tuple[GeoPoint, int | None]]:
        """Where a launch may go, best first, with the leg to carry on from: the hot spot; or the
        mission's current waypoint, then the others nearest it (another flight may be too close)."""
        if self.m.kind is ms.MissionKind.CONGESTION:
            return [(self.hot_spot, None)]
        n = len(self.waypoints)
        here = ms.waypoint_index(self.m.leg, n)
        order = sorted(range(n), key=lambda i: (abs(i - here), i))
        return [(self.waypoints[i], None if i == here else i) for i in order]

    async def _launch(self) -> None:
        if self.m.attempts >= self.s.max_attempts:
            await self.service.apply(
                self.live, ms.End(f"given up after {self.m.attempts} attempts: {self.m.reason}", failed=True)
            )
            return
        settings = self.owner.dispatch_settings
        candidates = self.candidates(self.excluded)
        chosen, target, leg, why = None, self.hot_spot, None, ""
        for option_target, option_leg in self._targets():
            request = SceneRequest(self.m.id, option_target, self.priority)
            planned = plan(request, candidates, self.fleet.policy, settings)
            if planned.chosen is not None:
                chosen, target, leg = planned.chosen, option_target, option_leg
                break
            why = why or planned.why_none()
        if chosen is None:
            log.info("patrol.no_nest", id=self.m.id, why=why)
            await self.sleep(self.s.replan_s)
            return
        nest_id = chosen.nest_id
        c = self.fleet.nest(nest_id)
        await self.service.apply(self.live, ms.Assign(nest_id, leg))
        self.set_work(nest_id)
        command = self.command(
            Method.LAUNCH,
            nest_id,
            LaunchArgs(target=self.target(target)),  # out at cruise speed
        )
        last = await self.race(self.execute(command))
        if last is not None and last.state is ProgressState.SUCCEEDED:
            flight_id = c.flight.flight_id if c.flight is not None else None
            await self.service.apply(self.live, ms.OnRoute(flight_id))
            return
        await self.lost(c, f"launch failed: {why_failed(last)}", exclude=True)

    # --- returning --------------------------------------------------------------------------

    async def _return(self) -> None:
        nest_id = self.m.nest_id
        assert nest_id is not None
        c = self.fleet.nest(nest_id)
        self.clear_work()
        if c.state.flying:
            await self.send_home(nest_id, self.m.reason)
            with contextlib.suppress(CommandTimeout):
                await self.race(c.wait_for(lambda: not c.state.flying, LANDED_TIMEOUT_S, "landed"))
        await self.service.apply(self.live, ms.End(f"{self.m.reason}; nest {nest_id} {c.state.phase.value}"))
