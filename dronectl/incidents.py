"""The incident dispatcher: carries the dispatch plan out on the fleet, as the automation.

``FleetApiController.report_incident`` hands each incident to :meth:`IncidentDispatcher.submit`
(non-blocking). The plan (``dronectl.dispatch``) is made at once and the chosen nest reserved
for the incident, so a second incident arriving at the same moment goes to the next best nest.
Then, in a task of its own per incident:

- the incident is recorded in the audit store (a ``commands`` row, method ``incident``, with the
  reporter as actor; each milestone is an outcome of it: ``in_progress`` with the milestone as
  code, ``succeeded`` when the drone leaves the scene, ``failed`` when it never got there);
- priority at or above the configured one: the drone goes at once; otherwise the plan is
  proposed and waits for a commander's ``incident.confirm``; when no nest can go, the incident
  is queued with every reason per nest and planned again on each change of a nest;
- the launch (or the retask of an airborne drone from less urgent work), then the orbit over the
  scene, are commands like any other (``CommandRunner``) with the actor ``dispatcher`` in the role
  ``automation``: audited, checked again by the safety policy, and refused while a person holds
  manual control of the nest (automation never takes control from a pilot);
- milestones (dispatched, airborne, on scene, video live) are stored, then published as
  ``incident_progress`` events, each with its time against the 1-3-5 targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from dronectl import nest_state as ns
from dronectl.api.controller import Command
from dronectl.api.models import (
    TERMINAL_STATES,
    Event,
    EventKind,
    GotoArgs,
    Incident,
    LaunchArgs,
    Method,
    OrbitArgs,
    ProgressState,
    Role,
    Target,
)
from dronectl.api_views import utc
from dronectl.audit import AuditError, CommandOutcome, CommandRecord, FlightEvent, OutcomeRecord
from dronectl.control_authority import AUTOMATION
from dronectl.dispatch import (
    DEFAULT_SETTINGS,
    Action,
    Candidate,
    DispatchPlan,
    DispatchSettings,
    Mark,
    Milestone,
    Mode,
    Option,
    Reason,
    SceneRequest,
    Work,
    decide,
    mark,
    plan,
)
from dronectl.dispatch.estimate import cruise_model
from dronectl.errors import DronectlError
from dronectl.geo import GeoPoint
from dronectl.nest_controller import NestController, NestEvent

if TYPE_CHECKING:
    from dronectl.api_controller import FleetApiController

log = structlog.get_logger("dronectl.incidents")

ACTOR_ID = "dispatcher"
COMMAND_TTL_S = 60.0
MAX_ATTEMPTS = 3  # nests tried for one incident before it is given up
SCENE_TIMEOUT_S = 3600.0


class IncidentError(Exception):
    """A request about an incident that cannot be honoured (unknown, not waiting, no such option)."""


@dataclass
class _Incident:
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

    @property
    def id(self) -> str:
        return self.incident.id

    def reached(self, milestone: Milestone) -> bool:
        """In the current attempt (a drone lost to a more urgent incident starts a new one)."""
        return any(m.milestone is milestone for m in self.marks[self.attempt_from :])


class IncidentDispatcher:
    def __init__(self, owner: FleetApiController, settings: DispatchSettings = DEFAULT_SETTINGS) -> None:
        self.owner = owner
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.settings = settings
        self._incidents: dict[str, _Incident] = {}
        self._reserved: dict[int, str] = {}  # nest -> incident
        self._work: dict[int, Work] = {}  # other automations' airborne work (patrols), by nest
        self._our_flights: set[str] = set()  # flights the dispatcher launched (retaskable when idle)
        self._seq = itertools.count(1)
        for controller in self.fleet.controllers.values():
            controller.listeners.append(self._on_nest_event)

    # --- the API --------------------------------------------------------------------------

    def submit(self, incident: Incident) -> None:
        """Take an incident (non-blocking): plan and reserve now, carry it out in a task."""
        if incident.id in self._incidents:
            log.info("incident.repeated", id=incident.id)
            return
        inc = _Incident(
            incident,
            SceneRequest(
                incident.id, GeoPoint(incident.position.lat, incident.position.lon), incident.priority
            ),
            self.clock.monotonic(),
            self.clock.wall(),
        )
        self._incidents[incident.id] = inc
        self._plan_and_reserve(inc)
        self.owner.spawn(self._serve(inc), f"incident[{incident.id}]")

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
            return f"incident {incident_id} is not waiting for a confirmation ({self._stage(inc)})"
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
        self._reserve(inc, option.nest_id)
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
        self._release(inc)
        inc.wake.set()
        self.owner.spawn(
            self._milestone(inc, Milestone.CLOSED, message=f"cancelled by {by}", final=True),
            f"incident[{inc.id}].cancel",
        )

    def video_started(self, nest_id: int) -> None:
        """The camera stream of ``nest_id`` reached the command center: the video-live milestone
        of the incident that nest serves. TODO(video): call from the VideoHub when a nest's ingest
        starts (dronectl/video is being built in parallel)."""
        incident_id = self._reserved.get(nest_id)
        inc = self._incidents.get(incident_id) if incident_id is not None else None
        if (
            inc is None
            or inc.done
            or not inc.reached(Milestone.DISPATCHED)
            or inc.reached(Milestone.VIDEO_LIVE)
        ):
            return
        self.owner.spawn(self._milestone(inc, Milestone.VIDEO_LIVE), f"incident[{inc.id}].video")

    def set_work(self, nest_id: int, work: Work | None) -> None:
        """Another automation (a patrol) says what the nest's drone flies for, so that a more urgent
        incident may take it over; None when it stops."""
        if work is None:
            self._work.pop(nest_id, None)
        else:
            self._work[nest_id] = work

    async def aclose(self) -> None:
        """Nothing of our own to stop: the incident tasks belong to the owner (cancelled there)."""
        for inc in self._incidents.values():
            inc.wake.set()

    # --- planning -------------------------------------------------------------------------

    def _candidates(self, inc: _Incident) -> list[Candidate]:
        now = self.clock.wall()
        out = []
        for c in self.fleet.controllers.values():
            unavailable: list[Reason] = []
            holder = self.owner.authority.holder(c.nest_id, now)
            if holder is not None:
                unavailable.append(
                    Reason(
                        "manual_control", f"under manual control of {holder.describe()}; automation keeps off"
                    )
                )
            other = self._reserved.get(c.nest_id)
            if other is not None and other != inc.id and not c.state.flying:
                unavailable.append(Reason("assigned", f"assigned to incident {other}"))
            if c.nest_id in inc.excluded:
                unavailable.append(
                    Reason("failed", f"failed this incident before: {inc.excluded[c.nest_id]}")
                )
            out.append(
                Candidate(
                    c.snapshot(),
                    tuple(c.fleet.others(c.nest_id)),
                    c.drone_position() if c.state.flying else None,
                    self._work_of(c, inc),
                    tuple(unavailable),
                )
            )
        return out

    def _work_of(self, c: NestController, inc: _Incident) -> Work | None:
        serving = self._reserved.get(c.nest_id)
        if serving is not None and serving != inc.id and serving in self._incidents:
            other = self._incidents[serving]
            return Work(other.request.priority, f"incident {serving}")
        if c.nest_id in self._work:
            return self._work[c.nest_id]
        if c.flight is not None and c.flight.flight_id in self._our_flights and serving is None:
            return Work(self.settings.idle_priority, "no incident (flight of the dispatcher)")
        return None

    def _plan_and_reserve(self, inc: _Incident) -> None:
        """Plan (pure, no await) and reserve the chosen nest in the same step."""
        # in a hurry (a launch without asking): skip the checks of nests that cannot win; a proposal
        # shows the commander every nest
        hurry = inc.confirmed_nest is None and (
            inc.confirmed_by is not None or self.settings.launches_automatically(inc.request.priority)
        )
        inc.plan = plan(inc.request, self._candidates(inc), self.fleet.policy, self.settings, prune=hurry)
        inc.action = decide(inc.plan, self.settings, confirmed=inc.confirmed_by is not None)
        if inc.action is Action.LAUNCH:
            nest_id = inc.confirmed_nest if inc.confirmed_nest is not None else None
            option = inc.plan.option(nest_id) if nest_id is not None else inc.plan.chosen
            if option is None:  # the confirmed nest lost its go: take the best there is
                option = inc.plan.chosen
            assert option is not None
            self._reserve(inc, option.nest_id)
            inc.mode = option.mode

    def _reserve(self, inc: _Incident, nest_id: int) -> None:
        self._release(inc)
        previous = self._reserved.get(nest_id)
        self._reserved[nest_id] = inc.id
        inc.nest_id = nest_id
        if previous is not None and previous != inc.id and previous in self._incidents:
            self._incidents[previous].wake.set()  # it lost its drone to a more urgent incident

    def _release(self, inc: _Incident) -> None:
        if inc.nest_id is not None and self._reserved.get(inc.nest_id) == inc.id:
            del self._reserved[inc.nest_id]
        inc.nest_id = None

    def _holds(self, inc: _Incident) -> bool:
        return inc.nest_id is not None and self._reserved.get(inc.nest_id) == inc.id

    def _on_nest_event(self, event: NestEvent) -> None:
        for inc in self._incidents.values():
            if not inc.done and inc.action in (Action.QUEUE, Action.PROPOSE):
                inc.wake.set()

    # --- serving one incident -------------------------------------------------------------

    async def _serve(self, inc: _Incident) -> None:
        try:
            await self._record_incident(inc)
            await self._milestone(inc, Milestone.RECEIVED, message=self._received_text(inc))
            attempts = 0
            while attempts < MAX_ATTEMPTS:
                if not await self._until_dispatchable(inc):
                    return
                attempts += 1
                outcome = await self._fly(inc)
                if outcome is None or inc.done:
                    return
                self._plan_and_reserve(inc)
            await self._finish(inc, Milestone.FAILED, f"given up after {attempts} attempts")
        except asyncio.CancelledError:
            self._release(inc)
            raise
        finally:
            if inc.done:
                self._release(inc)

    def _received_text(self, inc: _Incident) -> str:
        i = inc.incident
        return f"incident {i.id} ({i.kind}, priority {i.priority}) received"

    async def _until_dispatchable(self, inc: _Incident) -> bool:
        """Until the plan says launch (queued and proposed incidents wait here); False: ended."""
        while True:
            assert inc.plan is not None
            if inc.action is Action.LAUNCH:
                return True
            if inc.action is Action.QUEUE:
                note = inc.plan.why_none()
                if note != inc.last_note:
                    inc.last_note = note
                    await self._milestone(inc, Milestone.QUEUED, message=note)
            elif inc.action is Action.PROPOSE:
                chosen = inc.plan.chosen
                assert chosen is not None
                note = f"proposed: {chosen.describe()}; waiting for a commander's confirmation"
                if note.split(", on scene")[0] != (inc.last_note or "").split(", on scene")[0]:
                    inc.last_note = note
                    await self._milestone(inc, Milestone.PROPOSED, message=note)
            inc.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.replan_period_s):
                    await inc.wake.wait()
            if inc.done:
                return False
            self._plan_and_reserve(inc)
            if inc.confirmed_by is not None and not inc.reached(Milestone.CONFIRMED):
                await self._milestone(
                    inc, Milestone.CONFIRMED, message=f"confirmed by {inc.confirmed_by}: nest {inc.nest_id}"
                )

    async def _fly(self, inc: _Incident) -> str | None:
        """Send the chosen drone and follow it; None when the incident is over, else why this
        attempt failed (the caller plans again, without that nest when the nest was at fault)."""
        nest_id, mode = inc.nest_id, inc.mode
        assert nest_id is not None and mode is not None and inc.plan is not None
        inc.attempt_from = len(inc.marks)
        c = self.fleet.nest(nest_id)
        option = inc.plan.option(nest_id)
        scene = inc.request.scene
        target = Target(lat=scene.lat_deg, lon=scene.lon_deg, alt_m=self.settings.cruise_alt_m)
        speed = cruise_model(self.fleet.policy.model, self.settings).cruise_airspeed_mps
        args: LaunchArgs | GotoArgs
        if mode is Mode.LAUNCH:
            method, args = Method.LAUNCH, LaunchArgs(target=target, speed_mps=speed)
        else:
            method, args = Method.GOTO, GotoArgs(target=target, speed_mps=speed)
        command = self._command(inc, method, nest_id, args)
        last = None
        async for update in self.owner.execute(command):
            last = update
            if c.flight is not None and inc.flight_id is None and update.state is not ProgressState.ACCEPTED:
                inc.flight_id = c.flight.flight_id
                self._our_flights.add(c.flight.flight_id)
            if update.state is ProgressState.ACCEPTED:
                if mode is Mode.RETASK and c.flight is not None:
                    inc.flight_id = c.flight.flight_id
                await self._milestone(
                    inc,
                    Milestone.DISPATCHED,
                    nest_id=nest_id,
                    message=f"{'launch' if mode is Mode.LAUNCH else 'retask'} of nest {nest_id} ordered",
                    extra={
                        "mode": mode.value,
                        "command_id": command.id,
                        "predicted_time_to_scene_s": (
                            round(option.time_to_scene_s, 1) if option is not None else None
                        ),
                    },
                )
                if mode is Mode.RETASK:
                    await self._milestone(
                        inc, Milestone.AIRBORNE, nest_id=nest_id, message="already airborne"
                    )
            elif (
                update.state is ProgressState.IN_PROGRESS
                and not inc.reached(Milestone.AIRBORNE)
                and (c.state.phase in ns.AIRBORNE or c.drone_in_air())
            ):
                await self._milestone(inc, Milestone.AIRBORNE, nest_id=nest_id)
        if inc.done:  # cancelled while the drone was on its way
            return None
        if last is None or last.state is not ProgressState.SUCCEEDED:
            why = "no answer" if last is None else last.message
            if last is not None and last.reasons:
                why += ": " + "; ".join(last.reasons)
            return await self._attempt_failed(inc, c, why)
        if not inc.reached(Milestone.AIRBORNE):
            await self._milestone(inc, Milestone.AIRBORNE, nest_id=nest_id)
        await self._milestone(inc, Milestone.ON_SCENE, nest_id=nest_id)
        await self._orbit(inc, nest_id)
        return await self._watch_scene(inc, c)

    async def _attempt_failed(self, inc: _Incident, c: NestController, failure: str) -> str | None:
        if inc.done:  # cancelled meanwhile
            return None
        holder = self.owner.authority.holder(c.nest_id, self.clock.wall())
        if holder is not None and inc.reached(Milestone.DISPATCHED) and self._holds(inc):
            await self._finish(inc, Milestone.CLOSED, f"nest {c.nest_id} taken over by {holder.describe()}")
            return None
        if not self._holds(inc) and inc.reached(Milestone.DISPATCHED):
            failure = "its drone was sent to a more urgent incident"
        else:
            inc.excluded[c.nest_id] = failure
        self._release(inc)
        await self._milestone(
            inc,
            Milestone.FAILED,
            nest_id=c.nest_id,
            message=f"nest {c.nest_id}: {failure}; planning again",
            final=False,
        )
        return failure

    async def _orbit(self, inc: _Incident, nest_id: int) -> None:
        s = self.settings
        centre = Target(lat=inc.request.scene.lat_deg, lon=inc.request.scene.lon_deg, alt_m=s.cruise_alt_m)
        args = OrbitArgs(center=centre, radius_m=s.orbit_radius_m, speed_mps=s.orbit_speed_mps)
        command = self._command(inc, Method.ORBIT, nest_id, args)
        async for update in self.owner.execute(command):
            if update.state in TERMINAL_STATES and update.state is not ProgressState.SUCCEEDED:
                log.warning("incident.orbit_failed", id=inc.id, nest=nest_id, reason=update.message)

    async def _watch_scene(self, inc: _Incident, c: NestController) -> str | None:
        """Until the drone leaves the scene: closed (None), or lost to a more urgent incident
        (the reason: the caller plans again)."""
        flight_id = c.flight.flight_id if c.flight is not None else None

        def taken() -> bool:
            return self.owner.authority.holder(c.nest_id, self.clock.wall()) is not None

        def left() -> bool:
            return (
                not self._holds(inc)
                or taken()
                or c.flight is None
                or c.flight.flight_id != flight_id
                or c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING)
                or not c.state.flying
            )

        with contextlib.suppress(DronectlError):
            await c.wait_for(left, SCENE_TIMEOUT_S, "leave the scene")
        if not self._holds(inc):
            return await self._attempt_failed(inc, c, "its drone was sent to a more urgent incident")
        holder = self.owner.authority.holder(c.nest_id, self.clock.wall())
        if holder is not None:
            why = f"nest {c.nest_id} taken over by {holder.describe()}"
        elif c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING):
            why = f"nest {c.nest_id} left the scene ({c.state.phase.value})"
        else:
            why = f"nest {c.nest_id} flight over ({c.state.phase.value})"
        await self._finish(inc, Milestone.CLOSED, why)
        return None

    async def _finish(self, inc: _Incident, milestone: Milestone, message: str) -> None:
        if inc.done:
            return
        await self._milestone(inc, milestone, message=message, final=True)
        inc.done = True
        self._release(inc)

    # --- records and events ---------------------------------------------------------------

    def _command(self, inc: _Incident, method: Method, nest_id: int, args: Any) -> Command:
        now = self.clock.wall()
        return Command(
            id=f"{inc.id}.{next(self._seq)}.{method.value}.n{nest_id}",
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=ACTOR_ID,
            actor_role=Role(AUTOMATION),
            issued_at_unix_s=now,
            deadline_unix_s=now + COMMAND_TTL_S,
            received_at_unix_s=now,
        )

    async def _record_incident(self, inc: _Incident) -> None:
        i = inc.incident
        try:
            await self.fleet.audit.record_command(
                CommandRecord(
                    command_id=i.id,
                    at_unix_s=inc.received_unix_s,
                    actor_id=i.actor.id,
                    actor_role=i.actor.role.value,
                    nest_id=None,
                    method="incident",
                    args=i.model_dump(mode="json", exclude={"id", "actor"}),
                    outcome=CommandOutcome.ACCEPTED,
                    code="received",
                    message=self._received_text(inc),
                )
            )
        except AuditError as exc:
            log.error("incident.audit_failed", id=i.id, error=str(exc))

    def _stage(self, inc: _Incident) -> str:
        return inc.marks[-1].milestone.value if inc.marks else "received"

    async def _milestone(
        self,
        inc: _Incident,
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
                    OutcomeRecord(inc.id, now, outcome, milestone.value, text)
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
