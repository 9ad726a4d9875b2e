"""The patrol mission state machine, its storage and the service's pure decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dronectl.audit import AuditStore
from dronectl.automations.patrols.store import MissionStore, mission_data, mission_from_data
from dronectl.domain.config import (
    BlackIceConfig,
    CongestionConfig,
    CronWindowConfig,
    PatrolsConfig,
    RoadStretchConfig,
)
from dronectl.domain.geo import GeoPoint, distance_m
from dronectl.domain.patrols import missions as ms
from dronectl.domain.patrols.decisions import Station, nearest_station, reconcile, relief_target, wanted
from dronectl.domain.patrols.missions import Mission, MissionKind, MissionState, transition, waypoint_index
from dronectl.domain.patrols.triggers import RoadWeather

T0 = 1_764_000_000.0
S = MissionState


def planned(kind: MissionKind = MissionKind.BLACK_ICE, manual: bool = False) -> Mission:
    return Mission("m1", kind, "bridge", S.PLANNED, T0, "ice risk", manual=manual)


def run(m: Mission, *events: ms.Event) -> Mission:
    for i, event in enumerate(events):
        t = transition(m, event, T0 + i + 1)
        assert t.accepted, t.cause
        m = t.mission
    return m


# --- transitions ---------------------------------------------------------------------------------


def test_a_mission_launches_patrols_and_returns_home_when_stopped() -> None:
    m = run(planned(), ms.Assign(3))
    assert (m.state, m.nest_id, m.attempts, m.reason) == (S.LAUNCHING, 3, 1, "nest 3 launched")
    m = run(m, ms.OnRoute("f-1"))
    assert (m.state, m.flight_id, m.started_unix_s) == (S.PATROLLING, "f-1", T0 + 1)
    m = run(m, ms.LegDone(), ms.LegDone())
    assert m.leg == 2 and m.reason == "waypoint 2 reached"
    skipped = run(m, ms.LegDone(skipped="go to refused: separation"))
    assert skipped.leg == 3 and skipped.reason == "waypoint 3 skipped: go to refused: separation"
    m = run(m, ms.Stop("ice risk over"))
    assert (m.state, m.reason, m.nest_id) == (S.RETURNING, "ice risk over", 3)
    m = run(m, ms.End("ice risk over; nest 3 charging"))
    assert (m.state, m.active, m.ended_unix_s) == (S.ENDED, False, T0 + 1)


def test_a_planned_mission_stopped_ends_at_once() -> None:
    m = run(planned(), ms.Stop("stopped by officer-7"))
    assert (m.state, m.reason) == (S.ENDED, "stopped by officer-7")


def test_holding_and_resuming() -> None:
    m = run(planned(MissionKind.CONGESTION), ms.Assign(2), ms.OnRoute("f"), ms.Hold("sampling traffic"))
    assert (m.state, m.reason) == (S.HOLDING, "holding: sampling traffic")
    assert run(m, ms.Resume()).state is S.PATROLLING


def test_handover_moves_the_mission_to_the_relief_nest() -> None:
    m = run(planned(), ms.Assign(3), ms.OnRoute("f-3"), ms.LegDone())
    m = run(m, ms.ReliefLaunched(7))
    assert (m.state, m.nest_id, m.relief_nest_id) == (S.HANDING_OVER, 3, 7)
    assert "relief nest 7" in m.reason
    done = run(m, ms.ReliefOnRoute("f-7", 4))
    assert (done.state, done.nest_id, done.flight_id, done.relief_nest_id, done.leg) == (
        S.PATROLLING,
        7,
        "f-7",
        None,
        4,
    )
    assert done.reason == "handed over from nest 3 to nest 7"
    failed = run(m, ms.ReliefFailed("nest 7: launch refused"))
    assert (failed.state, failed.nest_id, failed.relief_nest_id) == (S.PATROLLING, 3, None)


def test_a_lost_drone_sends_the_mission_back_to_planning() -> None:
    m = run(planned(), ms.Assign(3), ms.OnRoute("f-3"))
    lost = run(m, ms.LostDrone("retasked to incident inc-1"))
    assert (lost.state, lost.nest_id, lost.flight_id, lost.attempts) == (S.PLANNED, None, None, 1)
    assert lost.reason == "nest 3 lost: retasked to incident inc-1; planning again"
    assert run(lost, ms.Assign(5)).attempts == 2


def test_taken_over_ends_from_any_active_state() -> None:
    for events in (
        [],
        [ms.Assign(3)],
        [ms.Assign(3), ms.OnRoute("f")],
        [ms.Assign(3), ms.OnRoute("f"), ms.Hold("x")],
    ):
        m = run(run(planned(), *events), ms.End("nest 3 taken over by officer-7 (pilot)"))
        assert (m.state, m.reason) == (S.ENDED, "nest 3 taken over by officer-7 (pilot)")


@pytest.mark.parametrize(
    ("events", "event", "why"),
    [
        ([], ms.OnRoute("f"), "OnRoute not valid while planned"),
        ([], ms.LegDone(), "LegDone not valid while planned"),
        ([ms.Assign(3)], ms.Assign(4), "Assign not valid while launching"),
        ([ms.Assign(3), ms.OnRoute("f")], ms.Resume(), "Resume not valid while patrolling"),
        (
            [ms.Assign(3), ms.OnRoute("f")],
            ms.ReliefOnRoute("g", 0),
            "ReliefOnRoute not valid while patrolling",
        ),
        ([ms.End("x")], ms.End("y"), "End not valid while ended"),
        ([ms.End("x")], ms.Stop("y"), "Stop not valid while ended"),
    ],
)
def test_events_that_do_not_fit_change_nothing(events: list[ms.Event], event: ms.Event, why: str) -> None:
    m = run(planned(), *events)
    t = transition(m, event, T0 + 100)
    assert (t.accepted, t.mission, t.cause, t.changed) == (False, m, why, False)


def test_waypoints_are_flown_back_and_forth() -> None:
    assert [waypoint_index(leg, 4) for leg in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [waypoint_index(leg, 2) for leg in range(4)] == [0, 1, 0, 1]
    assert waypoint_index(5, 1) == 0
    with pytest.raises(ValueError):
        waypoint_index(0, 0)


# --- storage -------------------------------------------------------------------------------------


def test_a_mission_round_trips_through_its_stored_data() -> None:
    m = run(planned(manual=True), ms.Assign(3), ms.OnRoute("f-3"), ms.LegDone())
    data = mission_data(m)
    assert data["kind"] == "black_ice" and data["state"] == "patrolling"
    assert mission_from_data(data) == m
    assert mission_from_data({**data, "field_of_a_newer_version": 1}) == m


async def test_the_store_keeps_every_transition_and_gives_back_the_unfinished(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    a = planned()
    b = replace(planned(MissionKind.CONGESTION), id="m2", stretch_id="square")
    async with await AuditStore.open(path) as audit:
        store = MissionStore(audit)
        await store.save(a, T0)
        await store.save(b, T0)
        a = run(a, ms.Assign(3), ms.OnRoute("f-3"))
        await store.save(a, T0 + 1)
        b = run(b, ms.End("congestion window over"))
        await store.save(b, T0 + 2)
    async with await AuditStore.open(path) as audit:  # as after a restart
        store = MissionStore(audit)
        assert await store.unfinished() == [a]
        assert [m.state for m in await store.history("m1")] == [S.PLANNED, S.PATROLLING]
        assert {m.id: m.state for m in await store.latest()} == {"m1": S.PATROLLING, "m2": S.ENDED}


# --- decisions -----------------------------------------------------------------------------------

BRIDGE = RoadStretchConfig(id="bridge", name="Bridge", points=[(43.8548, 125.2920), (43.8548, 125.3040)])
SQUARE = RoadStretchConfig(id="square", name="Square", points=[(43.8856, 125.3160), (43.8856, 125.3340)])
WINTER_MORNING = CronWindowConfig(cron="0 5 * 12,1,2 *", duration_min=150)
RUSH = CronWindowConfig(cron="0 7 * * 1-5", duration_min=120)
CONFIG = PatrolsConfig(
    stretches=[BRIDGE, SQUARE],
    black_ice=BlackIceConfig(stretches=["bridge"], schedule=[WINTER_MORNING]),
    congestion=CongestionConfig(stretches=["square"], schedule=[RUSH]),
)
DRY = RoadWeather(
    road_temp_c=4.0, air_temp_c=5.0, humidity_pct=60.0, precipitation_mmph=0.0, precipitation="none"
)
SNOW = RoadWeather(
    road_temp_c=-3.0, air_temp_c=-2.0, humidity_pct=90.0, precipitation_mmph=1.5, precipitation="snow"
)
NEAR = GeoPoint(43.8542, 125.2987)  # beside the bridge
FAR = GeoPoint(43.9100, 125.3300)


def test_the_nearest_station_with_weather_speaks_for_the_stretch() -> None:
    stations = [Station(1, FAR, DRY), Station(3, NEAR, None)]
    chosen = nearest_station(BRIDGE, stations)
    assert chosen is not None and chosen.nest_id == 1  # nest 3 has no reading yet
    assert nearest_station(BRIDGE, [Station(1, FAR, DRY), Station(3, NEAR, SNOW)]).nest_id == 3  # type: ignore[union-attr]
    assert nearest_station(BRIDGE, [Station(3, NEAR, None)]) is None


def test_ice_risk_at_the_nearest_station_wants_a_black_ice_patrol() -> None:
    sunday_noon = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    want = wanted(CONFIG, [Station(1, FAR, DRY), Station(3, NEAR, SNOW)], sunday_noon)
    assert list(want) == [(MissionKind.BLACK_ICE, "bridge")]
    assert want[(MissionKind.BLACK_ICE, "bridge")].startswith("ice risk at nest 3's station: ")
    # the far station's snow does not count for the bridge
    assert wanted(CONFIG, [Station(1, FAR, SNOW), Station(3, NEAR, DRY)], sunday_noon) == {}


def test_schedule_windows_want_their_stretches() -> None:
    monday_rush = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)
    want = wanted(CONFIG, [Station(3, NEAR, DRY)], monday_rush)
    assert want == {(MissionKind.CONGESTION, "square"): "congestion schedule 07:00-09:00"}
    december_dawn = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert wanted(CONFIG, [Station(3, NEAR, DRY)], december_dawn) == {
        (MissionKind.BLACK_ICE, "bridge"): "black-ice schedule 05:00-07:30"
    }


def test_reconcile_starts_the_uncovered_and_stops_automatic_missions_no_longer_wanted() -> None:
    covered = planned()  # black ice on the bridge
    old = replace(planned(MissionKind.CONGESTION), id="m2", stretch_id="square")
    manual = replace(planned(MissionKind.CONGESTION, manual=True), id="m3", stretch_id="other")
    want = {(MissionKind.BLACK_ICE, "bridge"): "ice", (MissionKind.CONGESTION, "north"): "rush"}
    r = reconcile([covered, old, manual], want)
    assert r.start == ((MissionKind.CONGESTION, "north", "rush"),)
    assert r.stop == (("m2", "congestion window over"),)  # the manual one is left alone


def test_a_relief_comes_to_the_nearest_waypoint_that_keeps_the_separation() -> None:
    points = [GeoPoint(43.8548, 125.2920 + i * 0.003) for i in range(5)]  # ~240 m apart
    drone = points[1]
    target = relief_target(points, [drone], 150.0)
    assert target is not None and distance_m(target, drone) >= 180.0
    assert target in (points[0], points[2])
    # the drone flies towards waypoint 2: the relief keeps off its target too
    assert relief_target(points, [drone, points[2]], 150.0) == points[0]
    assert relief_target(points[:1], [points[0]], 150.0) is None
