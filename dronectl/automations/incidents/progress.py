"""One incident as the dispatcher serves it, and its progress: recorded, stored, then published.

:class:`ServedIncident` is what the dispatcher keeps of one incident (its plan, the nest serving
it, the milestones reached). :class:`Progress` records the incident in the audit store (a
``commands`` row, method ``incident``, the reporter as actor), stores each milestone as an
outcome of it (and with the flight), then publishes it as an ``incident_progress`` event with
its time against the 1-3-5 targets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from dronectl.audit import (
    AuditError,
    CommandOutcome,
    CommandRecord,
    DuplicateCommandError,
    FlightEvent,
    OutcomeRecord,
    StaleFenceError,
)
from dronectl.domain.dispatch import (
    Action,
    DispatchPlan,
    DispatchSettings,
    Mark,
    Milestone,
    Mode,
    Option,
    SceneRequest,
    mark,
)
from dronectl.operations.models import Event, EventKind, Incident
from dronectl.operations.port import Operations
from dronectl.operations.views import utc

log = structlog.get_logger("dronectl.automations.incidents.dispatcher")  # the dispatcher's log


class IncidentTasks:
    """The dispatcher's own tasks (one per incident, its milestones, the pick-up after a restart):
    cancelled together when the dispatcher stops (several instances: this one no longer leads the
    automations; the incidents stay in the shared store for the next leader)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("incident.task_crashed", task=task.get_name(), error=repr(task.exception()))

    async def cancel_all(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class ServedIncident:
    incident: Incident
    request: SceneRequest
    received_mono_s: float
    received_unix_s: float
    plan: DispatchPlan | None = None
    action: Action | None = None
    nest_id: int | None = None  # the nest serving (or reserved for) it
    mode: Mode | None = None
    confirmed_by: str | None = None
    confirmed_nest: int | None = None
    flight_id: str | None = None
    excluded: dict[int, str] = field(default_factory=dict)  # nests that failed it, and why
    marks: list[Mark] = field(default_factory=list)
    attempt_from: int = 0  # index in marks where the current attempt's milestones begin
    last_note: str | None = None  # the last queued/proposed message (republished only on change)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    resumed: int = 0  # controller restarts it was picked up after (keeps its command ids unique)

    @property
    def id(self) -> str:
        return self.incident.id

    def reached(self, milestone: Milestone) -> bool:
        """In the current attempt (a drone lost to a more urgent incident starts a new one)."""
        return any(m.milestone is milestone for m in self.marks[self.attempt_from :])

    @property
    def stage(self) -> str:
        """The last milestone reached, or ``received``."""
        return self.marks[-1].milestone.value if self.marks else "received"

    @property
    def received_text(self) -> str:
        return received_text(self.incident)


def received_text(i: Incident) -> str:
    return f"incident {i.id} ({i.kind}, priority {i.priority}) received"


def incident_record(i: Incident, received_unix_s: float) -> CommandRecord:
    """The incident's row in the audit store (a ``commands`` row, method ``incident``)."""
    return CommandRecord(
        command_id=i.id,
        at_unix_s=received_unix_s,
        actor_id=i.actor.id,
        actor_role=i.actor.role.value,
        nest_id=None,
        method="incident",
        args=i.model_dump(mode="json", exclude={"id", "actor"}),
        outcome=CommandOutcome.ACCEPTED,
        code="received",
        message=received_text(i),
    )


class Progress:
    """Records incidents and their milestones for ``owner``, and publishes the milestones."""

    def __init__(self, owner: Operations, settings: DispatchSettings) -> None:
        self.owner = owner
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.settings = settings

    async def record_incident(self, inc: ServedIncident) -> bool:
        """Record the incident; False when its id is recorded already (a report delivered again
        after a restart: the stored one is picked up by ``recover``, or was closed)."""
        i = inc.incident
        audit = self.fleet.audit
        try:
            await audit.record_command(
                incident_record(i, inc.received_unix_s),
                fence=audit.automation_fence(),  # several instances: the automations leader's
            )
        except DuplicateCommandError as exc:  # several instances: picked up by ``adopt`` if still open
            log.warning("incident.already_recorded", id=i.id, error=str(exc))
            return False
        except StaleFenceError as exc:  # no longer the automations leader: the new one serves it
            log.warning("incident.not_leader", id=i.id, error=str(exc))
            return False
        except AuditError as exc:  # the store is down: the incident is served all the same
            log.error("incident.audit_failed", id=i.id, error=str(exc))
        return True

    async def milestone(
        self,
        inc: ServedIncident,
        milestone: Milestone,
        *,
        nest_id: int | None = None,
        message: str | None = None,
        extra: dict[str, Any] | None = None,
        final: bool = False,
    ) -> None:
        """Store the milestone (with the incident, and with the flight), then publish it."""
        once = (Milestone.AIRBORNE, Milestone.ON_SCENE, Milestone.VIDEO_LIVE)
        if milestone in once and inc.reached(milestone):
            return
        m = mark(milestone, self.clock.monotonic() - inc.received_mono_s, self.settings)
        inc.marks.append(m)
        text = f"incident {inc.id}: " + (message or m.describe())
        if message and m.target_s is not None:
            text += f" ({m.describe()})"
        data: dict[str, Any] = {"incident_id": inc.id, "state": milestone.value, **m.data()}
        data["priority"] = inc.request.priority
        data["kind"] = inc.incident.kind
        data["lat"], data["lon"] = inc.request.scene.lat_deg, inc.request.scene.lon_deg
        if inc.plan is not None and milestone in (Milestone.RECEIVED, Milestone.QUEUED, Milestone.PROPOSED):
            data["options"] = [_option_data(o) for o in inc.plan.options]
            data["passed_over"] = _passed_data(inc.plan)
            data["unexamined"] = [
                {"nest_id": u.nest_id, "name": u.name, "at_least_s": round(u.at_least_s, 1)}
                for u in inc.plan.unexamined
            ]
        if extra:
            data.update(extra)
        outcome = CommandOutcome.IN_PROGRESS
        if final:
            outcome = CommandOutcome.SUCCEEDED if milestone is Milestone.CLOSED else CommandOutcome.FAILED
        now = self.clock.wall()
        try:
            if milestone is not Milestone.RECEIVED:
                await self.fleet.audit.record_outcome(
                    OutcomeRecord(inc.id, now, outcome, milestone.value, text),
                    fence=self.fleet.audit.automation_fence(),
                )
            if inc.flight_id is not None:
                await self.fleet.audit.record_event(
                    FlightEvent(inc.flight_id, now, f"incident.{milestone.value}", text, data)
                )
        except AuditError as exc:
            log.error("incident.audit_failed", id=inc.id, milestone=milestone.value, error=str(exc))
        log.info(
            "incident.milestone",
            id=inc.id,
            milestone=milestone.value,
            elapsed_s=round(m.elapsed_s, 2),
            nest=nest_id or inc.nest_id,
        )
        self.owner.publish(
            Event(
                kind=EventKind.INCIDENT_PROGRESS,
                at=utc(now),
                nest_id=nest_id,
                message=text,
                flight_id=inc.flight_id if nest_id is not None else None,
                data=data,
            )
        )


def _option_data(o: Option) -> dict[str, Any]:
    return {
        "nest_id": o.nest_id,
        "name": o.name,
        "mode": o.mode.value,
        "time_to_scene_s": round(o.time_to_scene_s, 1),
        "readiness_s": round(o.estimate.readiness_s, 1),
        "flight_s": round(o.estimate.flight_s, 1),
        "distance_m": round(o.estimate.distance_m),
    }


def _passed_data(p: DispatchPlan) -> list[dict[str, Any]]:
    return [
        {
            "nest_id": x.nest_id,
            "name": x.name,
            "reasons": [{"code": r.code, "message": r.message} for r in x.reasons],
        }
        for x in p.passed_over
    ]
