"""Handover: a relief nest for a patrol mission's drone before its battery runs out.

While on the route, when the battery leaves no more time than a relief needs to arrive
(``dronectl.domain.patrols.handover``), :class:`Relief` launches a relief nest to the route; once
it is there the first drone flies home and the relief carries on from the waypoint it came to.
"""

from __future__ import annotations

import structlog

from dronectl.automations.patrols.steps import MissionSteps, why_failed
from dronectl.domain.energy import Wind
from dronectl.domain.geo import GeoPoint, distance_m
from dronectl.domain.patrols import missions as ms
from dronectl.domain.patrols.decisions import relief_target
from dronectl.domain.patrols.handover import endurance, plan_relief
from dronectl.nest.controller import NestController
from dronectl.operations.models import LaunchArgs, Method, ProgressState

log = structlog.get_logger("dronectl.patrols")

NO_RELIEF_NEEDED_S = 1800.0  # more slack than this: no relief can take that long, skip planning one


class Relief:
    """Plans and flies the handovers of one mission."""

    def __init__(self, flight: MissionSteps) -> None:
        self.flight = flight
        self._no_relief = ""

    async def maybe(self, c: NestController, *, force: bool = False) -> bool:
        """Send a relief when the battery says so (or at once with ``force``: the drone can no
        longer fly the legs); True when the mission's drone changed."""
        if self.flight.m.state not in (ms.MissionState.PATROLLING, ms.MissionState.HOLDING):
            return False
        pos = c.drone.position
        battery = c.drone.battery_pct
        if pos is None or battery is None:
            return False
        here = GeoPoint(pos.lat_deg, pos.lon_deg)
        avoid = [here] + ([c.flight.target] if c.flight is not None and c.flight.target is not None else [])
        target = relief_target(self.flight.waypoints, avoid, self.flight.fleet.policy.limits.separation_m)
        if target is None:
            target = self.flight.hot_spot if distance_m(self.flight.hot_spot, here) > 0 else here
        w = c.dock.weather
        wind = Wind(w.wind_speed_mps, w.wind_from_deg) if w is not None else Wind(0.0, None)
        drain = c.snapshot().drain_pct_per_min
        limits, model = self.flight.fleet.policy.limits, self.flight.fleet.policy.model
        margin = self.flight.config.handover_margin_s
        rough = endurance(
            here, c.home, pos.alt_rel_m, battery, limits.reserve_pct, wind, 0.0, margin, model, drain
        )
        if rough.slack_s > NO_RELIEF_NEEDED_S and not force:
            return False
        relief = plan_relief(
            self.flight.m.id,
            target,
            self.flight.priority,
            c.nest_id,
            self.flight.candidates({}),
            self.flight.fleet.policy,
            self.flight.owner.dispatch_settings,
            on_station_s=self.flight.s.on_station_s,
        )
        figures = endurance(
            here,
            c.home,
            pos.alt_rel_m,
            battery,
            limits.reserve_pct,
            wind,
            relief.arrival_s,
            margin,
            model,
            drain,
        )
        if not (figures.due or force):
            return False
        if relief.chosen is None:
            if relief.describe() != self._no_relief:  # said once, not at every leg
                self._no_relief = relief.describe()
                log.warning("patrol.no_relief", id=self.flight.m.id, nest=c.nest_id, why=self._no_relief)
            return False
        return await self._hand_over(c, relief.chosen.nest_id, target, figures.describe())

    async def _hand_over(self, c: NestController, relief_id: int, target: GeoPoint, why: str) -> bool:
        log.info("patrol.relief", id=self.flight.m.id, nest=c.nest_id, relief=relief_id, why=why)
        await self.flight.service.apply(self.flight.live, ms.ReliefLaunched(relief_id))
        self.flight.set_work(relief_id)
        r = self.flight.fleet.nest(relief_id)
        command = self.flight.command(
            Method.LAUNCH,
            relief_id,
            LaunchArgs(target=self.flight.target(target)),  # as planned: at cruise
        )
        last = await self.flight.race(self.flight.execute(command))
        if last is None or last.state is not ProgressState.SUCCEEDED:
            self.flight.owner.tasking.set_work(relief_id, None)
            await self.flight.service.apply(
                self.flight.live, ms.ReliefFailed(f"nest {relief_id}: {why_failed(last)}")
            )
            return False
        old = c.nest_id
        flight_id = r.flight.flight_id if r.flight is not None else None
        # carry on from the waypoint the relief came to
        leg = next(
            (i for i in range(len(self.flight.waypoints)) if self.flight.waypoints[i] == target),
            self.flight.m.leg,
        )
        await self.flight.service.apply(self.flight.live, ms.ReliefOnRoute(flight_id, leg))
        await self.flight.send_home(old, f"relieved by nest {relief_id}")
        return True
