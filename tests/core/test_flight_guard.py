"""The in-flight guard's decision (pure): when a drone must come home, and the reason given."""

from __future__ import annotations

import pytest

from adapters.protocols import DockWeather, Position, Precipitation
from dronectl.domain import nest_state as ns
from dronectl.domain.config import load_config
from dronectl.domain.flight_guard import guard_reason
from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.safety import SafetyPolicy

CONFIG = load_config()
POLICY = SafetyPolicy.from_config(CONFIG)
NEST = CONFIG.nest(3)
HOME = GeoPoint(NEST.lat, NEST.lon)
CALM = DockWeather(0.0, 0.0, 0.0, -2.0, -3.0, 60.0, 0.0, Precipitation.NONE)
GALE = DockWeather(11.0, 14.0, 180.0, -2.0, -3.0, 60.0, 0.0, Precipitation.NONE)  # from the south


def at(point: GeoPoint, alt_m: float = 60.0) -> Position:
    return Position(point.lat_deg, point.lon_deg, NEST.ground_alt_m + alt_m, alt_m)


def reason(
    position: Position,
    battery_pct: float | None = 90.0,
    phase: ns.NestPhase = ns.NestPhase.ON_STATION,
    weather: DockWeather | None = CALM,
    drain: float | None = None,
) -> str | None:
    return guard_reason(phase, position, battery_pct, weather, HOME, POLICY, drain)


def test_a_healthy_drone_near_home_stays() -> None:
    assert reason(at(destination(HOME, 45.0, 1500.0))) is None


def test_outside_the_geofence_comes_home() -> None:
    south = min(lat for lat, _ in CONFIG.geofence.polygon)
    assert reason(at(GeoPoint(south - 0.001, NEST.lon))) == "outside the geofence: returning"


def test_inside_a_no_fly_zone_comes_home_naming_it() -> None:
    zone = CONFIG.no_fly_zones[1]
    lats = [p[0] for p in zone.polygon]
    lons = [p[1] for p in zone.polygon]
    inside = GeoPoint(sum(lats) / len(lats), sum(lons) / len(lons))
    assert reason(at(inside)) == f"inside no-fly zone '{zone.name}': returning"


def test_battery_that_would_break_the_reserve_comes_home() -> None:
    far = at(destination(HOME, 0.0, 6000.0))
    assert reason(far, battery_pct=90.0) is None
    said = reason(far, battery_pct=35.0)
    assert said is not None and said.startswith("battery 35 %") and "25 % reserve" in said


def test_a_headwind_home_and_a_measured_drain_turn_back_sooner() -> None:
    far = at(destination(HOME, 0.0, 6000.0))  # north of home: the way home is into a south wind
    battery = next(b for b in range(100, 0, -1) if reason(far, battery_pct=float(b)) is not None)
    windy = next(b for b in range(100, 0, -1) if reason(far, float(b), weather=GALE) is not None)
    drained = next(b for b in range(100, 0, -1) if reason(far, float(b), drain=6.0) is not None)
    assert windy > battery
    assert drained > battery


@pytest.mark.parametrize(
    "phase", [ns.NestPhase.RETURNING, ns.NestPhase.LANDING, ns.NestPhase.LAUNCHING, ns.NestPhase.READY]
)
def test_only_en_route_and_on_station_are_guarded(phase: ns.NestPhase) -> None:
    south = min(lat for lat, _ in CONFIG.geofence.polygon)
    assert reason(at(GeoPoint(south - 0.001, NEST.lon)), phase=phase) is None


def test_no_position_no_decision_and_no_battery_only_the_airspace() -> None:
    assert guard_reason(ns.NestPhase.ON_STATION, None, 10.0, CALM, HOME, POLICY, None) is None
    assert reason(at(destination(HOME, 0.0, 6000.0)), battery_pct=None) is None
