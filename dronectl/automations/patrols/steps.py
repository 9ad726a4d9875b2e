"""What every part of a patrol mission's flight shares: the live mission and what interrupts it,
what the flight needs of the service (:class:`MissionHost`) and of the lookout (:class:`Lookout`),
the settings, and :class:`MissionSteps` -- the mission's route and the steps every part takes:
commands as the actor ``patrol``, each step raced against the mission's interrupt, the drone
lost, retasked or no longer on the mission's flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog

from dronectl.domain import nest_state as ns
from dronectl.domain.clock import Clock
from dronectl.domain.config import PatrolsConfig
from dronectl.domain.control_authority import AUTOMATION
from dronectl.domain.dispatch import Candidate, Reason, Work
from dronectl.domain.geo import GeoPoint
from dronectl.domain.patrols import missions as ms
from dronectl.domain.patrols.route import Route
from dronectl.nest.controller import NestController
from dronectl.nest.fleet import Fleet
from dronectl.operations.models import Method, NoArgs, ProgressState, Role, Target
from dronectl.operations.port import Command, CommandUpdate, Operations

if TYPE_CHECKING:
    from dronectl.automations.vision.traffic import TrafficReading

log = structlog.get_logger("dronectl.patrols")

ACTOR_ID = "patrol"
T = TypeVar("T")


@dataclass
class LiveMission:
    """A mission the patrol service runs: its current state and what interrupts its flight."""

    mission: ms.Mission
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    stop_why: str | None = None  # a stop was asked (window over, a person)
    taken_by: str | None = None  # a person took manual control of its nest
    taken_nest: int | None = None  # which one
    trigger_over: bool = False  # stopped because its trigger is over (not a failure, not a person)
    task: asyncio.Task[None] | None = None


class MissionHost(Protocol):
    """What a flight needs of the patrol service that runs it (``PatrolService``)."""

    owner: Operations
    fleet: Fleet
    clock: Clock
    settings: PatrolSettings
    config: PatrolsConfig
    lookout: Lookout | None

    async def apply(self, live: LiveMission, event: ms.Event) -> bool: ...

    async def sleep(self, sim_s: float) -> None: ...

    def busy_nests(self) -> set[int]: ...


class Lookout(Protocol):
    """What the patrols need of ``dronectl.automations.lookout.Lookout``."""

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


class MissionSteps:
    """One mission's flight: its route and the steps every part of it takes."""

    def __init__(self, service: MissionHost, live: LiveMission) -> None:
        self.service = service
        self.live = live
        self.owner = service.owner
        self.fleet = service.fleet
        self.clock = service.clock
        self.s = service.settings
        self.config = service.config
        stretch = self.config.stretch(live.mission.stretch_id)
        self.route = Route.of(stretch)
        self.waypoints = self.route.waypoints(self.s.waypoint_spacing_m)
        self.hot_spot = self.route.point_at(self.route.length_m / 2)
        self.excluded: dict[int, str] = {}
        self.seq = itertools.count(1)

    @property
    def m(self) -> ms.Mission:
        return self.live.mission

    @property
    def priority(self) -> int:
        if self.m.kind is ms.MissionKind.BLACK_ICE:
            return self.config.black_ice.priority
        return self.s.congestion_priority

    async def race(self, coro: Coroutine[Any, Any, T]) -> T:
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

    async def sleep(self, sim_s: float) -> None:
        with contextlib.suppress(Interrupted):
            await self.race(self.service.sleep(sim_s))

    # --- commands ---------------------------------------------------------------------------

    def command(self, method: Method, nest_id: int, args: Any) -> Command:
        now = self.clock.wall()
        return Command(
            id=f"{self.m.id}.{next(self.seq)}.{method.value}.n{nest_id}",
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=ACTOR_ID,
            actor_role=Role(AUTOMATION),
            issued_at_unix_s=now,
            deadline_unix_s=now + self.s.command_ttl_s,
            received_at_unix_s=now,
        )

    async def execute(self, command: Command) -> CommandUpdate | None:
        last = None
        async for update in self.owner.execute(command):
            last = update
        return last

    def target(self, p: GeoPoint) -> Target:
        return Target(lat=p.lat_deg, lon=p.lon_deg, alt_m=self.config.alt_m)

    async def send_home(self, nest_id: int, why: str) -> None:
        """Return home, unless a person holds the nest (then it is theirs) or it is down."""
        c = self.fleet.nest(nest_id)
        if not c.state.flying or self.owner.authority.holder(nest_id, self.clock.wall()) is not None:
            return
        self.owner.tasking.set_work(nest_id, None)
        log.info("patrol.send_home", id=self.m.id, nest=nest_id, why=why)
        update = await self._first_update(self.command(Method.RETURN_HOME, nest_id, NoArgs()))
        if update is None or update.state is not ProgressState.ACCEPTED:
            log.warning("patrol.return_refused", id=self.m.id, nest=nest_id, reason=why_failed(update))

    async def _first_update(self, command: Command) -> CommandUpdate | None:
        """Start a command and return its first answer; the rest is followed by the owner."""
        updates = self.owner.execute(command)
        first = await anext(updates, None)
        if first is not None and first.state not in (ProgressState.FAILED, ProgressState.CANCELLED):
            self.owner.spawn(_drain(updates), f"patrol.follow[{command.id}]")
        return first

    def set_work(self, nest_id: int) -> None:
        what = "black-ice" if self.m.kind is ms.MissionKind.BLACK_ICE else "congestion"
        self.owner.tasking.set_work(nest_id, Work(self.priority, f"{what} patrol {self.m.stretch_id}"))

    def clear_work(self) -> None:
        for n in (self.m.nest_id, self.m.relief_nest_id):
            if n is not None:
                self.owner.tasking.set_work(n, None)

    def candidates(self, exclude: dict[int, str]) -> list[Candidate]:
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
            incident = self.owner.tasking.serving(c.nest_id)
            if incident is not None:
                why.append(Reason("assigned", f"assigned to incident {incident}"))
            if c.nest_id in exclude:
                why.append(Reason("failed", exclude[c.nest_id]))
            out.append(Candidate(c.snapshot(), tuple(c.fleet.others(c.nest_id)), None, None, tuple(why)))
        return out

    async def lost(self, c: NestController, why: str, *, exclude: bool) -> None:
        """The drone no longer flies for the mission: a pilot has it (end), or plan again."""
        holder = self.owner.authority.holder(c.nest_id, self.clock.wall())
        if holder is not None:
            self.live.taken_by, self.live.taken_nest = holder.describe(), c.nest_id
            raise Interrupted
        self.owner.tasking.set_work(c.nest_id, None)
        if exclude:
            self.excluded[c.nest_id] = why
        await self.service.apply(self.live, ms.LostDrone(why))

    async def taken_for_incident(self, c: NestController) -> bool:
        """The incident dispatcher took the drone for a more urgent incident: it is theirs now
        (never commanded by the patrol again); the mission plans again. True when so."""
        incident = self.owner.tasking.serving(c.nest_id)
        if incident is None:
            return False
        await self.lost(c, f"retasked to incident {incident}", exclude=False)
        return True

    def flight_problem(self, c: NestController) -> str | None:
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


@contextlib.asynccontextmanager
async def closing(it: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
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


def why_failed(update: CommandUpdate | None) -> str:
    if update is None:
        return "no answer"
    text = update.message or update.state.value
    if update.reasons:
        text += ": " + "; ".join(update.reasons)
    return text
