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
  ``incident_progress`` events, each with its time against the 1-3-5 targets;
- on scene at an accident in freezing weather (or at a reported patch of black ice), the lookout
  (``dronectl.lookout``) watches the drone's video for ice while the drone is there; on the first
  finding the drone responds (hold over it, lights, warning, ground units) and the incident gets
  a ``finding`` milestone;
- after a controller restart, :meth:`IncidentDispatcher.start` picks up the incidents the audit
  store holds without a final outcome (``dronectl.incident_recovery``): the drone still flying
  one is followed again, those nothing flew for yet are planned again (a proposal waits for a
  confirmation again unless it had one), the others are closed with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from adapters.protocols import DockWeather
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
from dronectl.audit import (
    AuditError,
    CommandOutcome,
    CommandRecord,
    DuplicateCommandError,
    FlightEvent,
    OutcomeRecord,
)
from dronectl.config import BlackIceConfig
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
from dronectl.geo import GeoPoint, distance_m
from dronectl.incident_recovery import (
    DroneNow,
    Recovery,
    Resume,
    StoredIncident,
    StoredIncidentError,
    recovery,
    stored_incident,
)
from dronectl.nest_controller import ARRIVAL_RADIUS_M, NestController, NestEvent
from dronectl.patrols.triggers import ice_risk, road_weather

if TYPE_CHECKING:
    from dronectl.api_controller import FleetApiController
    from dronectl.lookout import Lookout

log = structlog.get_logger("dronectl.incidents")

ACTOR_ID = "dispatcher"
COMMAND_TTL_S = 60.0
MAX_ATTEMPTS = 3  # nests tried for one incident before it is given up
SCENE_TIMEOUT_S = 3600.0
RECOVER_WAIT_S = 30.0  # after a restart: how long to wait for the nests to be known again
# incident kinds at which the lookout watches for black ice (an accident only in freezing weather)
ICE_KINDS = frozenset({"black_ice", "ice", "icy_road"})
ACCIDENT_KINDS = frozenset({"accident", "traffic_accident", "collision"})


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
    resumed: int = 0  # controller restarts it was picked up after (keeps its command ids unique)

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
        self._recovered = False
        self.lookout: Lookout | None = None
        for controller in self.fleet.controllers.values():
            controller.listeners.append(self._on_nest_event)

    def attach_lookout(self, lookout: Lookout) -> None:
        """Watch the video on scene with ``lookout``; its video hub tells us when a nest's video
        reaches the service (the video-live milestone)."""
        self.lookout = lookout
        if lookout.hub is not None:
            lookout.hub.live_listeners.append(self.video_started)

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
        """The camera stream of ``nest_id`` reached the service (the video hub's ingest delivers
        pictures, for whichever viewer, recorder or lookout asked): the video-live milestone of the
        incident that nest serves. Called by the hub (``attach_lookout``) and, for a stream that
        was already live when the nest was dispatched, from the milestones below."""
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

    def serving(self, nest_id: int) -> str | None:
        """The incident the nest is reserved for (its drone is the dispatcher's now), or None."""
        return self._reserved.get(nest_id)

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

    # --- after a restart ------------------------------------------------------------------

    def start(self) -> None:
        """Pick up the incidents a previous run left open (:meth:`recover`), in a task of the
        owner; call once the fleet runs (and the lookout is attached)."""

        async def recover() -> None:
            picked = await self.recover()
            if picked:
                log.info("incident.recovered_all", ids=picked)

        self.owner.spawn(recover(), "incidents.recover")

    async def recover(self, wait_s: float = RECOVER_WAIT_S) -> list[str]:
        """Pick up the incidents a previous run left open (``dronectl.incident_recovery``): follow
        the drone that still flies one, plan again those nothing flew for yet, close the others
        with the reason. Run once, after the fleet started (it waits up to ``wait_s`` for the
        nests to be attached again and their open flights re-attached). Returns the ids picked up.
        Nothing is recorded twice: the incident's row stays as it is; a ``resumed`` milestone,
        new commands (ids of their own) and the later milestones are added to it."""
        if self._recovered:
            return []
        self._recovered = True
        try:
            rows = await self.fleet.audit.open_incidents()
            stored: list[StoredIncident] = []
            for row in rows:
                if row["command_id"] in self._incidents:
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
            await self._resume(s, decision)
        return [s.id for s in stored]

    async def _nests_known(self, wait_s: float) -> None:
        """Until every nest is attached again (out of OFFLINE), at most ``wait_s``."""

        async def known(c: NestController) -> None:
            with contextlib.suppress(DronectlError):
                await c.wait_for(lambda: c.state.phase is not ns.NestPhase.OFFLINE, wait_s, "nest known")

        await asyncio.gather(*(known(c) for c in self.fleet.controllers.values()))

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

    async def _resume(self, s: StoredIncident, decision: Recovery) -> None:
        if s.id in self._incidents:  # delivered again meanwhile, and taken as it came
            return
        now_wall, now_mono = self.clock.wall(), self.clock.monotonic()
        speed = float(getattr(self.clock, "speed", 1.0))  # ScaledClock: its seconds run faster
        incident = s.incident
        inc = _Incident(
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
        self._incidents[inc.id] = inc
        log.info("incident.recovered", id=inc.id, action=decision.action.value, reason=decision.reason)
        text = f"resumed after a controller restart: {decision.reason}"
        if decision.action is Resume.CLOSE:
            final = Milestone.CLOSED if s.reached(Milestone.ON_SCENE) else Milestone.FAILED
            await self._milestone(inc, Milestone.RESUMED, nest_id=decision.nest_id, message=text)
            await self._finish(inc, final, f"closed after a controller restart: {decision.reason}")
            return
        if decision.action is Resume.FOLLOW:
            assert decision.nest_id is not None and decision.flight_id is not None
            self._reserve(inc, decision.nest_id)
            self._our_flights.add(decision.flight_id)
            await self._milestone(inc, Milestone.RESUMED, nest_id=decision.nest_id, message=text)
            self.owner.spawn(self._serve(inc, follow=True), f"incident[{inc.id}]")
            return
        await self._milestone(inc, Milestone.RESUMED, message=text)
        self._plan_and_reserve(inc)
        self.owner.spawn(self._serve(inc, recorded=True), f"incident[{inc.id}]")

    async def _close_unreadable(self, incident_id: str, why: str) -> None:
        """A stored incident this version cannot read: closed, so it is not retried forever."""
        with contextlib.suppress(AuditError):
            await self.fleet.audit.record_outcome(
                OutcomeRecord(
                    incident_id, self.clock.wall(), CommandOutcome.FAILED, Milestone.FAILED.value, why
                )
            )

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

    async def _serve(self, inc: _Incident, *, recorded: bool = False, follow: bool = False) -> None:
        """``recorded``: picked up after a restart (the incident's row exists); ``follow``: and its
        drone, reserved, already flies it."""
        try:
            if not (recorded or follow):
                if not await self._record_incident(inc):
                    inc.done = True
                    if self._incidents.get(inc.id) is inc:
                        del self._incidents[inc.id]
                    return
                await self._milestone(inc, Milestone.RECEIVED, message=self._received_text(inc))
            attempts = sum(1 for m in inc.marks if m.milestone is Milestone.FAILED)
            if follow:
                attempts += 1
                assert inc.nest_id is not None
                if await self._follow(inc, self.fleet.nest(inc.nest_id)) is None or inc.done:
                    return
                self._plan_and_reserve(inc)
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
        return await self._arrived(inc, c)

    async def _arrived(self, inc: _Incident, c: NestController) -> str | None:
        """The drone reached the scene: milestones, orbit, then watch the scene (as ``_fly``)."""
        nest_id = c.nest_id
        if not inc.reached(Milestone.AIRBORNE):
            await self._milestone(inc, Milestone.AIRBORNE, nest_id=nest_id)
        await self._milestone(inc, Milestone.ON_SCENE, nest_id=nest_id)
        if self.lookout is not None and self.lookout.video_live(nest_id):
            self.video_started(nest_id)  # its stream was live before (a retasked drone)
        await self._orbit(inc, nest_id)
        return await self._scene(inc, c)

    async def _follow(self, inc: _Incident, c: NestController) -> str | None:
        """After a restart, a drone that already flies the incident: on its way, wait until it
        reaches the scene (nothing is commanded again: PX4 carries on with the go-to it had);
        over the scene, go on watching it (the orbit it flies, or the hold of an ice response,
        is left as it is). As ``_fly``: None when the incident is over, else why it failed."""
        if not inc.reached(Milestone.ON_SCENE):
            scene, flight_id = inc.request.scene, inc.flight_id

            def arrived() -> bool:
                p = c.drone_position()
                return p is not None and distance_m(p.position, scene) < ARRIVAL_RADIUS_M

            def gone() -> bool:
                return (
                    not self._holds(inc)
                    or c.flight is None
                    or c.flight.flight_id != flight_id
                    or not c.state.flying
                    or c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING)
                    or self.owner.authority.holder(c.nest_id, self.clock.wall()) is not None
                )

            with contextlib.suppress(DronectlError):
                await c.wait_for(lambda: arrived() or gone(), SCENE_TIMEOUT_S, "reach the scene")
            if inc.done:
                return None
            if gone() or not arrived():
                return await self._attempt_failed(
                    inc, c, f"its drone did not reach the scene ({c.state.phase.value})"
                )
            return await self._arrived(inc, c)
        if self.lookout is not None and self.lookout.video_live(c.nest_id):
            self.video_started(c.nest_id)
        return await self._scene(inc, c)

    async def _scene(self, inc: _Incident, c: NestController) -> str | None:
        """Watch the scene until the drone leaves it, with the lookout when it applies."""
        ice_why = self._ice_watch_reason(inc, c)
        if ice_why is None or inc.reached(Milestone.FINDING):
            return await self._watch_scene(inc, c)
        async with asyncio.TaskGroup() as tasks:
            look = tasks.create_task(self._look_out(inc, c, ice_why), name=f"incident[{inc.id}].lookout")
            try:
                return await self._watch_scene(inc, c)
            finally:
                look.cancel()

    def _ice_watch_reason(self, inc: _Incident, c: NestController) -> str | None:
        if self.lookout is None or self.lookout.hub is None:
            return None
        return ice_watch_reason(inc.incident.kind, c.dock.weather, self.lookout.config)

    async def _look_out(self, inc: _Incident, c: NestController, why: str) -> None:
        """Watch the video for black ice while on scene; respond to the first finding. Never
        raises (it runs beside the scene watch): a failure is logged."""
        lookout = self.lookout
        assert lookout is not None
        log.info("incident.lookout", id=inc.id, nest=c.nest_id, why=why)
        try:
            async with contextlib.aclosing(lookout.ice_findings(c.nest_id)) as findings:
                async for finding in findings:
                    if inc.done or not self._holds(inc):
                        return
                    response = await lookout.respond_to_ice(
                        c.nest_id, finding, actor_id=ACTOR_ID, incident_id=inc.id
                    )
                    await self._milestone(
                        inc,
                        Milestone.FINDING,
                        nest_id=c.nest_id,
                        message=response.describe(),
                        extra={
                            "finding": "black_ice",
                            "finding_lat": round(finding.position.lat_deg, 7),
                            "finding_lon": round(finding.position.lon_deg, 7),
                            "coverage_pct": round(finding.coverage_pct, 2),
                            "snapshot_id": response.snapshot_id,
                            "snapshot_url": response.snapshot_url,
                            "detection_id": response.detection_id,
                            "not_done": [s.data() for s in response.refused],
                            "watched_because": why,
                        },
                    )
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the scene is served without the lookout; logged
            log.warning("incident.lookout_failed", id=inc.id, nest=c.nest_id, error=str(exc) or repr(exc))

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
        run = f"r{inc.resumed}." if inc.resumed else ""  # after a restart the counter starts over
        return Command(
            id=f"{inc.id}.{run}{next(self._seq)}.{method.value}.n{nest_id}",
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=ACTOR_ID,
            actor_role=Role(AUTOMATION),
            issued_at_unix_s=now,
            deadline_unix_s=now + COMMAND_TTL_S,
            received_at_unix_s=now,
        )

    async def _record_incident(self, inc: _Incident) -> bool:
        """Record the incident; False when its id is recorded already (a report delivered again
        after a restart: the stored one is picked up by ``recover``, or was closed)."""
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
        except DuplicateCommandError as exc:
            log.warning("incident.already_recorded", id=i.id, error=str(exc))
            return False
        except AuditError as exc:  # the store is down: the incident is served all the same
            log.error("incident.audit_failed", id=i.id, error=str(exc))
        return True

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


def ice_watch_reason(kind: str, weather: DockWeather | None, config: BlackIceConfig) -> str | None:
    """Why the lookout should watch an incident's scene for black ice, or None: a reported patch
    of ice, or an accident while the road is at risk of ice (the nest's weather station)."""
    if kind in ICE_KINDS:
        return f"{kind} reported"
    if kind not in ACCIDENT_KINDS or weather is None:
        return None
    risk = ice_risk(road_weather(weather), config)
    return f"{kind} in freezing weather: {risk.describe()}" if risk.at_risk else None


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
