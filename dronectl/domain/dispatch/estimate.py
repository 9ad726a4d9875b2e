"""Time to scene: how long until a drone is over a point, from its dock or from where it flies.

Pure arithmetic on the controller's own models: the leg is flown at the energy model's cruise
airspeed with the nest's measured wind (``dronectl.domain.energy``: ground speed along the track, the
worst wind direction when it is unknown); the readiness of a docked drone is the sum of the
launch steps (preflight, cover, arming, take-off, climb at the autopilot's climb rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from dronectl.domain.dispatch_settings import DispatchSettings
from dronectl.domain.energy import EnergyModel, Wind, route_energy
from dronectl.domain.geo import GeoPoint, distance_m
from dronectl.domain.nest_state import CoverState, NestState

MEAN_EARTH_RADIUS_M = 6371008.8


@dataclass(frozen=True)
class SceneEstimate:
    """Seconds from the order to the drone over the scene, in its two parts."""

    readiness_s: float  # until the drone leaves for the scene at cruise altitude
    flight_s: float  # the leg to the scene (math.inf when the wind forbids it)
    distance_m: float

    @property
    def total_s(self) -> float:
        return self.readiness_s + self.flight_s


def cruise_model(model: EnergyModel, settings: DispatchSettings) -> EnergyModel:
    """The energy model flying at the dispatch cruise speed."""
    if settings.cruise_speed_mps is None:
        return model
    return replace(model, cruise_airspeed_mps=settings.cruise_speed_mps)


def leg_time_s(start: GeoPoint, end: GeoPoint, wind: Wind, model: EnergyModel) -> float:
    """Cruise time of one straight leg, with the wind (head, tail and cross) on that track."""
    return route_energy([start, end], wind, model=model).flight_time_s


def _leg_s(
    start: GeoPoint, end: GeoPoint, wind: Wind, model: EnergyModel, settings: DispatchSettings
) -> float:
    return leg_time_s(start, end, wind, model) + settings.leg_overhead_s


def readiness_s(
    settings: DispatchSettings, model: EnergyModel, alt_above_home_m: float, cover_open: bool = False
) -> float:
    """From the launch order to a docked drone at cruise altitude over its pad."""
    cover = 0.0 if cover_open else settings.cover_open_s
    climb = max(0.0, alt_above_home_m) * settings.climbed_fraction / settings.takeoff_climb_mps
    return settings.preflight_s + cover + settings.arm_s + settings.takeoff_s + climb


def retask_readiness_s(settings: DispatchSettings, model: EnergyModel, alt_above_home_m: float) -> float:
    """From the go-to order to an airborne drone heading out at cruise altitude."""
    change_m = settings.cruise_alt_m - alt_above_home_m
    rate = model.climb_rate_mps if change_m >= 0 else model.descent_rate_mps
    return settings.retask_s + abs(change_m) / rate


def quick_distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance on the mean sphere: 50 times cheaper than the geodesic, within 0.5 %."""
    p1, p2 = math.radians(a.lat_deg), math.radians(b.lat_deg)
    dp, dl = p2 - p1, math.radians(b.lon_deg - a.lon_deg)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * MEAN_EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def lower_bound_s(
    start: GeoPoint,
    scene: GeoPoint,
    ready_s: float,
    wind: Wind,
    settings: DispatchSettings,
    model: EnergyModel,
) -> float:
    """A time to scene no estimate can beat: the readiness, then the straight leg with the whole wind
    behind the drone (for pruning the nests that cannot win before their costly checks)."""
    fastest = cruise_model(model, settings).cruise_airspeed_mps + max(0.0, wind.speed_mps)
    return ready_s + settings.leg_overhead_s + 0.99 * quick_distance_m(start, scene) / fastest


def launch_estimate(
    home: GeoPoint,
    state: NestState,
    scene: GeoPoint,
    wind: Wind,
    settings: DispatchSettings,
    model: EnergyModel,
) -> SceneEstimate:
    """A drone launched from its dock at ``home``."""
    flying = cruise_model(model, settings)
    ready = readiness_s(settings, model, settings.cruise_alt_m, state.obs.cover is CoverState.OPEN)
    return SceneEstimate(ready, _leg_s(home, scene, wind, flying, settings), distance_m(home, scene))


def retask_estimate(
    position: GeoPoint,
    alt_above_home_m: float,
    scene: GeoPoint,
    wind: Wind,
    settings: DispatchSettings,
    model: EnergyModel,
) -> SceneEstimate:
    """A drone in the air at ``position``, sent on to the scene."""
    flying = cruise_model(model, settings)
    ready = retask_readiness_s(settings, model, alt_above_home_m)
    return SceneEstimate(ready, _leg_s(position, scene, wind, flying, settings), distance_m(position, scene))


def minutes(seconds: float) -> str:
    """``3 min 05 s`` (for messages)."""
    if not math.isfinite(seconds):
        return "never"
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s"
