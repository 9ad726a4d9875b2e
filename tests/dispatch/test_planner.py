"""The planner: the soonest nest with a go is chosen; a nest with a blocker never is, with its reasons."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from dronectl.domain.dispatch import (
    Action,
    Candidate,
    DispatchPlan,
    DispatchSettings,
    Mode,
    PassedOver,
    Reason,
    SceneRequest,
    Work,
    decide,
    launch_estimate,
    plan,
)
from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.nest_state import NestPhase
from dronectl.domain.safety import DronePosition, LaunchRequest, NestSnapshot, WeatherReading
from tests.dispatch.fleet_fixtures import (
    CALM,
    CONFIG,
    POLICY,
    airborne,
    home,
    in_fault,
    in_maintenance,
    ready,
)

S = DispatchSettings()
STORM = WeatherReading(14.0, 18.0, 300.0, 6.0, -5.0)


def request(scene: GeoPoint, priority: int = 1) -> SceneRequest:
    return SceneRequest("inc-1", scene, priority)


def passed_over(p: DispatchPlan, nest_id: int) -> PassedOver:
    return next(x for x in p.passed_over if x.nest_id == nest_id)


def all_ready() -> list[Candidate]:
    return [Candidate(ready(n.id)) for n in CONFIG.nests]


def test_the_nearest_ready_nest_serves_a_scene_next_to_it() -> None:
    scene = destination(home(7), 30.0, 400.0)
    p = plan(request(scene), all_ready(), POLICY, S)
    assert p.chosen is not None and p.chosen.nest_id == 7 and p.chosen.mode is Mode.LAUNCH
    times = [o.time_to_scene_s for o in p.options]
    assert times == sorted(times) and len(p.options) + len(p.passed_over) == 16
    # the far nests are passed over for range or battery, never silently
    for far in p.passed_over:
        assert {r.code for r in far.reasons} & {"out_of_range", "battery_short", "path_crosses_no_fly"}


def test_a_nest_in_no_go_weather_is_passed_over_with_the_reason_and_the_next_best_goes() -> None:
    scene = destination(home(7), 30.0, 400.0)
    best = plan(request(scene), all_ready(), POLICY, S)
    second = best.options[1].nest_id
    candidates = [
        Candidate(ready(n.id, weather=STORM)) if n.id == 7 else Candidate(ready(n.id)) for n in CONFIG.nests
    ]
    p = plan(request(scene), candidates, POLICY, S)
    assert p.chosen is not None and p.chosen.nest_id == second
    passed = passed_over(p, 7)
    assert [r.code for r in passed.reasons][:3] == ["wind", "gust", "precipitation"]
    assert "wind 14.0 m/s above the 12.0 m/s limit" in passed.describe()


def test_when_no_nest_can_go_the_incident_is_queued_with_every_reason_per_nest() -> None:
    candidates = []
    for n in CONFIG.nests:
        if n.id % 3 == 0:
            snap = in_maintenance(n.id)
        elif n.id % 3 == 1:
            snap = ready(n.id, weather=STORM)
        else:
            snap = ready(n.id, battery_pct=20.0)
        candidates.append(Candidate(snap))
    p = plan(request(home(1)), candidates, POLICY, S)
    assert p.chosen is None and decide(p, S) is Action.QUEUE
    assert [x.nest_id for x in p.passed_over] == list(range(1, 17))
    text = p.why_none()
    assert "nest 3 (Nanhu Park): nest in maintenance" in text
    assert "nest 2 (Changchun Railway Station): battery 20 % short" in text
    assert "nest 1 (People's Square): wind 14.0 m/s" in text


def test_the_services_own_reasons_are_added_to_the_safety_ones() -> None:
    control = Reason("manual_control", "under manual control of pilot-li (pilot)")
    candidates = [
        Candidate(ready(n.id, battery_pct=10.0), unavailable=(control,))
        if n.id == 7
        else Candidate(ready(n.id))
        for n in CONFIG.nests
    ]
    p = plan(request(home(7)), candidates, POLICY, S)
    assert p.chosen is not None and p.chosen.nest_id != 7
    passed = passed_over(p, 7)
    assert [r.code for r in passed.reasons] == ["manual_control", "battery_short"]


def test_an_airborne_drone_on_less_urgent_work_is_retasked_when_it_is_sooner() -> None:
    scene = destination(home(10), 200.0, 3000.0)  # between nests, far from every dock
    drone_at = destination(scene, 0.0, 300.0)
    docked = [Candidate(ready(n.id)) for n in CONFIG.nests if n.id != 10]
    flying = Candidate(
        airborne(10), drone=DronePosition(drone_at, 60.0), work=Work(4, "incident old (priority 4)")
    )
    p = plan(request(scene, priority=2), [*docked, flying], POLICY, S)
    assert p.chosen is not None and p.chosen.nest_id == 10 and p.chosen.mode is Mode.RETASK
    assert p.chosen.time_to_scene_s < p.options[1].time_to_scene_s
    # as urgent or more: left alone, with the reason
    p = plan(request(scene, priority=4), [*docked, flying], POLICY, S)
    assert p.chosen is not None and p.chosen.nest_id != 10
    assert "busy with incident old (priority 4)" in passed_over(p, 10).describe()
    # flying work the dispatcher does not own (a pilot's flight): never taken
    theirs = replace(flying, work=None)
    p = plan(request(scene, priority=1), [*docked, theirs], POLICY, S)
    assert passed_over(p, 10).reasons[0].code == "not_ours"


def test_a_retask_needs_the_battery_for_the_new_trip_and_home() -> None:
    scene = destination(home(10), 200.0, 3000.0)
    drone_at = destination(scene, 0.0, 300.0)
    flying = Candidate(
        airborne(10, battery_pct=30.0), drone=DronePosition(drone_at, 60.0), work=Work(5, "patrol")
    )
    p = plan(request(scene, priority=1), [flying], POLICY, S)
    assert p.chosen is None
    assert [r.code for r in p.passed_over[0].reasons] == ["battery_short"]


def test_policy_launches_urgent_incidents_and_proposes_the_rest() -> None:
    scene = destination(home(7), 30.0, 400.0)
    assert decide(plan(request(scene, 1), all_ready(), POLICY, S), S) is Action.LAUNCH
    assert decide(plan(request(scene, 2), all_ready(), POLICY, S), S) is Action.LAUNCH
    p3 = plan(request(scene, 3), all_ready(), POLICY, S)
    assert decide(p3, S) is Action.PROPOSE
    assert decide(p3, S, confirmed=True) is Action.LAUNCH
    assert decide(p3, DispatchSettings(auto_launch_max_priority=0), confirmed=False) is Action.PROPOSE


# --- properties -----------------------------------------------------------------------------

CONDITIONS = ("ready", "ready", "ready", "storm", "low_battery", "maintenance", "fault", "flying")


def snapshot_for(nest_id: int, condition: str, wind: WeatherReading) -> NestSnapshot:
    if condition == "storm":
        return ready(nest_id, weather=STORM)
    if condition == "low_battery":
        return ready(nest_id, battery_pct=30.0, weather=wind)
    if condition == "maintenance":
        return in_maintenance(nest_id)
    if condition == "fault":
        return in_fault(nest_id)
    if condition == "flying":
        return airborne(nest_id, NestPhase.EN_ROUTE, weather=wind)
    return ready(nest_id, weather=wind)


scenes = st.builds(
    GeoPoint,
    st.floats(43.78, 44.00, allow_nan=False),
    st.floats(125.16, 125.51, allow_nan=False),
)
winds = st.builds(
    lambda speed, direction: replace(
        CALM, wind_speed_mps=speed, wind_gust_mps=speed + 2.0, wind_from_deg=direction
    ),
    st.floats(0.0, 11.0),
    st.floats(0.0, 359.0),
)


@settings(max_examples=60, deadline=None)
@given(
    scene=scenes,
    wind=winds,
    conditions=st.lists(st.sampled_from(CONDITIONS), min_size=16, max_size=16),
)
def test_the_chosen_nest_is_the_soonest_with_a_go_and_no_blocked_nest_is_ever_chosen(
    scene: GeoPoint, wind: WeatherReading, conditions: list[str]
) -> None:
    candidates = [
        Candidate(snapshot_for(n.id, c, wind)) for n, c in zip(CONFIG.nests, conditions, strict=True)
    ]
    p = plan(request(scene), candidates, POLICY, S)
    launch = LaunchRequest(scene, S.cruise_alt_m, on_station_s=S.on_scene_s)
    expected: dict[int, float] = {}
    for c in candidates:
        snap = c.snapshot
        blockers = POLICY.check_launch(snap, launch)
        chosen_ids = {o.nest_id for o in p.options}
        if snap.state.flying:  # flying for someone else: not ours to take
            assert snap.nest_id not in chosen_ids
            continue
        if blockers:
            assert snap.nest_id not in chosen_ids
            passed = next(x for x in p.passed_over if x.nest_id == snap.nest_id)
            assert [r.message for r in passed.reasons] == [b.message for b in blockers]
        else:
            assert snap.weather is not None
            est = launch_estimate(snap.home, snap.state, scene, snap.weather.wind, S, POLICY.model)
            expected[snap.nest_id] = est.total_s
    assert {o.nest_id for o in p.options} == set(expected)
    assert len(p.options) + len(p.passed_over) == 16
    if expected:
        assert p.chosen is not None
        assert p.chosen.time_to_scene_s == min(expected.values())
        assert all(p.chosen.time_to_scene_s <= t for t in expected.values())
    else:
        assert p.chosen is None and decide(p, S) is Action.QUEUE
    # pruning the nests that cannot win changes nothing in the choice, and skips only those
    pruned = plan(request(scene), candidates, POLICY, S, prune=True)
    assert (pruned.chosen is None) == (p.chosen is None)
    if p.chosen is not None:
        assert pruned.chosen is not None and pruned.chosen.time_to_scene_s == p.chosen.time_to_scene_s
        for u in pruned.unexamined:
            assert u.at_least_s > p.chosen.time_to_scene_s
            full = p.option(u.nest_id)
            assert full is None or full.time_to_scene_s >= u.at_least_s
    else:
        assert pruned.unexamined == () and pruned.passed_over == p.passed_over
