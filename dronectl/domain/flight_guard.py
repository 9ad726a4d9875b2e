"""The in-flight guard's decision: must the drone come home now, and why (pure, no await).

``dronectl.nest.guard.InFlightGuard`` asks it on every telemetry change (at most once a second)
while the drone flies to or holds its station, and sends the drone home with the reason it
gives: outside the geofence, inside a no-fly zone, or a battery that would no longer bring it
home with the reserve (planned with the wind the dock measures and the drain measured in
flight).
"""

from __future__ import annotations

from adapters.protocols import DockWeather, Position
from dronectl.domain import nest_state as ns
from dronectl.domain.energy import Wind, must_return_now
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import SafetyPolicy

GUARDED_PHASES = (ns.NestPhase.EN_ROUTE, ns.NestPhase.ON_STATION)


def guard_reason(
    phase: ns.NestPhase,
    position: Position | None,
    battery_pct: float | None,
    weather: DockWeather | None,
    home: GeoPoint,
    policy: SafetyPolicy,
    drain_pct_per_min: float | None,
) -> str | None:
    """Why the drone must return now, or None."""
    if phase not in GUARDED_PHASES or position is None:
        return None
    here = GeoPoint(position.lat_deg, position.lon_deg)
    if not policy.airspace.contains(here):
        return "outside the geofence: returning"
    zone = policy.airspace.zone_at(here)
    if zone is not None:
        return f"inside no-fly zone '{zone.name}': returning"
    if battery_pct is None:
        return None
    wind = Wind(weather.wind_speed_mps, weather.wind_from_deg) if weather is not None else Wind(0.0, None)
    if must_return_now(
        here,
        home,
        battery_pct,
        wind,
        policy.limits.reserve_pct,
        alt_above_home_m=position.alt_rel_m,
        model=policy.model,
        drain_pct_per_min=drain_pct_per_min,
    ):
        reserve = policy.limits.reserve_pct
        return f"battery {battery_pct:.0f} %: returning to keep the {reserve:.0f} % reserve"
    return None
