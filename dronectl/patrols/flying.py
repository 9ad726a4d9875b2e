"""One patrol mission in the air: choose the nest, launch, fly the legs, sample, hand over, return.

:class:`MissionFlight` runs in the mission's task (owned by the patrol service). Every flight
command goes through ``owner.execute`` as the actor ``patrol`` in the role ``automation``, so the
safety policy checks it, the audit store records it, and a pilot holding manual control refuses
it. Each step races the mission's ``interrupt`` (a stop, a pilot taking the nest): the flight
leaves off at once and the service's transition says why.

- Black ice: the drone flies the stretch's waypoints back and forth while the lookout watches the
  video; on a finding the legs stop, the drone holds over the ice and the lookout responds
  (warning, lights, picture, ground units) with the mission's id.
- Congestion: the drone hovers over the stretch's middle; each sampling window gives a traffic
  reading, classified and published (event ``congestion`` and, on MQTT, retained on
  ``{root}/traffic/{stretch}``); standing traffic raises an incident.
- Handover: while on the route, when the battery leaves no more time than a relief needs to
  arrive (``dronectl.patrols.handover``), a relief nest launches to the route; once it is there
  the first drone flies home.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog

from dronectl import nest_state as ns
from dronectl.api.controller import Command, CommandUpdate
from dronectl.api.models import (
    Actor,
    Event,
    EventKind,
    GotoArgs,
    GroundPoint,
    Incident,
    LaunchArgs,
    Method,
    NoArgs,
    ProgressState,
    Role,
    Target,
)
from dronectl.api_views import utc
from dronectl.control_authority import AUTOMATION
from dronectl.dispatch import Candidate, Reason, SceneRequest, Work, plan
from dronectl.energy import Wind
from dronectl.errors import CommandTimeout
from dronectl.geo import GeoPoint, distance_m
from dronectl.nest_controller import NestController
from dronectl.patrols import missions as ms
from dronectl.patrols.congestion import CongestionLevel, classify, describe
from dronectl.patrols.decisions import relief_target
from dronectl.patrols.handover import endurance, plan_relief
from dronectl.patrols.route import Route

if TYPE_CHECKING:
    from dronectl.patrols.service import LiveMission, PatrolService
    from dronectl.vision.traffic import TrafficReading

log = structlog.get_logger("dronectl.patrols")

ACTOR_ID = "patrol"
LANDED_TIMEOUT_S = 3600.0
NO_RELIEF_NEEDED_S = 1800.0  # more slack than this: no relief can take that long, skip planning one
T = TypeVar("T")


class Lookout(Protocol):
    """What the patrols need of ``dronectl.lookout.Lookout``."""

    def ice_findings(self, nest_id: int) -> AsyncIterator[Any]: ...

    async def respond_to_ice(
        self,
        nest_id: int,
        finding: Any,
        *,
        actor_id: str,
        incident_id: str | None = None,
        mission_id: str | None = None,
    ) -> Any: ...

    def traffic_readings(self, nest_id: int, gsd_m: float | None = None) -> AsyncIterator[TrafficReading]: ...


@dataclass(frozen=True)
class PatrolSettings:
    """Timings in seconds of the service's clock (simulated seconds under a scaled clock)."""

    tick_s: float = 10.0  # triggers evaluated this often
    waypoint_spacing_m: float = 250.0
    sample_window_s: float = 20.0  # video seen before a congestion reading counts
    sample_period_s: float = 60.0  # one reading per hot spot this often
    reading_timeout_s: float = 120.0  # no reading in this time: reported, tried again
    watch_s: float = 10.0  # a holding drone's battery and flight are checked this often
    replan_s: float = 15.0  # no nest could go: planned again after this
    restart_after_s: float = 300.0  # an automatic mission that ended while still wanted waits this long
    congestion_priority: int = 5  # a congestion watch yields to any incident
    max_attempts: int = 3  # nests tried for one mission before it ends
    max_refused_legs: int = 3  # legs refused in a row before the mission stops
    separation_wait_s: float = 300.0  # a leg refused for another flight nearby is tried again so long
    command_ttl_s: float = 60.0
    recover_timeout_s: float = 30.0
    on_station_s: float = 600.0  # the watch a launch's battery check plans for


class Interrupted(Exception):
    """The mission's interrupt was set (stop or take-over) while a step ran."""


class MissionFlight:
    def __init__(self, service: PatrolService, live: LiveMission) -> None:
        self.service = service
        self.live = live
        self.owner = service.owner
        self.fleet = service.fleet
        self.clock = service.clock
        self.s = service.settings
        self.config = service.config
        stretch = self.config.stretch(live.mission.stretch_id)
        self.route = Route.of(stretch)
        self.free_flow_mps = stretch.free_flow_speed_mps
        self.waypoints = self.route.waypoints(self.s.waypoint_spacing_m)
        self.hot_spot = self.route.point_at(self.route.length_m / 2)
        self.excluded: dict[int, str] = {}
        self.standstill_reported = False
        self._no_relief = ""
        self._seq = itertools.count(1)

    @property
    def m(self) -> ms.Mission:
        return self.live.mission

    @property
    def priority(self) -> int:
        if self.m.kind is ms.MissionKind.BLACK_ICE:
            return self.config.black_ice.priority
        return self.s.congestion_priority

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
                            await self._black_ice()
                        else:
                            await self._congestion()
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
            self._clear_work()

    async def _interrupted(self) -> bool:
        """Act on a take-over or a stop; True when the mission changed state."""
        live = self.live
        if live.taken_by is not None:
            nest = live.taken_nest if live.taken_nest is not None else self.m.nest_id
            others = [n for n in (self.m.nest_id, self.m.relief_nest_id) if n is not None and n != nest]
            self._clear_work()
            await self.service.apply(live, ms.End(f"nest {nest} taken over by {live.taken_by}"))
            for other in others:  # the mission's other drone (a handover) has nothing to do now
                await self._send_home(other, f"mission ended: nest {nest} taken over")
            return True
        if live.stop_why is not None and self.m.state is not ms.MissionState.RETURNING:
            live.interrupt.clear()
            relief = self.m.relief_nest_id
            await self.service.apply(live, ms.Stop(live.stop_why))
            if relief is not None:
                await self._send_home(relief, "relief no longer needed")
            return True
        live.interrupt.clear()
        return False

    async def _race(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``, unless the mission's interrupt comes first (then Interrupted)."""
        if self.live.interrupt.is_set():
            coro.close()
            raise Interrupted
        loop = asyncio.get_running_loop()
        work = loop.create_task(coro, name=f"patrol[{self.m.id}].step")
        stop = loop.create_task(self.live.interrupt.wait(), name=f"patrol[{self.m.id}].interrupt")
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, stop):
                if not task.done():
                    task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
        if work.done() and not work.cancelled():
            return work.result()
        raise Interrupted

    async def _sleep(self, sim_s: float) -> None:
        with contextlib.suppress(Interrupted):
            await self._race(self.service.sleep(sim_s))

    # --- commands ---------------------------------------------------------------------------

    def _command(self, method: Method, nest_id: int, args: Any) -> Command:
        now = self.clock.wall()
        return Command(
            id=f"{self.m.id}.{next(self._seq)}.{method.value}.n{nest_id}",
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=ACTOR_ID,
            actor_role=Role(AUTOMATION),
            issued_at_unix_s=now,
            deadline_unix_s=now + self.s.command_ttl_s,
            received_at_unix_s=now,
        )

    async def _execute(self, command: Command) -> CommandUpdate | None:
        last = None
        async for update in self.owner.execute(command):
            last = update
        return last

    def _target(self, p: GeoPoint) -> Target:
        return Target(lat=p.lat_deg, lon=p.lon_deg, alt_m=self.config.alt_m)

    async def _send_home(self, nest_id: int, why: str) -> None:
        """Return home, unless a person holds the nest (then it is theirs) or it is down."""
        c = self.fleet.nest(nest_id)
        if not c.state.flying or self.owner.authority.holder(nest_id, self.clock.wall()) is not None:
            return
        self.owner.incidents.set_work(nest_id, None)
        log.info("patrol.send_home", id=self.m.id, nest=nest_id, why=why)
        update = await self._first_update(self._command(Method.RETURN_HOME, nest_id, NoArgs()))
        if update is None or update.state is not ProgressState.ACCEPTED:
            log.warning("patrol.return_refused", id=self.m.id, nest=nest_id, reason=_why(update))

    async def _first_update(self, command: Command) -> CommandUpdate | None:
        """Start a command and return its first answer; the rest is followed by the owner."""
        updates = self.owner.execute(command)
        first = await anext(updates, None)
        if first is not None and first.state not in (ProgressState.FAILED, ProgressState.CANCELLED):
            self.owner.spawn(_drain(updates), f"patrol.follow[{command.id}]")
        return first

    def _set_work(self, nest_id: int) -> None:
        what = "black-ice" if self.m.kind is ms.MissionKind.BLACK_ICE else "congestion"
        self.owner.incidents.set_work(nest_id, Work(self.priority, f"{what} patrol {self.m.stretch_id}"))

    def _clear_work(self) -> None:
        for n in (self.m.nest_id, self.m.relief_nest_id):
            if n is not None:
                self.owner.incidents.set_work(n, None)

    # --- choosing a nest and launching ------------------------------------------------------

    def _candidates(self, exclude: dict[int, str]) -> list[Candidate]:
        now = self.clock.wall()
        busy = self.service.busy_nests()
        out = []
        for c in self.fleet.controllers.values():
            why: list[Reason] = []
            holder = self.owner.authority.holder(c.nest_id, now)
            if holder is not None:
                why.append(Reason("manual_control", f"under manual control of {holder.describe()}"))
            if c.nest_id in busy:
                why.append(Reason("patrol", "flies another patrol"))
            incident = self.owner.incidents.serving(c.nest_id)
            if incident is not None:
                why.append(Reason("assigned", f"assigned to incident {incident}"))
            if c.nest_id in exclude:
                why.append(Reason("failed", exclude[c.nest_id]))
            out.append(Candidate(c.snapshot(), tuple(c.fleet.others(c.nest_id)), None, None, tuple(why)))
        return out

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
        settings = self.owner.incidents.settings
        candidates = self._candidates(self.excluded)
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
            await self._sleep(self.s.replan_s)
            return
        nest_id = chosen.nest_id
        c = self.fleet.nest(nest_id)
        await self.service.apply(self.live, ms.Assign(nest_id, leg))
        self._set_work(nest_id)
        command = self._command(
            Method.LAUNCH,
            nest_id,
            LaunchArgs(target=self._target(target)),  # out at cruise speed
        )
        last = await self._race(self._execute(command))
        if last is not None and last.state is ProgressState.SUCCEEDED:
            flight_id = c.flight.flight_id if c.flight is not None else None
            await self.service.apply(self.live, ms.OnRoute(flight_id))
            return
        await self._lost(c, f"launch failed: {_why(last)}", exclude=True)

    async def _lost(self, c: NestController, why: str, *, exclude: bool) -> None:
        """The drone no longer flies for the mission: a pilot has it (end), or plan again."""
        holder = self.owner.authority.holder(c.nest_id, self.clock.wall())
        if holder is not None:
            self.live.taken_by, self.live.taken_nest = holder.describe(), c.nest_id
            raise Interrupted
        self.owner.incidents.set_work(c.nest_id, None)
        if exclude:
            self.excluded[c.nest_id] = why
        await self.service.apply(self.live, ms.LostDrone(why))

    async def _taken_for_incident(self, c: NestController) -> bool:
        """The incident dispatcher took the drone for a more urgent incident: it is theirs now
        (never commanded by the patrol again); the mission plans again. True when so."""
        incident = self.owner.incidents.serving(c.nest_id)
        if incident is None:
            return False
        await self._lost(c, f"retasked to incident {incident}", exclude=False)
        return True

    def _flight_problem(self, c: NestController) -> str | None:
        """Why the mission's drone no longer flies the mission's flight, or None."""
        if (
            c.flight is None
            or not c.state.flying
            or (self.m.flight_id and c.flight.flight_id != self.m.flight_id)
        ):
            return f"its flight is over ({c.state.phase.value})"
        if c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING):
            return f"it is {c.state.phase.value}"
        return None

    # --- black ice --------------------------------------------------------------------------

    async def _black_ice(self) -> None:
        assert self.m.nest_id is not None
        c = self.fleet.nest(self.m.nest_id)
        if self.m.state is ms.MissionState.HOLDING:
            await self._hold_watch(c)
            return
        finding = None
        async with contextlib.AsyncExitStack() as stack:
            ice: asyncio.Task[Any] | None = None
            if self.service.lookout is not None:
                ice = asyncio.get_running_loop().create_task(
                    self._first_ice(c.nest_id), name=f"patrol[{self.m.id}].ice"
                )
                stack.push_async_callback(_cancel, ice)
            finding = await self._legs(c, ice)
        if finding is None:
            return
        await self.service.apply(
            self.live,
            ms.Hold(f"black ice at {finding.position} ({finding.coverage_pct:.0f} % of the picture)"),
        )
        assert self.service.lookout is not None
        try:
            await self._race(
                self.service.lookout.respond_to_ice(
                    c.nest_id, finding, actor_id=ACTOR_ID, mission_id=self.m.id
                )
            )
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - the response failed; the drone still holds over the ice
            log.warning("patrol.ice_response_failed", id=self.m.id, nest=c.nest_id, error=repr(exc))

    async def _first_ice(self, nest_id: int) -> Any:
        assert self.service.lookout is not None
        async with _closing(self.service.lookout.ice_findings(nest_id)) as findings:
            async for finding in findings:
                return finding
        return None

    async def _legs(self, c: NestController, ice: asyncio.Task[Any] | None) -> Any:
        """Fly the waypoints back and forth until ice is found (returned), the drone is lost, a
        relief takes over or the mission is interrupted."""
        refused = 0
        crowded_since: float | None = None
        n = len(self.waypoints)
        while (
            self.m.state in (ms.MissionState.PATROLLING, ms.MissionState.HANDING_OVER)
            and self.m.nest_id == c.nest_id
        ):
            if ice is not None and ice.done():
                if not ice.cancelled() and ice.exception() is not None:
                    log.warning("patrol.lookout_failed", id=self.m.id, error=repr(ice.exception()))
                elif not ice.cancelled() and ice.result() is not None:
                    return ice.result()
                ice = None
            if await self._taken_for_incident(c) or await self._maybe_relief(c):
                return None
            target = self.waypoints[ms.waypoint_index(self.m.leg + 1, n)]
            command = self._command(
                Method.GOTO, c.nest_id, GotoArgs(target=self._target(target), speed_mps=self.config.speed_mps)
            )
            leg = asyncio.get_running_loop().create_task(
                self._execute(command), name=f"patrol[{self.m.id}].leg"
            )
            watched: list[asyncio.Future[Any]] = [leg] + ([ice] if ice is not None else [])
            try:
                await self._race(asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED))
            finally:
                if not leg.done():
                    leg.cancel()
                    await asyncio.gather(leg, return_exceptions=True)
            if leg.cancelled():
                continue  # the ice task finished first: looked at above
            last = leg.result()
            if last is not None and last.state is ProgressState.SUCCEEDED:
                refused, crowded_since = 0, None
                await self.service.apply(self.live, ms.LegDone())
                continue
            if await self._taken_for_incident(c):
                return None
            problem = self._flight_problem(c)
            if problem is not None or (last is not None and "superseded" in last.message):
                await self._lost(c, problem or f"retasked ({last.message if last else ''})", exclude=False)
                return None
            log.warning("patrol.leg_refused", id=self.m.id, nest=c.nest_id, reason=_why(last))
            if "battery" in _why(last) and await self._maybe_relief(c, force=True):
                return None  # it cannot go on: a relief takes the stretch over
            now = self.clock.monotonic()
            if "separation" in _why(last) and now - (crowded_since or now) < self.s.separation_wait_s:
                crowded_since = crowded_since or now  # another drone (one relieved) is leaving: wait
                await self._race(self.service.sleep(self.s.watch_s))
                continue
            crowded_since = None
            refused += 1
            if refused >= self.s.max_refused_legs:
                self.live.stop_why = f"{refused} legs refused in a row: {_why(last)}"
                raise Interrupted
            await self.service.apply(self.live, ms.LegDone(skipped=_why(last)))
        return None

    async def _hold_watch(self, c: NestController) -> None:
        """A holding drone: watch its flight and its battery until interrupted or relieved."""
        while self.m.state is ms.MissionState.HOLDING and self.m.nest_id == c.nest_id:
            problem = self._flight_problem(c)
            if problem is not None:
                await self._lost(c, problem, exclude=False)
                return
            if await self._taken_for_incident(c) or await self._maybe_relief(c):
                return
            await self._race(self.service.sleep(self.s.watch_s))

    # --- congestion -------------------------------------------------------------------------

    async def _congestion(self) -> None:
        assert self.m.nest_id is not None
        c = self.fleet.nest(self.m.nest_id)
        if self.m.state is ms.MissionState.PATROLLING:
            await self.service.apply(self.live, ms.Hold("sampling traffic over the stretch"))
        while self.m.state is ms.MissionState.HOLDING and self.m.nest_id == c.nest_id:
            problem = self._flight_problem(c)
            if problem is not None:
                await self._lost(c, problem, exclude=False)
                return
            if await self._taken_for_incident(c) or await self._maybe_relief(c):
                return
            reading = await self._race(self._reading(c.nest_id))
            if reading is not None:
                await self._report(c, reading)
            await self._race(self.service.sleep(self.s.sample_period_s))

    async def _reading(self, nest_id: int) -> TrafficReading | None:
        lookout = self.service.lookout
        if lookout is None:
            return None
        speed = float(getattr(self.clock, "speed", 1.0))
        try:
            async with (
                asyncio.timeout(self.s.reading_timeout_s / speed),
                _closing(lookout.traffic_readings(nest_id)) as readings,
            ):
                async for reading in readings:
                    if reading.window_s >= self.s.sample_window_s / speed:
                        return reading
        except TimeoutError:
            log.warning("patrol.no_traffic_reading", id=self.m.id, nest=nest_id)
        except Exception as exc:  # noqa: BLE001 - no video now (camera, decoder): tried again next period
            log.warning("patrol.traffic_failed", id=self.m.id, nest=nest_id, error=repr(exc))
        return None

    async def _report(self, c: NestController, r: TrafficReading) -> None:
        s = self.config.congestion
        level = classify(r.mean_speed_mps, r.density_veh_per_km, r.stopped_fraction, self.free_flow_mps, s)
        text = describe(level, r.mean_speed_mps, r.density_veh_per_km, r.stopped_fraction, self.free_flow_mps)
        stretch = self.config.stretch(self.m.stretch_id)
        data = {
            "stretch_id": self.m.stretch_id,
            "stretch": stretch.name,
            "mission_id": self.m.id,
            "level": level.value,
            "vehicles": r.vehicles,
            "density_veh_per_km": round(r.density_veh_per_km, 1),
            "mean_speed_mps": None if r.mean_speed_mps is None else round(r.mean_speed_mps, 2),
            "stopped_fraction": round(r.stopped_fraction, 3),
            "free_flow_speed_mps": self.free_flow_mps,
            "window_s": round(r.window_s, 1),
            "lat": self.hot_spot.lat_deg,
            "lon": self.hot_spot.lon_deg,
        }
        log.info("patrol.congestion", id=self.m.id, stretch=self.m.stretch_id, congestion=text)
        self.owner.publish(
            Event(
                kind=EventKind.CONGESTION,
                at=utc(self.clock.wall()),
                nest_id=c.nest_id,
                message=f"{stretch.name}: {text}",
                flight_id=self.m.flight_id,
                data=data,
            )
        )
        if level is CongestionLevel.STANDSTILL and not self.standstill_reported:
            self.standstill_reported = True
            self.owner.report_incident(
                Incident(
                    id=f"{self.m.id}.standstill.{next(self._seq)}",
                    kind="congestion",
                    position=GroundPoint(lat=self.hot_spot.lat_deg, lon=self.hot_spot.lon_deg),
                    priority=s.standstill_incident_priority,
                    text=f"traffic standing still on {stretch.name}: {text}",
                    reported_at=datetime.fromtimestamp(self.clock.wall(), tz=UTC),
                    actor=Actor(id=ACTOR_ID, role=Role.AUTOMATION),
                )
            )
        elif level is not CongestionLevel.STANDSTILL:
            self.standstill_reported = False

    # --- handover ---------------------------------------------------------------------------

    async def _maybe_relief(self, c: NestController, *, force: bool = False) -> bool:
        """Send a relief when the battery says so (or at once with ``force``: the drone can no
        longer fly the legs); True when the mission's drone changed."""
        if self.m.state not in (ms.MissionState.PATROLLING, ms.MissionState.HOLDING):
            return False
        pos = c.drone.position
        battery = c.drone.battery_pct
        if pos is None or battery is None:
            return False
        here = GeoPoint(pos.lat_deg, pos.lon_deg)
        avoid = [here] + ([c.flight.target] if c.flight is not None and c.flight.target is not None else [])
        target = relief_target(self.waypoints, avoid, self.fleet.policy.limits.separation_m)
        if target is None:
            target = self.hot_spot if distance_m(self.hot_spot, here) > 0 else here
        w = c.dock.weather
        wind = Wind(w.wind_speed_mps, w.wind_from_deg) if w is not None else Wind(0.0, None)
        drain = c.snapshot().drain_pct_per_min
        limits, model = self.fleet.policy.limits, self.fleet.policy.model
        margin = self.config.handover_margin_s
        rough = endurance(
            here, c.home, pos.alt_rel_m, battery, limits.reserve_pct, wind, 0.0, margin, model, drain
        )
        if rough.slack_s > NO_RELIEF_NEEDED_S and not force:
            return False
        relief = plan_relief(
            self.m.id,
            target,
            self.priority,
            c.nest_id,
            self._candidates({}),
            self.fleet.policy,
            self.owner.incidents.settings,
            on_station_s=self.s.on_station_s,
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
                log.warning("patrol.no_relief", id=self.m.id, nest=c.nest_id, why=self._no_relief)
            return False
        return await self._hand_over(c, relief.chosen.nest_id, target, figures.describe())

    async def _hand_over(self, c: NestController, relief_id: int, target: GeoPoint, why: str) -> bool:
        log.info("patrol.relief", id=self.m.id, nest=c.nest_id, relief=relief_id, why=why)
        await self.service.apply(self.live, ms.ReliefLaunched(relief_id))
        self._set_work(relief_id)
        r = self.fleet.nest(relief_id)
        command = self._command(
            Method.LAUNCH,
            relief_id,
            LaunchArgs(target=self._target(target)),  # as planned: at cruise
        )
        last = await self._race(self._execute(command))
        if last is None or last.state is not ProgressState.SUCCEEDED:
            self.owner.incidents.set_work(relief_id, None)
            await self.service.apply(self.live, ms.ReliefFailed(f"nest {relief_id}: {_why(last)}"))
            return False
        old = c.nest_id
        flight_id = r.flight.flight_id if r.flight is not None else None
        # carry on from the waypoint the relief came to
        leg = next((i for i in range(len(self.waypoints)) if self.waypoints[i] == target), self.m.leg)
        await self.service.apply(self.live, ms.ReliefOnRoute(flight_id, leg))
        await self._send_home(old, f"relieved by nest {relief_id}")
        return True

    # --- returning --------------------------------------------------------------------------

    async def _return(self) -> None:
        nest_id = self.m.nest_id
        assert nest_id is not None
        c = self.fleet.nest(nest_id)
        self._clear_work()
        if c.state.flying:
            await self._send_home(nest_id, self.m.reason)
            with contextlib.suppress(CommandTimeout):
                await self._race(c.wait_for(lambda: not c.state.flying, LANDED_TIMEOUT_S, "landed"))
        await self.service.apply(self.live, ms.End(f"{self.m.reason}; nest {nest_id} {c.state.phase.value}"))


@contextlib.asynccontextmanager
async def _closing(it: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close an async generator left early (so its stream and tasks stop at once)."""
    try:
        yield it
    finally:
        close = getattr(it, "aclose", None)
        if close is not None:
            await close()


async def _drain(updates: AsyncIterator[CommandUpdate]) -> None:
    async for _ in updates:
        pass


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _why(update: CommandUpdate | None) -> str:
    if update is None:
        return "no answer"
    text = update.message or update.state.value
    if update.reasons:
        text += ": " + "; ".join(update.reasons)
    return text
