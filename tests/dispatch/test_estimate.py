"""Time to scene: readiness and the leg with the wind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dronectl.domain.dispatch import DispatchSettings, launch_estimate, retask_estimate
from dronectl.domain.dispatch.estimate import minutes, readiness_s
from dronectl.domain.energy import CALM, DEFAULT_MODEL, Wind
from dronectl.domain.geo import destination, distance_m
from dronectl.domain.nest_state import CoverState, NestPhase, NestState
from tests.dispatch.fleet_fixtures import READY_OBS, home

S = DispatchSettings()
READY = NestState(NestPhase.READY, READY_OBS)


def test_readiness_is_preflight_cover_arming_takeoff_and_climb() -> None:
    # 1 s preflight + 18 s cover + 1 s arming + 2 s take-off + 90 % of 60 m at PX4's 1.5 m/s take-off speed
    assert readiness_s(S, DEFAULT_MODEL, 60.0) == pytest.approx(1 + 18 + 1 + 2 + 36)
    assert readiness_s(S, DEFAULT_MODEL, 60.0, cover_open=True) == pytest.approx(1 + 1 + 2 + 36)


def test_launch_estimate_in_calm_air_is_readiness_plus_distance_over_cruise_speed() -> None:
    scene = destination(home(3), 45.0, 1500.0)
    est = launch_estimate(home(3), READY, scene, CALM, S, DEFAULT_MODEL)
    assert est.distance_m == pytest.approx(1500.0, abs=0.01)
    assert est.flight_s == pytest.approx(1500.0 / DEFAULT_MODEL.cruise_airspeed_mps + S.leg_overhead_s)
    assert est.total_s == pytest.approx(58.0 + 100.0 + 4.0)
    opened = NestState(NestPhase.READY, replace(READY_OBS, cover=CoverState.OPEN))
    assert launch_estimate(home(3), opened, scene, CALM, S, DEFAULT_MODEL).total_s == pytest.approx(144.0)


def test_the_wind_shortens_a_downwind_leg_and_lengthens_an_upwind_one() -> None:
    west_wind = Wind(8.0, 270.0)  # blows from the west, towards the east
    east = destination(home(3), 90.0, 3000.0)
    west = destination(home(3), 270.0, 3000.0)
    downwind = launch_estimate(home(3), READY, east, west_wind, S, DEFAULT_MODEL)
    upwind = launch_estimate(home(3), READY, west, west_wind, S, DEFAULT_MODEL)
    assert downwind.flight_s - S.leg_overhead_s == pytest.approx(3000.0 / (15.0 + 8.0), rel=1e-3)
    assert upwind.flight_s - S.leg_overhead_s == pytest.approx(3000.0 / (15.0 - 8.0), rel=1e-3)
    unknown = launch_estimate(home(3), READY, east, Wind(8.0, None), S, DEFAULT_MODEL)
    assert unknown.flight_s == pytest.approx(upwind.flight_s, rel=1e-3)  # the worst direction


def test_a_wind_stronger_than_the_airspeed_makes_the_leg_impossible() -> None:
    scene = destination(home(3), 270.0, 2000.0)
    est = launch_estimate(home(3), READY, scene, Wind(16.0, 270.0), S, DEFAULT_MODEL)
    assert est.total_s == float("inf") and minutes(est.total_s) == "never"


def test_dispatch_cruise_speed_is_used_for_the_leg() -> None:
    scene = destination(home(3), 0.0, 1200.0)
    slow = DispatchSettings(cruise_speed_mps=10.0)
    assert launch_estimate(home(3), READY, scene, CALM, slow, DEFAULT_MODEL).flight_s == pytest.approx(124.0)


def test_retask_counts_the_altitude_change_and_the_leg_from_where_the_drone_is() -> None:
    here = destination(home(3), 0.0, 500.0)
    scene = destination(here, 90.0, 900.0)
    est = retask_estimate(here, 30.0, scene, CALM, S, DEFAULT_MODEL)
    assert est.readiness_s == pytest.approx(2.0 + 30.0 / 3.0)
    assert est.flight_s == pytest.approx(distance_m(here, scene) / 15.0 + S.leg_overhead_s)
    higher = retask_estimate(here, 90.0, scene, CALM, S, DEFAULT_MODEL)
    assert higher.readiness_s == pytest.approx(2.0 + 30.0 / 1.5)  # descending is slower


def test_minutes_text() -> None:
    assert minutes(305.4) == "5 min 05 s"
