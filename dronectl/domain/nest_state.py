"""The nest state machine: what a nest is doing, from what it reports and what we ask of it.

Pure: :func:`transition` takes a state and one event and returns the next state with its cause
(for the log and the audit store). An event that does not fit the current phase changes nothing
and says why (``Transition.accepted`` is False).

Two kinds of event feed it:

- *Observations* (:class:`LinkUp`, :class:`LinkLost`, :class:`DockLinkLost`, :class:`DockStatus`,
  :class:`DroneStatus`) are facts; they are always taken in and the phase is reconciled with
  them. The physical truth wins: a drone seen in the air is in an airborne phase whatever we
  thought, a drone that the autopilot switched to RTL (PX4's own failsafe) is returning, a
  disarmed drone on the ground is no longer flying. A drone that came down while its dock was
  unheard waits for the dock's word before it counts as landed on its pad or away.
- *Operations* (:class:`LaunchRequested` ... :class:`MaintenanceSet`) are the controller's steps.
  Each is valid from the phases listed in ``_OPERATIONS``; anything else is rejected.

Faults and maintenance are flags on the state, shown as the phase while the drone is on the
ground: a fault raised in flight does not hide the airborne drone; the nest enters ``fault``
once the drone is down. After a controller restart the state starts ``offline`` and the first
observations *derive* the phase (:func:`derive_phase`): a drone already in the air becomes
en route / on station / returning / landing, never ``ready``, so nothing launches it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum


class NestPhase(Enum):
    OFFLINE = "offline"  # no link, or not enough known yet
    CHARGING = "charging"  # drone in the closed dock, charger on
    STANDBY = "standby"  # drone in the closed dock, not ready to arm (checks pending)
    READY = "ready"  # drone in the closed dock, ready to arm
    PREFLIGHT = "preflight"  # launch accepted, checklist running
    LAUNCHING = "launching"  # cover opening, arming, taking off
    EN_ROUTE = "en_route"  # airborne, flying to its target
    ON_STATION = "on_station"  # airborne, holding / orbiting at the target
    RETURNING = "returning"  # airborne, flying home
    LANDING = "landing"  # descending into the dock (or armed on the ground)
    POST_FLIGHT = "post_flight"  # on the pad, cover closing
    FAULT = "fault"  # on the ground, a fault holds
    MAINTENANCE = "maintenance"  # taken out of service by an operator


DOCKED = frozenset({NestPhase.CHARGING, NestPhase.STANDBY, NestPhase.READY})
AIRBORNE = frozenset({NestPhase.EN_ROUTE, NestPhase.ON_STATION, NestPhase.RETURNING, NestPhase.LANDING})
LAUNCHABLE = frozenset({NestPhase.READY, NestPhase.CHARGING})  # a launch stops the charger


class CoverState(Enum):
    UNKNOWN = "unknown"
    CLOSED = "closed"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    STOPPED = "stopped"  # part-way (jammed or halted)


class FlightMode(Enum):
    """The autopilot's mode as far as the nest's phase cares."""

    UNKNOWN = "unknown"
    TAKEOFF = "takeoff"
    HOLD = "hold"
    MISSION = "mission"
    POSITION = "position"  # goto / manual / offboard: going somewhere
    ORBIT = "orbit"
    RETURN = "return"
    LAND = "land"


@dataclass(frozen=True)
class Observations:
    """The latest facts; None = not reported yet."""

    link_up: bool = False
    armed: bool | None = None
    in_air: bool | None = None
    ready_to_arm: bool | None = None
    mode: FlightMode = FlightMode.UNKNOWN
    cover: CoverState = CoverState.UNKNOWN
    drone_in_dock: bool | None = None
    charging: bool | None = None


@dataclass(frozen=True)
class NestState:
    phase: NestPhase = NestPhase.OFFLINE
    obs: Observations = Observations()
    fault: str | None = None  # raised and not yet cleared
    maintenance: bool = False

    @property
    def flying(self) -> bool:
        """The drone is (or may be) off the pad under our control: launch through landing."""
        return self.phase in AIRBORNE or self.phase in (NestPhase.LAUNCHING, NestPhase.PREFLIGHT)


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkUp:
    pass


@dataclass(frozen=True)
class LinkLost:
    pass


@dataclass(frozen=True)
class DockLinkLost:
    """The dock is not heard: what it said of its cover and the drone on its pad is stale."""


@dataclass(frozen=True)
class DockStatus:
    cover: CoverState
    drone_in_dock: bool
    charging: bool


@dataclass(frozen=True)
class DroneStatus:
    armed: bool
    in_air: bool
    ready_to_arm: bool
    mode: FlightMode = FlightMode.UNKNOWN


@dataclass(frozen=True)
class LaunchRequested:
    reason: str = ""


@dataclass(frozen=True)
class PreflightPassed:
    pass


@dataclass(frozen=True)
class PreflightFailed:
    reason: str


@dataclass(frozen=True)
class CoverOpened:
    pass


@dataclass(frozen=True)
class TookOff:
    pass


@dataclass(frozen=True)
class ReachedStation:
    pass


@dataclass(frozen=True)
class GotoRequested:
    reason: str = ""


@dataclass(frozen=True)
class ReturnRequested:
    reason: str


@dataclass(frozen=True)
class LandingStarted:
    pass


@dataclass(frozen=True)
class Landed:
    in_dock: bool = True


@dataclass(frozen=True)
class LaunchAborted:
    reason: str


@dataclass(frozen=True)
class CoverClosed:
    pass


@dataclass(frozen=True)
class FaultRaised:
    reason: str


@dataclass(frozen=True)
class FaultCleared:
    pass


@dataclass(frozen=True)
class MaintenanceSet:
    on: bool
    reason: str = ""


Observation = LinkUp | LinkLost | DockLinkLost | DockStatus | DroneStatus
Operation = (
    LaunchRequested
    | PreflightPassed
    | PreflightFailed
    | CoverOpened
    | TookOff
    | ReachedStation
    | GotoRequested
    | ReturnRequested
    | LandingStarted
    | Landed
    | LaunchAborted
    | CoverClosed
    | FaultRaised
    | FaultCleared
    | MaintenanceSet
)
Event = Observation | Operation


@dataclass(frozen=True)
class Transition:
    before: NestState
    state: NestState
    cause: str
    accepted: bool = True

    @property
    def phase_changed(self) -> bool:
        return self.before.phase is not self.state.phase


# --- deriving the phase from facts ------------------------------------------------------------


def derive_phase(
    obs: Observations, fault: str | None = None, maintenance: bool = False
) -> tuple[NestPhase, str]:
    """The phase the facts imply, with the reason; used after a restart and whenever an
    operation hands the nest back to the facts (cover closed, fault cleared, ...)."""
    if obs.in_air:
        return _airborne_phase(obs.mode), f"drone in the air (mode {obs.mode.value})"
    if not obs.link_up:
        return NestPhase.OFFLINE, "no link to the nest"
    if obs.armed:
        return NestPhase.LANDING, "drone armed on the ground: waiting for the autopilot to disarm"
    if obs.in_air is None or obs.armed is None:
        return NestPhase.OFFLINE, "waiting for the drone's status"
    if maintenance:
        return NestPhase.MAINTENANCE, "nest in maintenance"
    if fault is not None:
        return NestPhase.FAULT, f"fault: {fault}"
    if obs.drone_in_dock is None or obs.cover is CoverState.UNKNOWN or obs.charging is None:
        return NestPhase.OFFLINE, "waiting for the dock's status"
    if not obs.drone_in_dock:
        return NestPhase.FAULT, "drone on the ground outside the dock"
    if obs.cover is not CoverState.CLOSED:
        return NestPhase.POST_FLIGHT, f"drone in the dock, cover {obs.cover.value}: cover must close"
    if obs.charging:
        return NestPhase.CHARGING, "drone in the dock, charging"
    if obs.ready_to_arm:
        return NestPhase.READY, "drone in the dock, ready to arm"
    return NestPhase.STANDBY, "drone in the dock, not ready to arm yet"


def _airborne_phase(mode: FlightMode) -> NestPhase:
    if mode is FlightMode.RETURN:
        return NestPhase.RETURNING
    if mode is FlightMode.LAND:
        return NestPhase.LANDING
    if mode in (FlightMode.HOLD, FlightMode.ORBIT):
        return NestPhase.ON_STATION
    return NestPhase.EN_ROUTE


def _derived(state: NestState, cause_prefix: str) -> tuple[NestState, str]:
    phase, why = derive_phase(state.obs, state.fault, state.maintenance)
    return replace(state, phase=phase), f"{cause_prefix}; {why}" if cause_prefix else why


def recover(obs: Observations, fault: str | None = None, maintenance: bool = False) -> Transition:
    """The state after a controller restart, from fresh observations and the persisted flags."""
    before = NestState(obs=obs, fault=fault, maintenance=maintenance)
    state, cause = _derived(before, "restart")
    return Transition(before, state, cause)


# --- observations -----------------------------------------------------------------------------


def _observe(state: NestState, event: Observation) -> Transition:
    obs = state.obs
    if isinstance(event, LinkUp):
        new_obs = replace(obs, link_up=True)
        what = "link up"
    elif isinstance(event, LinkLost):
        new_obs = replace(obs, link_up=False)
        what = "link lost"
    elif isinstance(event, DockLinkLost):
        new_obs = replace(obs, cover=CoverState.UNKNOWN, drone_in_dock=None, charging=None)
        what = "dock link lost"
    elif isinstance(event, DockStatus):
        new_obs = replace(obs, cover=event.cover, drone_in_dock=event.drone_in_dock, charging=event.charging)
        what = f"dock: cover {event.cover.value}, drone {'in' if event.drone_in_dock else 'not in'} dock" + (
            ", charging" if event.charging else ""
        )
    else:
        new_obs = replace(
            obs,
            armed=event.armed,
            in_air=event.in_air,
            ready_to_arm=event.ready_to_arm,
            mode=event.mode,
            link_up=True,
        )
        what = (
            f"drone: {'armed' if event.armed else 'disarmed'}, "
            f"{'in the air' if event.in_air else 'on the ground'}, mode {event.mode.value}"
        )
    updated = replace(state, obs=new_obs)
    state2, cause = _reconcile(updated, what)
    return Transition(state, state2, cause)


def _reconcile(state: NestState, what: str) -> tuple[NestState, str]:
    """Bring the phase in line with the (new) facts."""
    phase, obs = state.phase, state.obs
    if obs.in_air:
        target = _airborne_phase(obs.mode)
        if phase not in AIRBORNE:
            return replace(state, phase=target), f"{what}: drone in the air while {phase.value}"
        if (
            target in (NestPhase.RETURNING, NestPhase.LANDING)
            and phase is not target
            and not (phase is NestPhase.LANDING and target is NestPhase.RETURNING)
        ):
            return replace(state, phase=target), f"{what}: autopilot is {target.value}"
        return state, what
    if not obs.link_up:
        if phase in AIRBORNE or phase is NestPhase.MAINTENANCE or obs.armed:
            return state, f"{what}: autopilot failsafe in charge" if phase in AIRBORNE else what
        if phase is NestPhase.OFFLINE:
            return state, what
        return replace(state, phase=NestPhase.OFFLINE), f"{what} while {phase.value}"
    landed = obs.in_air is False and obs.armed is False
    if phase in AIRBORNE and landed:
        if obs.drone_in_dock is None:  # the dock unheard (a blackout): on its pad or away, it will say
            return state, f"{what}: drone down, waiting for the dock to tell whether it is on its pad"
        return _after_landing(state, what, in_dock=obs.drone_in_dock)
    if phase in (NestPhase.PREFLIGHT, NestPhase.LAUNCHING):
        return state, what  # the launch procedure owns these; the facts are only recorded
    if phase in AIRBORNE:
        return state, what  # armed on the ground: taking off or about to disarm
    if phase is NestPhase.POST_FLIGHT and obs.cover is not CoverState.CLOSED:
        return state, what
    if phase is NestPhase.MAINTENANCE:
        return state, what
    if phase is NestPhase.FAULT and state.fault is not None:
        return state, what
    new_phase, why = derive_phase(obs, state.fault, state.maintenance)
    if new_phase is phase:
        return state, what
    return replace(state, phase=new_phase), f"{what}: {why}"


def _after_landing(state: NestState, what: str, in_dock: bool) -> tuple[NestState, str]:
    if not in_dock:
        return replace(state, phase=NestPhase.FAULT), f"{what}: drone landed outside the dock"
    return replace(state, phase=NestPhase.POST_FLIGHT), f"{what}: drone down in the dock, cover to close"


# --- operations: the table ------------------------------------------------------------------


Handler = Callable[[NestState, Operation], tuple[NestState, str]]


def _to(phase: NestPhase, cause: str, **obs_changes: object) -> Handler:
    def handler(state: NestState, event: Operation) -> tuple[NestState, str]:
        reason = getattr(event, "reason", "")
        obs = replace(state.obs, **obs_changes) if obs_changes else state.obs  # type: ignore[arg-type]
        return replace(state, phase=phase, obs=obs), f"{cause}: {reason}" if reason else cause

    return handler


def _landed(state: NestState, event: Operation) -> tuple[NestState, str]:
    assert isinstance(event, Landed)
    s = replace(state, obs=replace(state.obs, in_air=False))
    return _after_landing(s, "landed", event.in_dock)


def _abort(state: NestState, event: Operation) -> tuple[NestState, str]:
    assert isinstance(event, LaunchAborted)
    if state.phase is NestPhase.LAUNCHING:
        return replace(state, phase=NestPhase.POST_FLIGHT), f"launch aborted: {event.reason}; cover to close"
    return _derived(state, f"launch aborted: {event.reason}")


def _preflight_failed(state: NestState, event: Operation) -> tuple[NestState, str]:
    assert isinstance(event, PreflightFailed)
    return _derived(state, f"preflight failed: {event.reason}")


def _cover_closed(state: NestState, event: Operation) -> tuple[NestState, str]:
    return _derived(replace(state, obs=replace(state.obs, cover=CoverState.CLOSED)), "cover closed")


def _fault_raised(state: NestState, event: Operation) -> tuple[NestState, str]:
    assert isinstance(event, FaultRaised)
    s = replace(state, fault=event.reason)
    if state.phase in AIRBORNE:
        return s, f"fault in flight: {event.reason} (nest enters fault after landing)"
    if state.phase is NestPhase.MAINTENANCE:
        return s, f"fault during maintenance: {event.reason}"
    return replace(s, phase=NestPhase.FAULT), f"fault: {event.reason}"


def _fault_cleared(state: NestState, event: Operation) -> tuple[NestState, str]:
    s = replace(state, fault=None)
    if state.phase is NestPhase.FAULT:
        return _derived(s, f"fault cleared ({state.fault})")
    return s, f"fault cleared ({state.fault})"


def _maintenance(state: NestState, event: Operation) -> tuple[NestState, str]:
    assert isinstance(event, MaintenanceSet)
    why = f": {event.reason}" if event.reason else ""
    if event.on:
        return replace(state, maintenance=True, phase=NestPhase.MAINTENANCE), f"maintenance on{why}"
    return _derived(replace(state, maintenance=False), f"maintenance off{why}")


def _cover_opened(state: NestState, event: Operation) -> tuple[NestState, str]:
    return replace(state, obs=replace(state.obs, cover=CoverState.OPEN)), "cover open"


_GROUND_IDLE = DOCKED | {NestPhase.OFFLINE, NestPhase.FAULT, NestPhase.POST_FLIGHT}
_ANY = frozenset(NestPhase)
_FLIGHT = AIRBORNE - {NestPhase.LANDING}

# event type -> (phases it is valid in, handler, what it means when rejected)
_OPERATIONS: dict[type, tuple[frozenset[NestPhase], Handler]] = {
    LaunchRequested: (LAUNCHABLE, _to(NestPhase.PREFLIGHT, "launch requested")),
    PreflightPassed: (
        frozenset({NestPhase.PREFLIGHT}),
        _to(NestPhase.LAUNCHING, "preflight passed, cover opening"),
    ),
    PreflightFailed: (frozenset({NestPhase.PREFLIGHT}), _preflight_failed),
    CoverOpened: (frozenset({NestPhase.LAUNCHING}), _cover_opened),
    TookOff: (frozenset({NestPhase.LAUNCHING}), _to(NestPhase.EN_ROUTE, "took off", in_air=True, armed=True)),
    ReachedStation: (frozenset({NestPhase.EN_ROUTE}), _to(NestPhase.ON_STATION, "on station")),
    GotoRequested: (_FLIGHT, _to(NestPhase.EN_ROUTE, "going to a new target")),
    ReturnRequested: (
        frozenset({NestPhase.EN_ROUTE, NestPhase.ON_STATION}),
        _to(NestPhase.RETURNING, "returning"),
    ),
    LandingStarted: (_FLIGHT, _to(NestPhase.LANDING, "landing")),
    Landed: (AIRBORNE, _landed),
    LaunchAborted: (frozenset({NestPhase.PREFLIGHT, NestPhase.LAUNCHING}), _abort),
    CoverClosed: (frozenset({NestPhase.POST_FLIGHT}), _cover_closed),
    FaultRaised: (_ANY - {NestPhase.OFFLINE}, _fault_raised),
    FaultCleared: (_ANY, _fault_cleared),
    MaintenanceSet: (_GROUND_IDLE | {NestPhase.MAINTENANCE}, _maintenance),
}


def _precondition(state: NestState, event: Operation) -> str | None:
    """Extra conditions beyond the phase table; the reason when one fails."""
    if isinstance(event, LaunchRequested) and (state.maintenance or state.fault is not None):
        return "nest in maintenance" if state.maintenance else f"nest in fault: {state.fault}"
    if isinstance(event, FaultCleared) and state.fault is None:
        return "no fault to clear"
    if isinstance(event, MaintenanceSet) and event.on and state.obs.in_air:
        return "drone in the air"
    if isinstance(event, MaintenanceSet) and not event.on and not state.maintenance:
        return "nest not in maintenance"
    return None


def transition(state: NestState, event: Event) -> Transition:
    """The next state after ``event``, with its cause; rejected events leave ``state`` as it is."""
    if isinstance(event, LinkUp | LinkLost | DockLinkLost | DockStatus | DroneStatus):
        return _observe(state, event)
    phases, handler = _OPERATIONS[type(event)]
    name = type(event).__name__
    if state.phase not in phases:
        return Transition(state, state, f"{name} not valid while {state.phase.value}", accepted=False)
    problem = _precondition(state, event)
    if problem is not None:
        return Transition(state, state, f"{name} not valid: {problem}", accepted=False)
    new_state, cause = handler(state, event)
    return Transition(state, new_state, cause)
