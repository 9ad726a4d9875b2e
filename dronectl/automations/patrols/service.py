"""The patrol service: starts, flies and ends patrol missions, as the automation.

One supervised loop (:meth:`PatrolService.run`, a task of ``dronectl up``):

- at start, the unfinished missions of the store: one whose drone is still in the air on that
  flight is resumed; any other ends with the reason (nothing is ever launched again blindly);
- every ``tick_s`` the triggers (``dronectl.domain.patrols.decisions.wanted``: each black-ice stretch's
  nearest weather station, the schedule windows) are evaluated: a mission is started for every
  wanted stretch not covered yet, and automatic missions whose trigger is over are stopped (their
  drone flies home, then they end);
- each mission runs in a task of its own (``dronectl.automations.patrols.flying.MissionFlight``): the nest
  chosen with the dispatch planner, the launch and every leg as commands (``owner.execute``) with
  the actor ``patrol`` in the role ``automation`` -- audited, checked by the safety policy,
  refused under manual control.

Every transition is stored (``MissionStore``: one row each, committed before the mission goes
on), recorded as an outcome of the mission's audit record (a ``commands`` row, method
``patrol.mission``, actor ``patrol``), and published as a ``patrol`` event. A person taking
manual control of a mission's nest ends the automation's part at once: the mission ends "taken
over by ...", and no later command of the patrol goes to that nest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from dronectl.audit import AuditError, CommandOutcome, CommandRecord, OutcomeRecord
from dronectl.automations.patrols.flying import MissionFlight
from dronectl.automations.patrols.steps import ACTOR_ID, LiveMission, Lookout, PatrolSettings
from dronectl.automations.patrols.store import MissionStore, mission_data
from dronectl.domain import nest_state as ns
from dronectl.domain.config import PatrolsConfig
from dronectl.domain.control_authority import AUTOMATION, Change
from dronectl.domain.patrols import missions as ms
from dronectl.domain.patrols.decisions import Station, reconcile, wanted
from dronectl.domain.patrols.triggers import RoadWeather
from dronectl.operations.models import Event, EventKind
from dronectl.operations.port import AutomationError, Operations
from dronectl.operations.views import utc

log = structlog.get_logger("dronectl.patrols")

RECENT_ENDED = 50  # ended missions kept in memory for patrol.list


class PatrolError(AutomationError):
    """A request about patrols that cannot be honoured (unknown stretch or mission, already covered)."""


class PatrolService:
    def __init__(
        self,
        owner: Operations,
        config: PatrolsConfig,
        lookout: Lookout | None = None,
        *,
        store: MissionStore | None = None,
        settings: PatrolSettings | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.owner = owner
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.config = config
        self.lookout = lookout
        self.store = store or MissionStore(owner.fleet.audit)
        self.settings = settings or PatrolSettings()
        self.tz = ZoneInfo(timezone)
        self._live: dict[str, LiveMission] = {}
        self._ended: list[ms.Mission] = []
        self._cooldown: dict[tuple[ms.MissionKind, str], float] = {}  # no automatic restart before
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        owner.control_listeners.append(self._on_control)
        owner.patrols = self

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover the stored missions, then evaluate the triggers every tick until cancelled
        (supervised: after a crash it starts over from the store)."""
        self._live.clear()
        try:
            await self.recover()
            while True:
                try:
                    await self.evaluate()
                except AuditError as exc:  # the store is down: retry at the next tick
                    log.error("patrol.evaluate_failed", error=str(exc))
                await self.sleep(self.settings.tick_s)
        finally:
            await self.aclose()

    async def sleep(self, sim_s: float) -> None:
        """``sim_s`` seconds of the (possibly scaled) clock."""
        await asyncio.sleep(sim_s / float(getattr(self.clock, "speed", 1.0)))

    async def aclose(self) -> None:
        """Stop following the missions (they stay stored as they are, to resume after a restart)."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def step_down(self) -> None:
        """Stop for good and let go of the port (several instances: this instance no longer leads
        the automations; the next leader resumes or ends the stored missions, as after a restart)."""
        with contextlib.suppress(ValueError):
            self.owner.control_listeners.remove(self._on_control)
        if self.owner.patrols is self:
            self.owner.patrols = None
        await self.aclose()

    def stations(self) -> list[Station]:
        out = []
        for c in self.fleet.controllers.values():
            w = c.dock.weather if c.dock.link_up else None
            weather = (
                RoadWeather(
                    road_temp_c=w.road_temperature_c,
                    air_temp_c=w.air_temperature_c,
                    humidity_pct=w.humidity_pct,
                    precipitation_mmph=w.precipitation_mmph,
                    precipitation=w.precipitation.name.lower(),
                )
                if w is not None
                else None
            )
            out.append(Station(c.nest_id, c.home, weather))
        return out

    async def evaluate(self) -> None:
        """Start the wanted patrols not covered yet; stop automatic ones no longer wanted."""
        now_local = datetime.fromtimestamp(self.clock.calendar(), tz=UTC).astimezone(self.tz)
        want = wanted(self.config, self.stations(), now_local)
        decision = reconcile([live.mission for live in self._live.values()], want)
        for mission_id, why in decision.stop:
            self.request_stop(mission_id, why, trigger_over=True)
        now = self.clock.monotonic()
        for kind, stretch_id, trigger in decision.start:
            if self._cooldown.get((kind, stretch_id), now) > now:
                continue  # its last mission ended early (a pilot took it, no nest could go): not yet
            await self.create(kind, stretch_id, trigger=trigger, manual=False)

    # --- the API ----------------------------------------------------------------------------

    def check_start(self, kind: ms.MissionKind, stretch_id: str) -> str | None:
        """Why a patrol of ``kind`` over ``stretch_id`` cannot start now, or None."""
        known = {s.id for s in self.config.stretches}
        if stretch_id not in known:
            names = ", ".join(sorted(known)) or "none configured"
            return f"no road stretch {stretch_id!r} (stretches: {names})"
        for live in self._live.values():
            m = live.mission
            if m.active and m.kind is kind and m.stretch_id == stretch_id:
                return f"stretch {stretch_id} is already patrolled by mission {m.id} ({m.state.value})"
        return None

    def check_stop(self, mission_id: str) -> str | None:
        live = self._live.get(mission_id)
        if live is None:
            ended = next((m for m in self._ended if m.id == mission_id), None)
            if ended is not None:
                return f"mission {mission_id} already ended: {ended.reason}"
            return f"no active mission {mission_id!r}"
        if live.stop_why is not None:
            return f"mission {mission_id} is already stopping ({live.stop_why})"
        return None

    async def start(self, kind: ms.MissionKind, stretch_id: str, *, actor_id: str) -> ms.Mission:
        problem = self.check_start(kind, stretch_id)
        if problem is not None:
            raise PatrolError(problem)
        return await self.create(kind, stretch_id, trigger=f"started by {actor_id}", manual=True)

    def stop(self, mission_id: str, *, by: str) -> ms.Mission:
        problem = self.check_stop(mission_id)
        if problem is not None:
            raise PatrolError(problem)
        self.request_stop(mission_id, f"stopped by {by}")
        return self._live[mission_id].mission

    def missions(self, *, active_only: bool = False) -> list[ms.Mission]:
        active = [live.mission for live in self._live.values()]
        return active if active_only else [*self._ended, *active]

    def mission(self, mission_id: str) -> ms.Mission | None:
        live = self._live.get(mission_id)
        if live is not None:
            return live.mission
        return next((m for m in self._ended if m.id == mission_id), None)

    def busy_nests(self) -> set[int]:
        """Nests a mission flies (or brings in as relief)."""
        out: set[int] = set()
        for live in self._live.values():
            for n in (live.mission.nest_id, live.mission.relief_nest_id):
                if n is not None:
                    out.add(n)
        return out

    def request_stop(self, mission_id: str, why: str, *, trigger_over: bool = False) -> None:
        live = self._live.get(mission_id)
        if live is None or live.stop_why is not None:
            return
        live.stop_why = why
        live.trigger_over = trigger_over
        live.interrupt.set()

    # --- missions ---------------------------------------------------------------------------

    async def create(
        self, kind: ms.MissionKind, stretch_id: str, *, trigger: str, manual: bool
    ) -> ms.Mission:
        now = self.clock.wall()
        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%S")
        short = "ice" if kind is ms.MissionKind.BLACK_ICE else "traffic"
        mission = ms.Mission(
            id=f"patrol-{short}-{stretch_id}-{stamp}-{next(self._seq)}",
            kind=kind,
            stretch_id=stretch_id,
            state=ms.MissionState.PLANNED,
            created_unix_s=now,
            trigger=trigger,
            manual=manual,
            reason=trigger,
        )
        live = LiveMission(mission)
        self._live[mission.id] = live
        await self._record_created(mission)
        await self.store.save(mission, now)
        self._announce(mission, f"planned: {trigger}")
        self._serve(live)
        return mission

    def _serve(self, live: LiveMission) -> None:
        flight = MissionFlight(self, live)
        task = asyncio.get_running_loop().create_task(flight.run(), name=f"patrol[{live.mission.id}]")
        live.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("patrol.task_crashed", task=task.get_name(), error=repr(task.exception()))

    async def apply(self, live: LiveMission, event: ms.Event) -> bool:
        """One transition: stored (committed), audited, announced. False when it does not fit."""
        t = ms.transition(live.mission, event, self.clock.wall())
        if not t.accepted:
            log.warning("patrol.transition_rejected", id=live.mission.id, cause=t.cause)
            return False
        live.mission = t.mission
        m = t.mission
        now = self.clock.wall()
        try:
            await self.store.save(m, now)
        except AuditError as exc:
            log.error("patrol.store_failed", id=m.id, error=str(exc))
        await self._record_transition(m, failed=isinstance(event, ms.End) and event.failed)
        self._announce(m, t.cause)
        if not m.active:
            self._live.pop(m.id, None)
            self._ended = [*self._ended, m][-RECENT_ENDED:]
            if not m.manual and not live.trigger_over:
                self._cooldown[(m.kind, m.stretch_id)] = (
                    self.clock.monotonic() + self.settings.restart_after_s
                )
        return True

    def _announce(self, m: ms.Mission, cause: str) -> None:
        log.info("patrol.mission", id=m.id, state=m.state.value, nest=m.nest_id, cause=cause)
        self.owner.publish(
            Event(
                kind=EventKind.PATROL,
                at=utc(self.clock.wall()),
                nest_id=m.nest_id,
                message=f"{m.kind.value} patrol {m.stretch_id}: {cause}",
                flight_id=m.flight_id,
                data=mission_data(m),
            )
        )

    async def _record_created(self, m: ms.Mission) -> None:
        try:
            await self.fleet.audit.record_command(
                CommandRecord(
                    command_id=m.id,
                    at_unix_s=m.created_unix_s,
                    actor_id=ACTOR_ID,
                    actor_role=AUTOMATION,
                    nest_id=None,
                    method="patrol.mission",
                    args={"kind": m.kind.value, "stretch_id": m.stretch_id, "trigger": m.trigger},
                    outcome=CommandOutcome.ACCEPTED,
                    code=m.state.value,
                    message=m.trigger,
                ),
                fence=self.fleet.audit.automation_fence(),
            )
        except AuditError as exc:
            log.error("patrol.audit_failed", id=m.id, error=str(exc))

    async def _record_transition(self, m: ms.Mission, *, failed: bool) -> None:
        if m.active:
            outcome = CommandOutcome.IN_PROGRESS
        else:
            outcome = CommandOutcome.FAILED if failed else CommandOutcome.SUCCEEDED
        try:
            await self.fleet.audit.record_outcome(
                OutcomeRecord(m.id, self.clock.wall(), outcome, m.state.value, m.reason),
                fence=self.fleet.audit.automation_fence(),
            )
        except AuditError as exc:
            log.error("patrol.audit_failed", id=m.id, error=str(exc))

    # --- manual control ---------------------------------------------------------------------

    def _on_control(self, change: Change) -> None:
        """A person took a nest: every mission flying it lets go at once (called synchronously)."""
        if change.holder is None:
            return
        for live in self._live.values():
            m = live.mission
            if change.nest_id in (m.nest_id, m.relief_nest_id) and live.taken_by is None:
                live.taken_by, live.taken_nest = change.holder.describe(), change.nest_id
                live.interrupt.set()

    # --- restart ----------------------------------------------------------------------------

    async def recover(self) -> None:
        """The missions a previous run left unfinished: resume those whose drone is still on the
        mission's flight, end the others with the reason."""
        for m in await self.store.unfinished():
            live = LiveMission(m)
            self._live[m.id] = live
            why = await self._resume_problem(m)
            if why is None:
                log.info("patrol.resumed", id=m.id, state=m.state.value, nest=m.nest_id)
                self._announce(m, f"resumed after a restart ({m.state.value})")
                if m.state is ms.MissionState.HANDING_OVER:
                    await self.apply(live, ms.ReliefFailed("the controller restarted during the handover"))
                self._serve(live)
            else:
                await self.apply(live, ms.End(f"controller restarted: {why}"))

    async def _resume_problem(self, m: ms.Mission) -> str | None:
        """Why ``m`` cannot be resumed after a restart, or None."""
        if m.state is ms.MissionState.PLANNED:
            return None  # nothing flies yet: planning again is safe
        if m.nest_id is None or m.nest_id not in self.fleet.controllers:
            return f"nest {m.nest_id} unknown"
        if m.state is ms.MissionState.LAUNCHING:
            return f"nest {m.nest_id} was launching; not followed further"
        if not self.fleet.controls(m.nest_id):  # several instances: its drone is another's to follow
            return f"nest {m.nest_id} is controlled by another dronectl instance"
        c = self.fleet.nest(m.nest_id)
        with contextlib.suppress(Exception):
            await c.wait_for(
                lambda: c.state.phase is not ns.NestPhase.OFFLINE,
                self.settings.recover_timeout_s,
                "nest known",
            )
        holder = self.owner.authority.holder(m.nest_id, self.clock.wall())
        if holder is not None:
            return f"nest {m.nest_id} under manual control of {holder.describe()}"
        if not c.state.flying or c.flight is None:
            return f"nest {m.nest_id} drone no longer flying ({c.state.phase.value})"
        if c.flight.flight_id != m.flight_id:
            return f"nest {m.nest_id} flies another flight ({c.flight.flight_id})"
        if m.state is not ms.MissionState.RETURNING and c.state.phase in (
            ns.NestPhase.RETURNING,
            ns.NestPhase.LANDING,
        ):
            return f"nest {m.nest_id} drone is {c.state.phase.value}"
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        return [mission_data(m) for m in self.missions()]
