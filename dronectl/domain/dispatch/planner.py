"""Which nest serves an incident: the soonest drone over the scene among those with a go.

:func:`plan` is pure. For each nest it either computes an :class:`Option` (launch from the dock,
or retask the drone already in the air) with its time to scene, or passes the nest over with
*every* reason, taken from the controller's own safety checks (``SafetyPolicy.check_launch`` for
a docked drone, ``check_goto`` for one in the air: weather, battery for the trip and home plus the
reserve, fault, maintenance, airspace, separation) and from the service (manual control held by
a person, already assigned to another incident). The soonest option wins; ties go to the lower
nest number. :func:`decide` applies the automation policy to the plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from dronectl.domain.dispatch.estimate import (
    SceneEstimate,
    launch_estimate,
    lower_bound_s,
    minutes,
    readiness_s,
    retask_estimate,
    retask_readiness_s,
)
from dronectl.domain.dispatch_settings import DispatchSettings
from dronectl.domain.energy import Wind
from dronectl.domain.geo import GeoPoint
from dronectl.domain.nest_state import CoverState, NestPhase
from dronectl.domain.safety import (
    Blocker,
    DronePosition,
    GotoRequest,
    LaunchRequest,
    NestSnapshot,
    OtherFlight,
    SafetyPolicy,
)

RETASKABLE = frozenset({NestPhase.EN_ROUTE, NestPhase.ON_STATION, NestPhase.RETURNING})


@dataclass(frozen=True)
class SceneRequest:
    incident_id: str
    scene: GeoPoint
    priority: int  # 1 is the most urgent


@dataclass(frozen=True)
class Work:
    """What an airborne drone is doing, for the dispatcher to weigh against a new incident."""

    priority: int  # as incidents: 1 most urgent; DispatchSettings.idle_priority for no work
    what: str


@dataclass(frozen=True)
class Reason:
    code: str  # a safety BlockerCode value, or one of the service's: manual_control, assigned, ...
    message: str

    @classmethod
    def of(cls, blocker: Blocker) -> Reason:
        return cls(blocker.code.value, blocker.message)


@dataclass(frozen=True)
class Candidate:
    """One nest as the dispatcher sees it now."""

    snapshot: NestSnapshot
    others: tuple[OtherFlight, ...] = ()  # the other flights, for separation
    drone: DronePosition | None = None  # where the drone is, when it flies
    work: Work | None = None  # what it flies for; None: work the dispatcher may not take over
    unavailable: tuple[Reason, ...] = ()  # the service's own reasons to leave it alone


class Mode(Enum):
    LAUNCH = "launch"  # from the dock
    RETASK = "retask"  # the drone in the air, sent on


@dataclass(frozen=True)
class Option:
    nest_id: int
    name: str
    mode: Mode
    estimate: SceneEstimate

    @property
    def time_to_scene_s(self) -> float:
        return self.estimate.total_s

    def describe(self) -> str:
        how = "launch" if self.mode is Mode.LAUNCH else "retask its airborne drone"
        return f"nest {self.nest_id} ({self.name}): {how}, on scene in {minutes(self.time_to_scene_s)}"


@dataclass(frozen=True)
class PassedOver:
    nest_id: int
    name: str
    reasons: tuple[Reason, ...]

    def describe(self) -> str:
        return f"nest {self.nest_id} ({self.name}): " + "; ".join(r.message for r in self.reasons)


@dataclass(frozen=True)
class Unexamined:
    """A nest left out because even its best case is slower than an option already found."""

    nest_id: int
    name: str
    at_least_s: float


@dataclass(frozen=True)
class DispatchPlan:
    request: SceneRequest
    options: tuple[Option, ...]  # soonest first
    passed_over: tuple[PassedOver, ...]  # by nest number
    unexamined: tuple[Unexamined, ...] = ()  # by nest number (only with prune=True)

    @property
    def chosen(self) -> Option | None:
        return self.options[0] if self.options else None

    def option(self, nest_id: int) -> Option | None:
        return next((o for o in self.options if o.nest_id == nest_id), None)

    def why_none(self) -> str:
        """Every reason, per nest, when no nest can go."""
        return "no nest can go: " + " | ".join(p.describe() for p in self.passed_over)


def _wind(snapshot: NestSnapshot, policy: SafetyPolicy) -> Wind:
    w = snapshot.weather
    return w.wind if w is not None else Wind(policy.limits.max_wind_mps, None)


def _consider(
    c: Candidate, request: SceneRequest, policy: SafetyPolicy, settings: DispatchSettings
) -> Option | PassedOver:
    snap = c.snapshot
    reasons = list(c.unavailable)
    wind = _wind(snap, policy)
    alt = settings.cruise_alt_m
    estimate: SceneEstimate | None = None
    mode = Mode.LAUNCH
    if snap.state.flying:
        mode = Mode.RETASK
        phase = snap.state.phase
        if c.work is None:
            reasons.append(
                Reason("not_ours", f"flying a mission the dispatcher may not take over ({phase.value})")
            )
        elif request.priority >= c.work.priority:
            reasons.append(
                Reason("busy", f"busy with {c.work.what} (priority {c.work.priority}), as urgent or more")
            )
        elif phase not in RETASKABLE or c.drone is None:
            reasons.append(Reason("not_retaskable", f"drone {phase.value}, cannot be sent on"))
        else:
            goto = GotoRequest(request.scene, alt, on_station_s=settings.on_scene_s)
            reasons += [Reason.of(b) for b in policy.check_goto(snap, c.drone, goto, c.others)]
            estimate = retask_estimate(
                c.drone.position, c.drone.alt_above_home_m, request.scene, wind, settings, policy.model
            )
    else:
        launch = LaunchRequest(request.scene, alt, on_station_s=settings.on_scene_s)
        reasons += [Reason.of(b) for b in policy.check_launch(snap, launch, c.others)]
        estimate = launch_estimate(snap.home, snap.state, request.scene, wind, settings, policy.model)
    if estimate is not None and not math.isfinite(estimate.total_s) and not reasons:
        reasons.append(Reason("wind_too_strong_for_route", "the wind forbids the leg to the scene"))
    if reasons or estimate is None:
        return PassedOver(snap.nest_id, snap.name, tuple(reasons))
    return Option(snap.nest_id, snap.name, mode, estimate)


def _lower_bound(
    c: Candidate, request: SceneRequest, policy: SafetyPolicy, settings: DispatchSettings
) -> float:
    snap, model = c.snapshot, policy.model
    if snap.state.flying:
        if c.drone is None:
            return 0.0  # examined at once (cheaply passed over)
        ready = retask_readiness_s(settings, model, c.drone.alt_above_home_m)
        start = c.drone.position
    else:
        ready = readiness_s(settings, model, settings.cruise_alt_m, snap.state.obs.cover is CoverState.OPEN)
        start = snap.home
    return lower_bound_s(start, request.scene, ready, _wind(snap, policy), settings, model)


def plan(
    request: SceneRequest,
    candidates: Sequence[Candidate],
    policy: SafetyPolicy,
    settings: DispatchSettings,
    prune: bool = False,
) -> DispatchPlan:
    """Every nest considered. ``prune``: nests are examined in the order of their best case, and
    those whose best case is already slower than an option found are left unexamined (the choice
    is the same; the safety checks of far nests are skipped, which makes a plan over 16 nests
    several times faster)."""
    options: list[Option] = []
    passed: list[PassedOver] = []
    unexamined: list[Unexamined] = []
    ordered: Sequence[tuple[float, Candidate]] = [(0.0, c) for c in candidates]
    if prune:
        ordered = sorted(
            ((_lower_bound(c, request, policy, settings), c) for c in candidates),
            key=lambda bc: (bc[0], bc[1].snapshot.nest_id),
        )
    for bound, c in ordered:
        best = min((o.time_to_scene_s for o in options), default=math.inf)
        if prune and bound > best:
            unexamined.append(Unexamined(c.snapshot.nest_id, c.snapshot.name, bound))
            continue
        verdict = _consider(c, request, policy, settings)
        if isinstance(verdict, Option):
            options.append(verdict)
        else:
            passed.append(verdict)
    options.sort(key=lambda o: (o.time_to_scene_s, o.nest_id))
    passed.sort(key=lambda p: p.nest_id)
    unexamined.sort(key=lambda u: u.nest_id)
    return DispatchPlan(request, tuple(options), tuple(passed), tuple(unexamined))


class Action(Enum):
    LAUNCH = "launch"  # go now
    PROPOSE = "propose"  # a commander confirms first
    QUEUE = "queue"  # nobody can go: wait and plan again


def decide(dispatch_plan: DispatchPlan, settings: DispatchSettings, confirmed: bool = False) -> Action:
    if dispatch_plan.chosen is None:
        return Action.QUEUE
    if confirmed or settings.launches_automatically(dispatch_plan.request.priority):
        return Action.LAUNCH
    return Action.PROPOSE
