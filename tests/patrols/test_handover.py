"""Relief of a patrolling drone: when it is due, and which nest sends it (the dispatch planner)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dronectl.domain.dispatch import Candidate, DispatchSettings, Mode, Reason
from dronectl.domain.energy import CALM as CALM_WIND
from dronectl.domain.energy import DEFAULT_MODEL, Wind, return_home
from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.nest_state import NestPhase
from dronectl.domain.patrols.handover import endurance, endurance_left_s, plan_relief, relief_due
from dronectl.domain.safety import DronePosition
from tests.dispatch.fleet_fixtures import POLICY, airborne, home, in_maintenance, ready

S = DispatchSettings()


def test_relief_due_when_the_relief_would_arrive_too_late() -> None:
    # 20 min left, 3 min home, 2 min margin: the drone must leave in 15 min
    assert not relief_due(1200.0, 180.0, relief_arrival_s=120.0, margin_s=120.0)
    assert relief_due(1200.0, 180.0, relief_arrival_s=900.0, margin_s=120.0)  # exactly in time: send now
    assert relief_due(1200.0, 180.0, relief_arrival_s=901.0, margin_s=120.0)
    assert not relief_due(1200.0, 180.0, relief_arrival_s=899.0, margin_s=120.0)
    assert relief_due(1200.0, 180.0, relief_arrival_s=math.inf, margin_s=0.0)  # no relief can come


@given(
    remaining=st.floats(0, 3600),
    back=st.floats(0, 900),
    arrival=st.floats(0, 900),
    margin=st.floats(0, 600),
    later=st.floats(0, 600),
)
def test_once_due_it_stays_due_as_the_battery_drains(
    remaining: float, back: float, arrival: float, margin: float, later: float
) -> None:
    if relief_due(remaining, back, arrival, margin):
        assert relief_due(max(0.0, remaining - later), back, arrival, margin)


def test_endurance_left() -> None:
    assert endurance_left_s(85.0, 25.0, 2.0) == pytest.approx(1800.0)
    assert endurance_left_s(20.0, 25.0, 2.0) == 0.0
    with pytest.raises(ValueError, match="drain_pct_per_min"):
        endurance_left_s(85.0, 25.0, 0.0)


def test_endurance_figures_use_the_energy_model() -> None:
    base = home(1)
    position = destination(base, 90.0, 1500.0)
    e = endurance(position, base, 40.0, 85.0, 25.0, CALM_WIND, relief_arrival_s=150.0, margin_s=120.0)
    assert e.remaining_s == pytest.approx(60.0 / DEFAULT_MODEL.drain_pct_per_min * 60.0)
    assert e.return_s == pytest.approx(return_home(position, base, 40.0, CALM_WIND).flight_time_s)
    assert e.slack_s == pytest.approx(e.remaining_s - e.return_s - 120.0 - 150.0)
    assert not e.due
    assert "relief in" in e.describe()
    # a measured drain worse than the model's shortens it
    worse = endurance(position, base, 40.0, 85.0, 25.0, CALM_WIND, 150.0, 120.0, drain_pct_per_min=6.0)
    assert worse.remaining_s == pytest.approx(600.0)
    low = endurance(position, base, 40.0, 33.0, 25.0, Wind(10.0, 90.0), 150.0, 120.0)
    assert low.due and low.describe().endswith("relief due now")


def _candidates(*snapshots: object) -> list[Candidate]:
    return [Candidate(s) for s in snapshots]  # type: ignore[arg-type]


def test_relief_comes_from_the_nearest_ready_nest_never_the_relieved_one() -> None:
    scene = GeoPoint(43.8856, 125.3250)  # People's Square, by nest 1 (and 6 is 900 m south)
    patrol = airborne(1, NestPhase.ON_STATION)
    cands = [
        Candidate(patrol, drone=DronePosition(scene, 40.0)),
        *_candidates(ready(6), ready(2), ready(10)),
    ]
    relief = plan_relief("m-1", scene, 4, 1, cands, POLICY, S, on_station_s=600.0)
    assert relief.chosen is not None
    assert relief.chosen.nest_id == 6
    assert relief.chosen.mode is Mode.LAUNCH
    assert relief.arrival_s == relief.chosen.time_to_scene_s
    assert [o.nest_id for o in relief.plan.options] == [6, 2, 10]
    (passed,) = relief.plan.passed_over
    assert passed.nest_id == 1
    assert any(r.code == "relieved" for r in passed.reasons)
    assert relief.plan.request.incident_id == "relief:m-1"
    assert "relief for nest 1: nest 6" in relief.describe()


def test_relief_skips_unavailable_and_airborne_nests_with_their_reasons() -> None:
    scene = GeoPoint(43.8856, 125.3250)
    cands = [
        Candidate(ready(6), unavailable=(Reason("manual_control", "under manual control of pilot li"),)),
        Candidate(airborne(2, NestPhase.RETURNING), drone=DronePosition(scene, 60.0)),
        Candidate(in_maintenance(10)),
        Candidate(ready(7)),
    ]
    relief = plan_relief("m-2", scene, 4, 1, cands, POLICY, S, on_station_s=600.0)
    assert relief.chosen is not None and relief.chosen.nest_id == 7
    reasons = {p.nest_id: {r.code for r in p.reasons} for p in relief.plan.passed_over}
    assert "manual_control" in reasons[6]
    assert "flying" in reasons[2]
    assert 10 in reasons


def test_the_time_on_station_is_checked_against_the_battery() -> None:
    scene = GeoPoint(43.8856, 125.3250)
    far = [Candidate(ready(2))]  # 2.3 km away: a 10 min watch, not a 20 min one
    assert plan_relief("m", scene, 4, 1, far, POLICY, S, on_station_s=600.0).chosen is not None
    assert plan_relief("m", scene, 4, 1, far, POLICY, S, on_station_s=1200.0).chosen is None
    half_full = [Candidate(ready(6, battery_pct=45.0))]
    assert plan_relief("m", scene, 4, 1, half_full, POLICY, S, on_station_s=60.0).chosen is not None
    relief = plan_relief("m", scene, 4, 1, half_full, POLICY, S, on_station_s=1800.0)
    assert relief.chosen is None
    assert relief.arrival_s == math.inf
    assert relief.describe().startswith("no relief for nest 1: no nest can go: nest 6")


def test_no_candidates_means_no_relief() -> None:
    relief = plan_relief("m", home(1), 4, 1, [], POLICY, S, on_station_s=600.0)
    assert relief.chosen is None and relief.arrival_s == math.inf
    with pytest.raises(ValueError, match="on_station_s"):
        plan_relief("m", home(1), 4, 1, [], POLICY, S, on_station_s=0.0)
