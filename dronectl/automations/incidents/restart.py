"""After a controller restart: the incidents a previous run left open, picked up again.

:class:`IncidentRestart` reads the incidents the audit store holds without a final outcome,
asks ``recovery`` (pure) what to do with each given the nests as they are now, and carries it
out: the drone still flying one is followed again, those nothing flew for yet are planned again
(a proposal waits for a confirmation again unless it had one), the others are closed with the
reason. Nothing is recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from dronectl.audit import AuditError, CommandOutcome, OutcomeRecord
from dronectl.automations.incidents.planning import IncidentBoard
from dronectl.automations.incidents.progress import IncidentTasks, Progress, ServedIncident
from dronectl.automations.incidents.recovery import (
    DroneNow,
    Recovery,
    Resume,
    StoredIncident,
    StoredIncidentError,
    recovery,
    stored_incident,
)
from dronectl.automations.incidents.serving import IncidentServing
from dronectl.domain import nest_state as ns
from dronectl.domain.dispatch import DispatchSettings, Milestone, SceneRequest, mark
from dronectl.domain.errors import DronectlError
from dronectl.domain.geo import GeoPoint
from dronectl.nest.controller import NestController
from dronectl.operations.port import Operations

log = structlog.get_logger("dronectl.automations.incidents.dispatcher")  # the dispatcher's log

RECOVER_WAIT_S = 30.0  # after a restart: how long to wait for the nests to be known again
ADOPT_WAIT_S = 5.0  # several instances: an incident another instance recorded, while we run


@dataclass(frozen=True, slots=True)
class _Why:
    """How a picked-up incident's milestones say why."""

    resumed: str
    closed: str


RESTART = _Why("resumed after a controller restart", "closed after a controller restart")
ADOPTED = _Why("taken up by the automations leader", "closed by the automations leader")


class IncidentRestart:
    """Picks up, once, the incidents a previous run left open, into ``board`` and ``serving``."""

    def __init__(
        self,
        owner: Operations,
        settings: DispatchSettings,
        board: IncidentBoard,
        progress: Progress,
        serving: IncidentServing,
        tasks: IncidentTasks,
    ) -> None:
        self.owner = owner
        self.tasks = tasks
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.settings = settings
        self.board = board
        self.progress = progress
        self.serving = serving
        self._recovered = False

    async def recover(self, wait_s: float = RECOVER_WAIT_S) -> list[str]:
        """As ``IncidentDispatcher.recover``: returns the ids picked up (none the second time)."""
        if self._recovered:
            return []
        self._recovered = True
        return await self._pick_up(wait_s, RESTART)

    async def adopt(self, wait_s: float = ADOPT_WAIT_S) -> list[str]:
        """As ``IncidentDispatcher.adopt``: the open incidents of the store not served here."""
        if not self._recovered:
            return []  # the pick-up after the start comes first (and takes them all)
        return await self._pick_up(wait_s, ADOPTED)

    async def _pick_up(self, wait_s: float, why: _Why) -> list[str]:
        try:
            rows = await self.fleet.audit.open_incidents()
            stored: list[StoredIncident] = []
            for row in rows:
                if row["command_id"] in self.board.incidents:
                    continue
                flights = await self.fleet.audit.incident_flights(row["command_id"])
                try:
                    stored.append(stored_incident(row, flights))
                except StoredIncidentError as exc:
                    log.error("incident.unrecoverable", id=row["command_id"], error=str(exc))
                    await self._close_unreadable(row["command_id"], str(exc))
        except AuditError as exc:
            log.error("incident.recover_failed", error=str(exc))
            return []
        if not stored:
            return []
        await self._nests_known(wait_s)  # planned on offline nests, an incident would only queue
        claimed: dict[int, str] = {}  # nest -> incident following it
        for s in stored:
            decision = recovery(s, [self._drone_now(c) for c in self.fleet.controllers.values()])
            if decision.action is Resume.FOLLOW and decision.nest_id in claimed:
                other = claimed[decision.nest_id]
                decision = Recovery(Resume.REPLAN, f"its drone serves incident {other}: planned again")
            if decision.action is Resume.FOLLOW and decision.nest_id is not None:
                claimed[decision.nest_id] = s.id
            await self._resume(s, decision, why)
        return [s.id for s in stored]

    async def _nests_known(self, wait_s: float) -> None:
        """Until every nest this instance controls is attached again (out of OFFLINE), at most
        ``wait_s`` (several instances: the others' nests stay offline here)."""

        async def known(c: NestController) -> None:
            with contextlib.suppress(DronectlError):
                await c.wait_for(lambda: c.state.phase is not ns.NestPhase.OFFLINE, wait_s, "nest known")

        controlled = [c for c in self.fleet.controllers.values() if self.fleet.controls(c.nest_id)]
        await asyncio.gather(*(known(c) for c in controlled))

    def _drone_now(self, c: NestController) -> DroneNow:
        flight = c.flight
        return DroneNow(
            nest_id=c.nest_id,
            online=c.state.phase is not ns.NestPhase.OFFLINE,
            flying=c.state.flying,
            phase=c.state.phase,
            flight_id=flight.flight_id if flight is not None else None,
            flight_command_id=flight.command_id if flight is not None else None,
        )

    async def _resume(self, s: StoredIncident, decision: Recovery, why: _Why) -> None:
        if s.id in self.board.incidents:  # delivered again meanwhile, and taken as it came
            return
        now_wall, now_mono = self.clock.wall(), self.clock.monotonic()
        speed = float(getattr(self.clock, "speed", 1.0))  # ScaledClock: its seconds run faster
        incident = s.incident
        inc = ServedIncident(
            incident,
            SceneRequest(
                incident.id, GeoPoint(incident.position.lat, incident.position.lon), incident.priority
            ),
            now_mono - max(0.0, now_wall - s.received_unix_s) * speed,
            s.received_unix_s,
            resumed=s.times_resumed + 1,
        )
        for m in s.milestones:
            inc.marks.append(mark(m.milestone, (m.at_unix_s - s.received_unix_s) * speed, self.settings))
        current = len(s.milestones) - len(s.attempt)
        dispatched = [i for i, m in enumerate(s.milestones[current:]) if m.milestone is Milestone.DISPATCHED]
        inc.attempt_from = current + dispatched[0] if dispatched else len(inc.marks)
        confirmation = s.confirmation
        if confirmation is not None:
            inc.confirmed_by, inc.confirmed_nest = confirmation
        inc.flight_id = decision.flight_id
        self.board.incidents[inc.id] = inc
        log.info("incident.recovered", id=inc.id, action=decision.action.value, reason=decision.reason)
        text = f"{why.resumed}: {decision.reason}"
        if decision.action is Resume.CLOSE:
            final = Milestone.CLOSED if s.reached(Milestone.ON_SCENE) else Milestone.FAILED
            await self.progress.milestone(inc, Milestone.RESUMED, nest_id=decision.nest_id, message=text)
            await self.serving.finish(inc, final, f"{why.closed}: {decision.reason}")
            return
        if decision.action is Resume.FOLLOW:
            assert decision.nest_id is not None and decision.flight_id is not None
            self.board.reserve(inc, decision.nest_id)
            self.board.our_flights.add(decision.flight_id)
            await self.progress.milestone(inc, Milestone.RESUMED, nest_id=decision.nest_id, message=text)
            self.tasks.spawn(self.serving.serve(inc, follow=True), f"incident[{inc.id}]")
            return
        await self.progress.milestone(inc, Milestone.RESUMED, message=text)
        self.board.plan_and_reserve(inc)
        self.tasks.spawn(self.serving.serve(inc, recorded=True), f"incident[{inc.id}]")

    async def _close_unreadable(self, incident_id: str, why: str) -> None:
        """A stored incident this version cannot read: closed, so it is not retried forever."""
        with contextlib.suppress(AuditError):
            await self.fleet.audit.record_outcome(
                OutcomeRecord(
                    incident_id, self.clock.wall(), CommandOutcome.FAILED, Milestone.FAILED.value, why
                ),
                fence=self.fleet.audit.automation_fence(),
            )
