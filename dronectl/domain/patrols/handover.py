"""Keeping a stretch watched: when to send a relief drone, and from which nest (pure).

A drone on patrol has ``remaining_endurance_s`` of flight before its battery is down to the
reserve; it needs ``return_s`` of that to get home and land. So it must leave the stretch at
``remaining_endurance_s - return_s``, and, with ``margin_s`` to spare, the relief must be over
the stretch by then. A relief takes ``relief_arrival_s`` to arrive (from the dispatch planner's
estimate: readiness in the dock plus the leg), so it is sent once::

    remaining_endurance_s - return_s - margin_s <= relief_arrival_s

The relief nest is chosen by the incident dispatch planner (``dronectl.domain.dispatch.plan``), with the
same safety checks (weather, battery for the time on station, airspace, separation, manual control).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dronectl.domain.dispatch.estimate import minutes
from dronectl.domain.dispatch.planner import Candidate, DispatchPlan, Option, Reason, SceneRequest, plan
from dronectl.domain.dispatch_settings import DispatchSettings
from dronectl.domain.energy import DEFAULT_MODEL, EnergyModel, Wind, return_home
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import SafetyPolicy


def relief_due(
    remaining_endurance_s: float, return_s: float, relief_arrival_s: float, margin_s: float
) -> bool:
    """True once a relief sent now would arrive no earlier than the drone must leave (less the
    margin): send it now (or the stretch goes unwatched)."""
    return remaining_endurance_s - return_s - margin_s <= relief_arrival_s


def endurance_left_s(battery_pct: float, reserve_pct: float, drain_pct_per_min: float) -> float:
    """Seconds of flight until the battery is down to the reserve."""
    if not drain_pct_per_min > 0.0:
        raise ValueError(f"drain_pct_per_min must be positive, not {drain_pct_per_min}")
    return max(0.0, battery_pct - reserve_pct) / drain_pct_per_min * 60.0


@dataclass(frozen=True)
class Endurance:
    """The figures behind a relief decision, for the log and the operator."""

    remaining_s: float  # of flight until the reserve
    return_s: float  # home and landed, from where the drone is
    margin_s: float
    relief_arrival_s: float

    @property
    def due(self) -> bool:
        return relief_due(self.remaining_s, self.return_s, self.relief_arrival_s, self.margin_s)

    @property
    def slack_s(self) -> float:
        """How long the relief may still wait (<= 0: send it now)."""
        return self.remaining_s - self.return_s - self.margin_s - self.relief_arrival_s

    def describe(self) -> str:
        return (
            f"{minutes(self.remaining_s)} of flight left, {minutes(self.return_s)} to get home, "
            f"relief needs {minutes(self.relief_arrival_s)} (+{minutes(self.margin_s)} margin): "
            + ("relief due now" if self.due else f"relief in {minutes(self.slack_s)}")
        )


def endurance(
    position: GeoPoint,
    home: GeoPoint,
    alt_above_home_m: float,
    battery_pct: float,
    reserve_pct: float,
    wind: Wind,
    relief_arrival_s: float,
    margin_s: float,
    model: EnergyModel = DEFAULT_MODEL,
    drain_pct_per_min: float | None = None,
) -> Endurance:
    """The patrolling drone's figures, with the energy model the safety checks use (the measured
    drain rate when it is known and worse than the model's)."""
    rate = max(model.drain_pct_per_min, drain_pct_per_min or 0.0)
    back = return_home(position, home, alt_above_home_m, wind, model, drain_pct_per_min)
    return Endurance(
        endurance_left_s(battery_pct, reserve_pct, rate), back.flight_time_s, margin_s, relief_arrival_s
    )


@dataclass(frozen=True)
class ReliefPlan:
    relieved_nest_id: int
    plan: DispatchPlan  # every nest considered, with the reasons of those passed over

    @property
    def chosen(self) -> Option | None:
        return self.plan.chosen

    @property
    def arrival_s(self) -> float:
        """The chosen relief's time to the stretch (math.inf when no nest can go)."""
        return self.chosen.time_to_scene_s if self.chosen is not None else math.inf

    def describe(self) -> str:
        if self.chosen is None:
            return f"no relief for nest {self.relieved_nest_id}: {self.plan.why_none()}"
        return f"relief for nest {self.relieved_nest_id}: {self.chosen.describe()}"


def plan_relief(
    mission_id: str,
    scene: GeoPoint,
    priority: int,
    relieved_nest_id: int,
    candidates: Sequence[Candidate],
    policy: SafetyPolicy,
    settings: DispatchSettings,
    *,
    on_station_s: float,
    launch_only: bool = True,
) -> ReliefPlan:
    """The nest whose drone can be over ``scene`` (where the patrol is) soonest and stay
    ``on_station_s`` there, among ``candidates`` (as the incident dispatcher builds them).
    The relieved nest never relieves itself; with ``launch_only`` only docked drones go (a relief
    starts with a full watch ahead of it, which a drone already flying has not)."""
    if on_station_s <= 0.0:
        raise ValueError(f"on_station_s must be positive, not {on_station_s}")
    marked: list[Candidate] = []
    for c in candidates:
        extra: list[Reason] = []
        if c.snapshot.nest_id == relieved_nest_id:
            extra.append(Reason("relieved", "its drone is the one being relieved"))
        elif launch_only and c.snapshot.state.flying:
            extra.append(Reason("flying", "already in the air: a relief launches fresh from its dock"))
        marked.append(replace(c, unavailable=(*c.unavailable, *extra)) if extra else c)
    request = SceneRequest(f"relief:{mission_id}", scene, priority)
    return ReliefPlan(
        relieved_nest_id, plan(request, marked, policy, replace(settings, on_scene_s=on_station_s))
    )
