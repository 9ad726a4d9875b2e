"""Launch / goto / orbit checks and the battery model: every blocker that holds is reported."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dronectl.domain.config import load_config
from dronectl.domain.energy import (
    DEFAULT_MODEL,
    Wind,
    ground_speed_mps,
    must_return_now,
    return_budget,
    round_trip,
)
from dronectl.domain.errors import CommandRefused, DronectlError
from dronectl.domain.geo import GeoPoint, destination, distance_m
from dronectl.domain.nest_state import CoverState, FlightMode, NestPhase, NestState, Observations
from dronectl.domain.safety import (
    BlockerCode,
    DronePosition,
    GotoRequest,
    LaunchRequest,
    NestSnapshot,
    OrbitRequest,
    OtherFlight,
    SafetyPolicy,
    WeatherReading,
)

CONFIG = load_config()
POLICY = SafetyPolicy.from_config(CONFIG)
NANHU = GeoPoint(CONFIG.nest(3).lat, CONFIG.nest(3).lon)
CALM_DAY = WeatherReading(3.0, 5.0, 290.0, 0.0, -2.0)
READY_OBS = Observations(
    link_up=True,
    armed=False,
    in_air=False,
    ready_to_arm=True,
    cover=CoverState.CLOSED,
    drone_in_dock=True,
    charging=False,
)
AIRBORNE_OBS = replace(
    READY_OBS, armed=True, in_air=True, mode=FlightMode.HOLD, cover=CoverState.OPEN, drone_in_dock=False
)


def nest3(**changes: object) -> NestSnapshot:
    snap = NestSnapshot(3, "Nanhu Park", NANHU, NestState(NestPhase.READY, READY_OBS), 95.0, CALM_DAY)
    return replace(snap, **changes)  # type: ignore[arg-type]


def codes(blockers: tuple[object, ...]) -> list[BlockerCode]:
    return [b.code for b in blockers]  # type: ignore[attr-defined]


TARGET_1500 = destination(NANHU, 45.0, 1500.0)
GOOD = LaunchRequest(TARGET_1500, 60.0)


def test_a_good_launch_has_no_blockers() -> None:
    assert POLICY.check_launch(nest3(), GOOD) == ()


def test_wind_blocks_with_the_figures() -> None:
    blockers = POLICY.check_launch(nest3(weather=replace(CALM_DAY, wind_speed_mps=14.2)), GOOD)
    assert [b.message for b in blockers] == ["wind 14.2 m/s above the 12.0 m/s limit"]


def test_every_weather_reason_is_listed() -> None:
    storm = WeatherReading(14.2, 19.0, 0.0, 8.0, -31.0)
    blockers = POLICY.check_launch(nest3(weather=storm), GOOD)
    assert codes(blockers)[:4] == [
        BlockerCode.WIND,
        BlockerCode.GUST,
        BlockerCode.PRECIPITATION,
        BlockerCode.TOO_COLD,
    ]
    assert "air -31 °C below the -25 °C limit" in [b.message for b in blockers]
    assert codes(POLICY.check_launch(nest3(weather=None), GOOD)) == [BlockerCode.WEATHER_UNKNOWN]


def test_battery_short_for_the_distance() -> None:
    far = LaunchRequest(destination(NANHU, 90.0, 3100.0), 60.0)
    blockers = POLICY.check_launch(nest3(battery_pct=41.0), far)
    assert codes(blockers) == [BlockerCode.BATTERY_SHORT]
    msg = blockers[0].message
    assert (
        msg.startswith("battery 41 % short of the ")
        and "the 6.2 km round trip needs with a 25 % reserve" in msg
    )
    needed = round_trip(NANHU, far.target, 60.0, CALM_DAY.wind, far.on_station_s).needed_pct + 25.0
    assert f"{needed:.0f} %" in msg or f"{needed + 1:.0f} %" in msg
    # just enough passes
    assert POLICY.check_launch(nest3(battery_pct=needed + 0.1), far) == ()


def test_headwind_costs_more_than_calm_and_too_much_wind_is_infeasible() -> None:
    target = destination(NANHU, 90.0, 5000.0)
    calm = round_trip(NANHU, target, 60, Wind(0.0, 0.0), 300)
    windy = round_trip(NANHU, target, 60, Wind(10.0, 90.0), 300)
    assert windy.needed_pct > calm.needed_pct
    stuck = POLICY.check_launch(
        nest3(weather=replace(CALM_DAY, wind_speed_mps=11.5, wind_from_deg=90.0)), LaunchRequest(target, 60.0)
    )
    assert BlockerCode.BATTERY_SHORT in codes(stuck)
    gale = round_trip(NANHU, target, 60, Wind(16.0, 90.0), 300)
    assert not gale.feasible


def test_airspace_blockers() -> None:
    outside = POLICY.check_launch(nest3(), LaunchRequest(GeoPoint(44.05, 125.30), 60.0))
    assert "target outside the Changchun operating area geofence" in [b.message for b in outside]
    airfield = POLICY.check_launch(nest3(), LaunchRequest(GeoPoint(43.905, 125.21), 60.0))
    assert "target inside no-fly zone 'Dafangshen airfield'" in [b.message for b in airfield]
    assert BlockerCode.PATH_CROSSES_NO_FLY not in codes(airfield)  # the same zone is not named twice
    # from People's Square (nest 1) straight north across the government compound
    nest1 = nest3(nest_id=1, home=GeoPoint(CONFIG.nest(1).lat, CONFIG.nest(1).lon))
    across = POLICY.check_launch(nest1, LaunchRequest(GeoPoint(43.9000, 125.3400), 60.0))
    assert codes(across) == [BlockerCode.PATH_CROSSES_NO_FLY]
    assert "flight path crosses no-fly zone 'Provincial government compound'" in across[0].message


def test_altitude_and_range() -> None:
    assert [b.message for b in POLICY.check_launch(nest3(), LaunchRequest(TARGET_1500, 150.0))] == [
        "altitude 150 m above the 120 m ceiling"
    ]
    assert codes(POLICY.check_launch(nest3(), LaunchRequest(TARGET_1500, 2.0))) == [
        BlockerCode.ALTITUDE_TOO_LOW
    ]
    far = destination(NANHU, 60.0, 13_000.0)
    assert BlockerCode.OUT_OF_RANGE in codes(POLICY.check_launch(nest3(), LaunchRequest(far, 60.0)))


def test_nest_state_blockers() -> None:
    maint = nest3(state=NestState(NestPhase.MAINTENANCE, READY_OBS, maintenance=True))
    assert [b.message for b in POLICY.check_launch(maint, GOOD)] == ["nest in maintenance"]
    fault = nest3(
        state=NestState(NestPhase.FAULT, READY_OBS, fault="cover jammed"), device_faults=("cover jammed",)
    )
    assert [b.message for b in POLICY.check_launch(fault, GOOD)] == ["nest in fault: cover jammed"]
    jam = nest3(device_faults=("cover jammed",))
    assert [b.message for b in POLICY.check_launch(jam, GOOD)] == ["cover jammed"]
    lost = nest3(state=NestState(NestPhase.OFFLINE, replace(READY_OBS, link_up=False)))
    assert codes(POLICY.check_launch(lost, GOOD)) == [BlockerCode.LINK_LOST]
    flying = nest3(state=NestState(NestPhase.ON_STATION, AIRBORNE_OBS))
    assert codes(POLICY.check_launch(flying, GOOD)) == [BlockerCode.NEST_BUSY]
    standby = nest3(state=NestState(NestPhase.STANDBY, replace(READY_OBS, ready_to_arm=False)))
    assert codes(POLICY.check_launch(standby, GOOD)) == [BlockerCode.NEST_NOT_READY]
    charging = nest3(state=NestState(NestPhase.CHARGING, replace(READY_OBS, charging=True)))
    assert POLICY.check_launch(charging, GOOD) == ()
    assert codes(POLICY.check_launch(nest3(battery_pct=None), GOOD)) == [BlockerCode.BATTERY_UNKNOWN]


def test_separation() -> None:
    other_station = destination(TARGET_1500, 0.0, 80.0)
    others = [OtherFlight(6, position=other_station, target=other_station)]
    blockers = POLICY.check_launch(nest3(), GOOD, others)
    assert [b.message for b in blockers] == ["target 80 m from nest 6's flight (separation 150 m)"]
    # another drone holding next to our path (not our target)
    mid = destination(NANHU, 45.0, 700.0)
    beside = destination(mid, 135.0, 60.0)
    blockers = POLICY.check_launch(nest3(), GOOD, [OtherFlight(6, beside, beside)])
    assert [b.message for b in blockers] == [
        "flight path passes 60 m from nest 6's station (separation 150 m)"
    ]
    far_away = destination(TARGET_1500, 0.0, 400.0)
    assert POLICY.check_launch(nest3(), GOOD, [OtherFlight(6, far_away, far_away)]) == ()
    assert POLICY.check_launch(nest3(), GOOD, [OtherFlight(3, TARGET_1500, TARGET_1500)]) == ()  # itself


def test_every_reason_at_once() -> None:
    snap = nest3(
        state=NestState(NestPhase.MAINTENANCE, READY_OBS, maintenance=True),
        weather=replace(CALM_DAY, wind_speed_mps=14.2),
        battery_pct=10.0,
    )
    blockers = POLICY.check_launch(snap, LaunchRequest(GeoPoint(43.905, 125.21), 150.0))
    assert set(codes(blockers)) >= {
        BlockerCode.NEST_MAINTENANCE,
        BlockerCode.WIND,
        BlockerCode.ALTITUDE_CEILING,
        BlockerCode.IN_NO_FLY_ZONE,
        BlockerCode.WIND_TOO_STRONG_FOR_ROUTE,  # 14 m/s headwind on the way out
    }
    err = CommandRefused("launch nest 3", blockers)
    assert isinstance(err, DronectlError)
    assert err.reasons == tuple(b.message for b in blockers)
    assert "wind 14.2 m/s above the 12.0 m/s limit" in str(err)


# --- in flight -------------------------------------------------------------------------------


def flying(**changes: object) -> NestSnapshot:
    return nest3(**{"state": NestState(NestPhase.ON_STATION, AIRBORNE_OBS), **changes})


HERE = DronePosition(TARGET_1500, 60.0)


def test_goto_checks() -> None:
    assert (
        POLICY.check_goto(flying(battery_pct=60.0), HERE, GotoRequest(destination(NANHU, 0, 2000), 60)) == ()
    )
    blockers = POLICY.check_goto(flying(), HERE, GotoRequest(GeoPoint(43.892, 125.331), 150))
    assert [b.message for b in blockers] == [
        "altitude 150 m above the 120 m ceiling",
        "target inside no-fly zone 'Provincial government compound'",
    ]
    short = POLICY.check_goto(flying(battery_pct=35.0), HERE, GotoRequest(destination(NANHU, 0, 5000), 60))
    assert codes(short) == [BlockerCode.BATTERY_SHORT] and "trip there and home" in short[0].message
    on_pad = POLICY.check_goto(nest3(), HERE, GotoRequest(TARGET_1500, 60))
    assert codes(on_pad) == [BlockerCode.NOT_AIRBORNE]
    lost = flying(state=NestState(NestPhase.ON_STATION, replace(AIRBORNE_OBS, link_up=False)))
    assert [b.message for b in POLICY.check_goto(lost, HERE, GotoRequest(TARGET_1500, 60))] == [
        "drone link lost"
    ]


def test_measured_fast_drain_makes_a_goto_short() -> None:
    req = GotoRequest(destination(NANHU, 0, 3000), 60)
    assert POLICY.check_goto(flying(battery_pct=70.0), HERE, req) == ()
    assert codes(POLICY.check_goto(flying(battery_pct=70.0, drain_pct_per_min=20.0), HERE, req)) == [
        BlockerCode.BATTERY_SHORT
    ]


def test_orbit_checks() -> None:
    centre = GeoPoint(43.8880, 125.3315)  # ~280 m south of the government compound
    assert POLICY.check_orbit(flying(), HERE, OrbitRequest(centre, 100.0, 60.0)) == ()
    blockers = POLICY.check_orbit(flying(), HERE, OrbitRequest(centre, 400.0, 60.0))
    assert [b.message for b in blockers] == [
        "orbit of 400 m radius enters no-fly zone 'Provincial government compound'"
    ]
    assert codes(POLICY.check_orbit(flying(), HERE, OrbitRequest(centre, 0.0, 60.0))) == [
        BlockerCode.INVALID_REQUEST
    ]
    neighbour = destination(centre, 90.0, 200.0)
    sep = POLICY.check_orbit(
        flying(), HERE, OrbitRequest(centre, 100.0, 60.0), [OtherFlight(6, neighbour, neighbour)]
    )
    assert codes(sep) == [BlockerCode.SEPARATION] and "orbit 100 m from nest 6" in sep[0].message


# --- the battery model and the return watch --------------------------------------------------


def test_ground_speed_wind_triangle() -> None:
    assert ground_speed_mps(90.0, Wind(5.0, 90.0), 12.0) == pytest.approx(7.0)  # headwind
    assert ground_speed_mps(90.0, Wind(5.0, 270.0), 12.0) == pytest.approx(17.0)  # tailwind
    assert ground_speed_mps(0.0, Wind(5.0, 90.0), 12.0) == pytest.approx((144 - 25) ** 0.5)  # crosswind
    assert ground_speed_mps(0.0, Wind(13.0, 90.0), 12.0) == 0.0
    assert ground_speed_mps(90.0, Wind(12.0, 90.0), 12.0) == 0.0


@given(st.floats(0.0, 11.0), st.floats(0.0, 359.0), st.floats(500.0, 8000.0), st.floats(0.0, 359.0))
def test_unknown_wind_direction_is_the_worst_case(
    speed: float, from_deg: float, dist: float, bearing: float
) -> None:
    target = destination(NANHU, bearing, dist)
    known = round_trip(NANHU, target, 60, Wind(speed, from_deg), 300).needed_pct
    unknown = round_trip(NANHU, target, 60, Wind(speed, None), 300).needed_pct
    assert unknown >= known - 0.05  # sampled every 5 degrees
    assert known >= round_trip(NANHU, target, 60, Wind(0.0, 0.0), 300).needed_pct - 1e-6


def test_must_return_now_turns_back_in_time() -> None:
    """Fly away from home: the watch fires once, and at that moment the return is still covered."""
    wind = Wind(6.0, 270.0)  # flying east: tailwind out, headwind home
    battery, position, dt_s = 100.0, NANHU, 5.0
    step_m = ground_speed_mps(90.0, wind, DEFAULT_MODEL.cruise_airspeed_mps) * dt_s
    while not must_return_now(position, NANHU, battery, wind, 25.0, alt_above_home_m=60.0):
        position = destination(position, 90.0, step_m)
        battery -= DEFAULT_MODEL.drain_pct_per_min * dt_s / 60.0
    budget = return_budget(position, NANHU, battery, wind, 25.0, alt_above_home_m=60.0)
    assert battery - budget.return_needed_pct >= 25.0  # lands with the reserve
    assert budget.spare_pct > -1.0  # and did not waste much
    assert distance_m(NANHU, position) > 3000.0


def test_fast_measured_drain_turns_back_earlier() -> None:
    far = destination(NANHU, 90.0, 3000.0)
    assert not must_return_now(far, NANHU, 50.0, Wind(3.0, 290.0), 25.0, alt_above_home_m=60.0)
    assert must_return_now(
        far, NANHU, 50.0, Wind(3.0, 290.0), 25.0, alt_above_home_m=60.0, drain_pct_per_min=30.0
    )
