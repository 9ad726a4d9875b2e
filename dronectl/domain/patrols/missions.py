"""A patrol mission's state machine: pure, every transition with its cause, time injected.

A mission patrols one configured road stretch (black ice or congestion). Its life::

    planned -> launching -> patrolling <-> holding
                  |            |   ^
                  |            v   |  (relief on the route)
                  |        handing_over
                  v            v
                ended <-- returning

- ``planned``: wanted (a trigger, a schedule window or a person), no drone yet;
- ``launching``: a nest was chosen and its launch ordered (``Assign``);
- ``patrolling``: the drone flies the stretch's waypoints back and forth (``leg`` is the number of
  waypoints reached; :func:`waypoint_index` maps it onto the route);
- ``holding``: the drone hovers over one spot (a congestion sample, a black-ice finding);
- ``handing_over``: a relief nest was launched because the first drone's battery runs low;
- ``returning``: the mission is over for its drone, which flies home;
- ``ended``: final, with the reason (window over, taken over by a pilot, no nest can go...).

:func:`transition` takes a mission and one event and returns the next mission and the cause; an
event that does not fit the current state changes nothing and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any


class MissionKind(StrEnum):
    BLACK_ICE = "black_ice"
    CONGESTION = "congestion"


class MissionState(StrEnum):
    PLANNED = "planned"
    LAUNCHING = "launching"
    PATROLLING = "patrolling"
    HOLDING = "holding"
    HANDING_OVER = "handing_over"
    RETURNING = "returning"
    ENDED = "ended"


AIRBORNE_STATES = frozenset(
    {MissionState.PATROLLING, MissionState.HOLDING, MissionState.HANDING_OVER, MissionState.RETURNING}
)
FLYING_THE_ROUTE = frozenset({MissionState.PATROLLING, MissionState.HOLDING, MissionState.HANDING_OVER})


@dataclass(frozen=True)
class Mission:
    id: str
    kind: MissionKind
    stretch_id: str
    state: MissionState
    created_unix_s: float
    trigger: str  # why it exists: "schedule 07:00-09:00", "ice risk: road -1.0 °C, snow", "manual by x"
    manual: bool = False  # started by a person: only a person (or a failure) stops it
    nest_id: int | None = None
    flight_id: str | None = None
    leg: int = 0  # waypoints reached so far (the next target is waypoint_index(leg + 1, n))
    relief_nest_id: int | None = None
    attempts: int = 0  # nests assigned so far
    reason: str = ""  # the cause of the last transition
    started_unix_s: float | None = None  # first on the route
    ended_unix_s: float | None = None

    @property
    def active(self) -> bool:
        return self.state is not MissionState.ENDED

    def describe(self) -> str:
        nest = f", nest {self.nest_id}" if self.nest_id is not None else ""
        return f"{self.kind.value} patrol {self.stretch_id} ({self.id}): {self.state.value}{nest}"


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assign:
    """A nest was chosen; its launch is ordered (to waypoint ``leg`` when given)."""

    nest_id: int
    leg: int | None = None


@dataclass(frozen=True)
class OnRoute:
    """The drone reached the route (its launch is on station)."""

    flight_id: str | None


@dataclass(frozen=True)
class LegDone:
    """The drone reached its next waypoint (or it was ``skipped``: the go-to was refused, why)."""

    skipped: str | None = None


@dataclass(frozen=True)
class Hold:
    why: str


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class ReliefLaunched:
    nest_id: int


@dataclass(frozen=True)
class ReliefOnRoute:
    """The relief is on the route: it carries on from waypoint ``leg``, the first drone goes home."""

    flight_id: str | None
    leg: int


@dataclass(frozen=True)
class ReliefFailed:
    why: str


@dataclass(frozen=True)
class LostDrone:
    """The drone was taken for something else (an urgent incident) or its flight failed: plan again."""

    why: str


@dataclass(frozen=True)
class Stop:
    """The mission is over for its drone (window over, risk over, stopped by a person)."""

    why: str


@dataclass(frozen=True)
class End:
    """Final: landed after a stop, taken over by a pilot, no nest can go, restart without a drone."""

    why: str
    failed: bool = False  # the mission could not do its work (no nest, refused), as opposed to done


Event = (
    Assign
    | OnRoute
    | LegDone
    | Hold
    | Resume
    | ReliefLaunched
    | ReliefOnRoute
    | ReliefFailed
    | LostDrone
    | Stop
    | End
)

_S = MissionState
_VALID: dict[type, frozenset[MissionState]] = {
    Assign: frozenset({_S.PLANNED}),
    OnRoute: frozenset({_S.LAUNCHING}),
    LegDone: frozenset({_S.PATROLLING, _S.HANDING_OVER}),
    Hold: frozenset({_S.PATROLLING, _S.HANDING_OVER}),
    Resume: frozenset({_S.HOLDING}),
    ReliefLaunched: frozenset({_S.PATROLLING, _S.HOLDING}),
    ReliefOnRoute: frozenset({_S.HANDING_OVER}),
    ReliefFailed: frozenset({_S.HANDING_OVER}),
    LostDrone: frozenset({_S.LAUNCHING, _S.PATROLLING, _S.HOLDING, _S.HANDING_OVER}),
    Stop: frozenset({_S.PLANNED, _S.LAUNCHING, _S.PATROLLING, _S.HOLDING, _S.HANDING_OVER}),
    End: frozenset(set(_S) - {_S.ENDED}),
}


@dataclass(frozen=True)
class Transition:
    before: Mission
    mission: Mission
    cause: str
    accepted: bool = True

    @property
    def changed(self) -> bool:
        return self.before != self.mission


def transition(m: Mission, event: Event, now_unix_s: float) -> Transition:
    """The mission after ``event``; a rejected event leaves it as it is and says why."""
    name = type(event).__name__
    if m.state not in _VALID[type(event)]:
        return Transition(m, m, f"{name} not valid while {m.state.value}", accepted=False)
    new, cause = _apply(m, event, now_unix_s)
    return Transition(m, replace(new, reason=cause), cause)


def _apply(m: Mission, e: Event, now: float) -> tuple[Mission, str]:
    if isinstance(e, Assign):
        leg = m.leg if e.leg is None else e.leg
        return replace(m, state=_S.LAUNCHING, nest_id=e.nest_id, attempts=m.attempts + 1, leg=leg), (
            f"nest {e.nest_id} launched"
        )
    if isinstance(e, OnRoute):
        started = m.started_unix_s if m.started_unix_s is not None else now
        return replace(m, state=_S.PATROLLING, flight_id=e.flight_id, started_unix_s=started), (
            f"nest {m.nest_id} on the route"
        )
    if isinstance(e, LegDone):
        if e.skipped is not None:
            return replace(m, leg=m.leg + 1), f"waypoint {m.leg + 1} skipped: {e.skipped}"
        return replace(m, leg=m.leg + 1), f"waypoint {m.leg + 1} reached"
    if isinstance(e, Hold):
        return replace(m, state=_S.HOLDING), f"holding: {e.why}"
    if isinstance(e, Resume):
        return replace(m, state=_S.PATROLLING), "patrolling again"
    if isinstance(e, ReliefLaunched):
        return replace(m, state=_S.HANDING_OVER, relief_nest_id=e.nest_id), (
            f"nest {m.nest_id} battery low: relief nest {e.nest_id} launched"
        )
    if isinstance(e, ReliefOnRoute):
        assert m.relief_nest_id is not None
        return replace(
            m,
            state=_S.PATROLLING,
            nest_id=m.relief_nest_id,
            flight_id=e.flight_id,
            relief_nest_id=None,
            leg=e.leg,
        ), f"handed over from nest {m.nest_id} to nest {m.relief_nest_id}"
    if isinstance(e, ReliefFailed):
        return replace(m, state=_S.PATROLLING, relief_nest_id=None), f"relief failed: {e.why}"
    if isinstance(e, LostDrone):
        return replace(m, state=_S.PLANNED, nest_id=None, flight_id=None, relief_nest_id=None), (
            f"nest {m.nest_id} lost: {e.why}; planning again"
        )
    if isinstance(e, Stop):
        if m.state in (_S.PLANNED,) or m.nest_id is None:
            return replace(m, state=_S.ENDED, ended_unix_s=now), e.why
        return replace(m, state=_S.RETURNING), e.why
    assert isinstance(e, End)
    return replace(m, state=_S.ENDED, ended_unix_s=now), e.why


# --- the route, flown back and forth ----------------------------------------------------------


def waypoint_index(leg: int, n_waypoints: int) -> int:
    """Which waypoint is the ``leg``-th reached when flying 0, 1, ..., n-1, n-2, ..., 0, 1, ..."""
    if n_waypoints < 1:
        raise ValueError("a route has at least one waypoint")
    if n_waypoints == 1:
        return 0
    period = 2 * (n_waypoints - 1)
    i = leg % period
    return i if i < n_waypoints else period - i


def mission_data(m: Mission) -> dict[str, Any]:
    """A mission as JSON-ready data (stored rows, command results)."""
    data = asdict(m)
    data["kind"] = m.kind.value
    data["state"] = m.state.value
    return data
