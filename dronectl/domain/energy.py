"""Battery model: how much charge a flight needs, with the wind. Pure arithmetic, no I/O.

The same model serves the launch check ("is there enough for out, on station and back, plus the
reserve?"), the in-flight goto/orbit checks and the in-flight battery watch ("turn back now, from
wherever the drone is, or the reserve is gone by the time it lands").

Model (deliberately simple and conservative, every figure a parameter of :class:`EnergyModel`):

- The drone cruises at a fixed *airspeed*; over the ground it makes the airspeed vector plus the
  wind: on a leg with bearing ``t`` the ground speed is ``w_along + sqrt(Va^2 - w_cross^2)``
  (head/tailwind per leg, crab angle for the crosswind). A leg it cannot make good (crosswind at
  or above the airspeed, or ground speed below ``min_ground_speed_mps``) needs infinite energy.
- When the wind direction is unknown, the worst direction for the whole route is taken.
- Climb and descent at the autopilot's vertical speeds, plus fixed overheads for take-off and the
  precision landing into the dock; time on station (hover/orbit) as asked.
- Charge drains at a constant rate in % per minute: 100 % / 35 min for a typical dock quadrotor
  (hover and cruise draw about the same power for such a craft). In flight the watch passes the
  drain it *measures* and the model uses the larger of the two, so a failing or cold battery that
  drains faster than expected turns the drone back earlier, not too late.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dronectl.domain.geo import GeoPoint, bearing_deg, distance_m


@dataclass(frozen=True)
class Wind:
    speed_mps: float
    from_deg: float | None = None  # direction it blows from; None = unknown (assume the worst)


CALM = Wind(0.0, 0.0)


@dataclass(frozen=True)
class EnergyModel:
    cruise_airspeed_mps: float = 15.0  # typical dock quad cruise; well above the 12 m/s wind limit
    climb_rate_mps: float = 3.0  # PX4 MPC_Z_VEL_MAX_UP
    descent_rate_mps: float = 1.5  # PX4 MPC_Z_VEL_MAX_DN
    takeoff_overhead_s: float = 15.0  # arm, spool up, leave the dock
    landing_overhead_s: float = 45.0  # precision approach, slow final descent, disarm
    drain_pct_per_min: float = 100.0 / 35.0  # ~35 min endurance
    min_ground_speed_mps: float = 1.0
    return_margin_s: float = 30.0  # the watch decides this much before the last moment


DEFAULT_MODEL = EnergyModel()


@dataclass(frozen=True)
class EnergyEstimate:
    distance_m: float  # horizontal, over all legs
    flight_time_s: float  # math.inf when a leg cannot be flown against the wind
    needed_pct: float  # charge used by the flight, reserve not included

    @property
    def feasible(self) -> bool:
        return math.isfinite(self.flight_time_s)


def ground_speed_mps(track_deg: float, wind: Wind, airspeed_mps: float) -> float:
    """Ground speed along ``track_deg`` at ``airspeed_mps`` in a wind of known direction; 0 when
    the crosswind is too strong to hold the track."""
    if wind.speed_mps <= 0.0:
        return airspeed_mps
    to_rad = math.radians((wind.from_deg or 0.0) + 180.0 - track_deg)
    along = wind.speed_mps * math.cos(to_rad)
    cross = wind.speed_mps * math.sin(to_rad)
    if abs(cross) >= airspeed_mps:
        return 0.0
    return max(0.0, along + math.sqrt(airspeed_mps**2 - cross**2))


def _legs_time_s(legs: Sequence[tuple[float, float]], wind: Wind, model: EnergyModel) -> float:
    total = 0.0
    for length_m, track_deg in legs:
        if length_m <= 0.0:
            continue
        gs = ground_speed_mps(track_deg, wind, model.cruise_airspeed_mps)
        if gs < model.min_ground_speed_mps:
            return math.inf
        total += length_m / gs
    return total


def route_energy(
    waypoints: Sequence[GeoPoint],
    wind: Wind,
    *,
    climb_m: float = 0.0,
    descent_m: float = 0.0,
    on_station_s: float = 0.0,
    takeoff: bool = False,
    landing: bool = False,
    model: EnergyModel = DEFAULT_MODEL,
    drain_pct_per_min: float | None = None,
) -> EnergyEstimate:
    """Charge to fly ``waypoints`` in order (straight legs), with the vertical parts and overheads.

    ``drain_pct_per_min`` is a measured drain; the larger of it and the model's rate is used.
    """
    legs = [(distance_m(a, b), bearing_deg(a, b)) for a, b in itertools.pairwise(waypoints)]
    if wind.from_deg is None and wind.speed_mps > 0.0:
        cruise_s = max(_legs_time_s(legs, Wind(wind.speed_mps, float(d)), model) for d in range(0, 360, 5))
    else:
        cruise_s = _legs_time_s(legs, wind, model)
    vertical_s = max(0.0, climb_m) / model.climb_rate_mps + max(0.0, descent_m) / model.descent_rate_mps
    overhead_s = (model.takeoff_overhead_s if takeoff else 0.0) + (
        model.landing_overhead_s if landing else 0.0
    )
    time_s = cruise_s + vertical_s + overhead_s + max(0.0, on_station_s)
    rate = max(model.drain_pct_per_min, drain_pct_per_min or 0.0)
    return EnergyEstimate(sum(length for length, _ in legs), time_s, time_s / 60.0 * rate)


def round_trip(
    home: GeoPoint,
    target: GeoPoint,
    alt_above_home_m: float,
    wind: Wind,
    on_station_s: float,
    model: EnergyModel = DEFAULT_MODEL,
) -> EnergyEstimate:
    """A launch: take off, climb, fly out, stay on station, fly back, descend and land in the dock."""
    return route_energy(
        [home, target, home],
        wind,
        climb_m=alt_above_home_m,
        descent_m=alt_above_home_m,
        on_station_s=on_station_s,
        takeoff=True,
        landing=True,
        model=model,
    )


def return_home(
    position: GeoPoint,
    home: GeoPoint,
    alt_above_home_m: float,
    wind: Wind,
    model: EnergyModel = DEFAULT_MODEL,
    drain_pct_per_min: float | None = None,
) -> EnergyEstimate:
    """From where the drone is: fly home, descend and land in the dock."""
    return route_energy(
        [position, home],
        wind,
        descent_m=alt_above_home_m,
        landing=True,
        model=model,
        drain_pct_per_min=drain_pct_per_min,
    )


@dataclass(frozen=True)
class ReturnBudget:
    battery_pct: float
    return_needed_pct: float  # to get home and land, reserve not included
    reserve_pct: float
    margin_pct: float  # the charge spent during the watch's decision margin

    @property
    def spare_pct(self) -> float:
        """Charge left over if the drone turned back now; <= 0 means it must turn back now."""
        return self.battery_pct - self.return_needed_pct - self.reserve_pct - self.margin_pct


def return_budget(
    position: GeoPoint,
    home: GeoPoint,
    battery_pct: float,
    wind: Wind,
    reserve_pct: float,
    *,
    alt_above_home_m: float,
    model: EnergyModel = DEFAULT_MODEL,
    drain_pct_per_min: float | None = None,
) -> ReturnBudget:
    estimate = return_home(position, home, alt_above_home_m, wind, model, drain_pct_per_min)
    rate = max(model.drain_pct_per_min, drain_pct_per_min or 0.0)
    return ReturnBudget(battery_pct, estimate.needed_pct, reserve_pct, model.return_margin_s / 60.0 * rate)


def must_return_now(
    position: GeoPoint,
    home: GeoPoint,
    battery_pct: float,
    wind: Wind,
    reserve_pct: float,
    *,
    alt_above_home_m: float,
    model: EnergyModel = DEFAULT_MODEL,
    drain_pct_per_min: float | None = None,
) -> bool:
    """True when the drone must head home now to land with ``reserve_pct`` left."""
    budget = return_budget(
        position,
        home,
        battery_pct,
        wind,
        reserve_pct,
        alt_above_home_m=alt_above_home_m,
        model=model,
        drain_pct_per_min=drain_pct_per_min,
    )
    return budget.spare_pct <= 0.0
