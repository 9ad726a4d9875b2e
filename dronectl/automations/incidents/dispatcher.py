"""The incident dispatcher: carries the dispatch plan out on the fleet, as the automation.

``FleetOperations.report_incident`` hands each incident to :meth:`IncidentDispatcher.submit`
(non-blocking). The plan (``dronectl.domain.dispatch``) is made at once and the chosen nest
reserved for the incident (``planning``), so a second incident arriving at the same moment goes
to the next best nest. Then, in a task of its own per incident (``serving``):

- the incident is recorded in the audit store (``progress``: a ``commands`` row, method
  ``incident``, with the reporter as actor; each milestone is an outcome of it: ``in_progress``
  with the milestone as code, ``succeeded`` when the drone leaves the scene, ``failed`` when it
  never got there);
- priority at or above the configured one: the drone goes at once; otherwise the plan is
  proposed and waits for a commander's ``incident.confirm``; when no nest can go, the incident
  is queued with every reason per nest and planned again on each change of a nest;
- the launch (or the retask of an airborne drone from less urgent work), then the orbit over the
  scene, are commands like any other (``CommandRunner``) with the actor ``dispatcher`` in the role
  ``automation``: audited, checked again by the safety policy, and refused while a person holds
  manual control of the nest (automation never takes control from a pilot);
- milestones (dispatched, airborne, on scene, video live) are stored, then published as
  ``incident_progress`` events, each with its time against the 1-3-5 targets;
- on scene at an accident in freezing weather (or at a reported patch of black ice), the lookout
  (``dronectl.automations.lookout``) watches the drone's video for ice while the drone is there;
  on the first finding the drone responds (hold over it, lights, warning, ground units) and the
  incident gets a ``finding`` milestone;
- after a controller restart, :meth:`IncidentDispatcher.start` picks up the incidents the audit
  store holds without a final outcome (``restart``, deciding with ``recovery``): the drone still
  flying one is followed again, those nothing flew for yet are planned again (a proposal waits
  for a confirmation again unless it had one), the others are closed with the reason.

:class:`IncidentDispatcher` is the coordinator: the port's entry points (submit, confirm, cancel)
over the parts above.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from dronectl.audit import AuditError
from dronectl.automations.incidents.planning import IncidentBoard
from dronectl.automations.incidents.progress import IncidentTasks, Progress, ServedIncident
from dronectl.automations.incidents.restart import ADOPT_WAIT_S, RECOVER_WAIT_S, IncidentRestart
from dronectl.automations.incidents.serving import IncidentServing, ice_watch_reason
from dronectl.domain.dispatch import (
    DEFAULT_SETTINGS,
    Action,
    DispatchPlan,
    DispatchSettings,
    Mark,
    Milestone,
    Option,
    SceneRequest,
    Work,
)
from dronectl.domain.geo import GeoPoint
from dronectl.nest.controller import NestEvent
from dronectl.operations.models import Incident
from dronectl.operations.port import AutomationError, Operations

if TYPE_CHECKING:
    from dronectl.automations.lookout import Lookout

__all__ = ["IncidentDispatcher", "IncidentError", "ice_watch_reason"]

log = structlog.get_logger("dronectl.automations.incidents.dispatcher")


class IncidentError(AutomationError):
    """A request about an incident that cannot be honoured (unknown, not waiting, no such option)."""


class IncidentDispatcher:
    def __init__(self, owner: Operations, settings: DispatchSettings = DEFAULT_SETTINGS) -> None:
        self.owner = owner
        self.tasking = owner.tasking  # nests reserved for incidents, other automations' work
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.settings = settings
        self._board = IncidentBoard(owner, settings)
        self._progress = Progress(owner, settings)
        self._tasks = IncidentTasks()
        self._serving = IncidentServing(owner, settings, self._board, self._progress, self._tasks)
        self._restart = IncidentRestart(
            owner, settings, self._board, self._progress, self._serving, self._tasks
        )
        self._incidents = self._board.incidents
        for controller in self.fleet.controllers.values():
            controller.listeners.append(self._on_nest_event)
        owner.incidents = self  # incident.confirm and reported incidents reach us through the port

    @property
    def lookout(self) -> Lookout | None:
        return self._serving.lookout

    def attach_lookout(self, lookout: Lookout) -> None:
        """Watch the video on scene with ``lookout``; its video hub tells us when a nest's video
        reaches the service (the video-live milestone)."""
        self._serving.lookout = lookout
        if lookout.hub is not None:
            lookout.hub.live_listeners.append(self.video_started)

    # --- the API --------------------------------------------------------------------------

    def submit(self, incident: Incident) -> None:
        """Take an incident (non-blocking): plan and reserve now, carry it out in a task."""
        if incident.id in self._incidents:
            log.info("incident.repeated", id=incident.id)
            return
        inc = ServedIncident(
            incident,
            SceneRequest(
                incident.id, GeoPoint(incident.position.lat, incident.position.lon), incident.priority
            ),
            self.clock.monotonic(),
            self.clock.wall(),
        )
        self._incidents[incident.id] = inc
        self._board.plan_and_reserve(inc)
        self._tasks.spawn(self._serving.serve(inc), f"incident[{incident.id}]")

    def incident_ids(self) -> list[str]:
        return list(self._incidents)

    def marks(self, incident_id: str) -> list[Mark]:
        return list(self._incidents[incident_id].marks)

    def current_plan(self, incident_id: str) -> DispatchPlan | None:
        return self._incidents[incident_id].plan

    def check_confirm(self, incident_id: str, nest_id: int | None) -> str | None:
        """Why ``incident.confirm`` cannot be honoured now, or None."""
        inc = self._incidents.get(incident_id)
        if inc is None:
            return f"no incident {incident_id!r}"
        if inc.done or inc.action is not Action.PROPOSE or inc.confirmed_by is not None:
            return f"incident {incident_id} is not waiting for a confirmation ({inc.stage})"
        assert inc.plan is not None
        if nest_id is not None and inc.plan.option(nest_id) is None:
            passed = next((p for p in inc.plan.passed_over if p.nest_id == nest_id), None)
            why = passed.describe() if passed is not None else f"nest {nest_id} is not one of the options"
            return f"nest {nest_id} cannot go: {why}"
        return None

    def confirm(self, incident_id: str, nest_id: int | None, actor_id: str) -> Option:
        """A commander's go for a proposed incident (optionally naming another nest with a go)."""
        problem = self.check_confirm(incident_id, nest_id)
        if problem is not None:
            raise IncidentError(problem)
        inc = self._incidents[incident_id]
        assert inc.plan is not None and inc.plan.chosen is not None
        option = inc.plan.option(nest_id) if nest_id is not None else inc.plan.chosen
        assert option is not None
        inc.confirmed_by, inc.confirmed_nest = actor_id, option.nest_id
        self._board.reserve(inc, option.nest_id)
        inc.wake.set()
        return option

    def cancel(self, incident_id: str, by: str) -> None:
        """The incident needs no drone any more: stop serving it (a drone already out is left to the
        operators, or to its own return)."""
        inc = self._incidents.get(incident_id)
        if inc is None:
            raise IncidentError(f"no incident {incident_id!r}")
        if inc.done:
            return
        inc.done = True
        self._board.release(inc)
        inc.wake.set()
        self._tasks.spawn(
            self._progress.milestone(inc, Milestone.CLOSED, message=f"cancelled by {by}", final=True),
            f"incident[{inc.id}].cancel",
        )

    def video_started(self, nest_id: int) -> None:
        """The camera stream of ``nest_id`` reached the service (the video hub's ingest delivers
        pictures, for whichever viewer, recorder or lookout asked): the video-live milestone of the
        incident that nest serves. Called by the hub (``attach_lookout``) and, for a stream that
        was already live when the nest was dispatched, from the milestones (``serving``)."""
        self._serving.video_started(nest_id)

    def serving(self, nest_id: int) -> str | None:
        """The incident the nest is reserved for (its drone is the dispatcher's now), or None."""
        return self.tasking.reserved.get(nest_id)

    def set_work(self, nest_id: int, work: Work | None) -> None:
        """Another automation (a patrol) says what the nest's drone flies for, so that a more urgent
        incident may take it over; None when it stops."""
        self.tasking.set_work(nest_id, work)

    async def aclose(self) -> None:
        """Stop serving: the incident tasks are cancelled (each releases its nest; a drone already
        out keeps flying its last command); the incidents stay open in the store, as they were."""
        for inc in self._incidents.values():
            inc.wake.set()
        await self._tasks.cancel_all()

    async def step_down(self) -> None:
        """Stop for good and let go of the port and the nests (several instances: this instance no
        longer leads the automations; the next leader picks the open incidents up from the store,
        as after a restart). Another dispatcher may be made on the same port later."""
        for controller in self.fleet.controllers.values():
            with contextlib.suppress(ValueError):
                controller.listeners.remove(self._on_nest_event)
        lookout = self._serving.lookout
        if lookout is not None and lookout.hub is not None:
            with contextlib.suppress(ValueError):
                lookout.hub.live_listeners.remove(self.video_started)
        if self.owner.incidents is self:
            self.owner.incidents = None
        await self.aclose()

    # --- after a restart ------------------------------------------------------------------

    def start(self) -> None:
        """Pick up the incidents a previous run left open (:meth:`recover`), in a task of the
        owner; call once the fleet runs (and the lookout is attached)."""

        async def recover() -> None:
            picked = await self.recover()
            if picked:
                log.info("incident.recovered_all", ids=picked)

        self._tasks.spawn(recover(), "incidents.recover")

    async def recover(self, wait_s: float = RECOVER_WAIT_S) -> list[str]:
        """Pick up the incidents a previous run left open (``recovery``): follow
        the drone that still flies one, plan again those nothing flew for yet, close the others
        with the reason. Run once, after the fleet started (it waits up to ``wait_s`` for the
        nests to be attached again and their open flights re-attached). Returns the ids picked up.
        Nothing is recorded twice: the incident's row stays as it is; a ``resumed`` milestone,
        new commands (ids of their own) and the later milestones are added to it."""
        return await self._restart.recover(wait_s)

    async def adopt(self, wait_s: float = ADOPT_WAIT_S) -> list[str]:
        """Several instances: pick up the incidents the store holds open that this dispatcher does
        not serve -- recorded by another instance (``intake``) before this leader did, or while no
        instance led -- through the restart path (``recover`` first: until it ran, nothing)."""
        return await self._restart.adopt(wait_s)

    async def adopting(self, period_s: float) -> None:
        """``adopt`` every ``period_s`` until cancelled (the leader's, with several instances)."""
        while True:
            try:
                picked = await self.adopt()
            except AuditError as exc:  # the store is away: the next round
                log.warning("incident.adopt_failed", error=str(exc))
                picked = []
            if picked:
                log.info("incident.adopted", ids=picked)
            await asyncio.sleep(period_s)  # a polling period: the rows are another instance's

    def _on_nest_event(self, event: NestEvent) -> None:
        for inc in self._incidents.values():
            if not inc.done and inc.action in (Action.QUEUE, Action.PROPOSE):
                inc.wake.set()
