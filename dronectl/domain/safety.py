"""Safety checks for launch, goto and orbit: pure, and they return *every* reason that holds.

Each check takes plain snapshots (the nest, the request, the other flights) and returns a tuple
of :class:`Blocker`; empty means go. The controller raises
:class:`dronectl.domain.errors.CommandRefused` with them, so the operator sees all the problems at once,
in words ("wind 14.2 m/s above the 12.0 m/s limit").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dronectl.domain.blockers import Blocker, BlockerCode
from dronectl.domain.energy import DEFAULT_MODEL, EnergyEstimate, EnergyModel, Wind, route_energy
from dronectl.domain.geo import Airspace, GeoPoint, ViolationKind, distance_m, distance_to_segment_m
from dronectl.domain.nest_state import AIRBORNE, LAUNCHABLE, NestPhase, NestState, derive_phase

if TYPE_CHECKING:
    from dronectl.domain.config import CityConfig


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeatherReading:
    wind_speed_mps: float
    wind_gust_mps: float
    wind_from_deg: float | None
    precipitation_mmph: float
    air_temp_c: float

    @property
    def wind(self) -> Wind:
        return Wind(self.wind_speed_mps, self.wind_from_deg)


@dataclass(frozen=True)
class NestSnapshot:
    nest_id: int
    name: str
    home: GeoPoint
    state: NestState
    battery_pct: float | None
    weather: WeatherReading | None
    device_faults: tuple[str, ...] = ()  # active dock/drone fault flags, e.g. "cover jammed"
    drain_pct_per_min: float | None = None  # measured in flight, if known


@dataclass(frozen=True)
class OtherFlight:
    """Another nest's drone in the air: where it is and where it is going (or holds)."""

    nest_id: int
    position: GeoPoint
    target: GeoPoint | None = None


@dataclass(frozen=True)
class LaunchRequest:
    target: GeoPoint
    alt_above_home_m: float
    on_station_s: float = 300.0


@dataclass(frozen=True)
class GotoRequest:
    target: GeoPoint
    alt_above_home_m: float
    on_station_s: float = 300.0


@dataclass(frozen=True)
class OrbitRequest:
    centre: GeoPoint
    radius_m: float
    alt_above_home_m: float
    duration_s: float = 300.0


@dataclass(frozen=True)
class DronePosition:
    position: GeoPoint
    alt_above_home_m: float


@dataclass(frozen=True)
class SafetyLimits:
    altitude_ceiling_m: float = 120.0
    min_altitude_m: float = 10.0
    reserve_pct: float = 25.0
    separation_m: float = 150.0
    max_range_m: float = 12000.0
    max_wind_mps: float = 12.0
    max_gust_mps: float = 15.0
    max_precipitation_mmph: float = 4.0
    min_air_temp_c: float = -25.0
    max_air_temp_c: float = 45.0

    @classmethod
    def from_config(cls, config: CityConfig) -> SafetyLimits:
        s, w = config.safety, config.weather_limits
        return cls(
            altitude_ceiling_m=s.altitude_ceiling_m,
            reserve_pct=s.min_battery_reserve_pct,
            separation_m=s.separation_m,
            max_range_m=s.max_range_m,
            max_wind_mps=w.max_wind_mps,
            max_gust_mps=w.max_gust_mps,
            max_precipitation_mmph=w.max_precipitation_mmph,
            min_air_temp_c=w.min_air_temp_c,
            max_air_temp_c=w.max_air_temp_c,
        )


# --- the checks -------------------------------------------------------------------------------


def _km(metres: float) -> str:
    return f"{metres / 1000:.1f} km"


class SafetyPolicy:
    """The city's limits and airspace, with the checks that apply them."""

    def __init__(self, limits: SafetyLimits, airspace: Airspace, model: EnergyModel = DEFAULT_MODEL) -> None:
        self.limits = limits
        self.airspace = airspace
        self.model = model

    @classmethod
    def from_config(cls, config: CityConfig, model: EnergyModel = DEFAULT_MODEL) -> SafetyPolicy:
        return cls(SafetyLimits.from_config(config), config.airspace(), model)

    # launch ---------------------------------------------------------------------------------

    def check_launch(
        self, nest: NestSnapshot, request: LaunchRequest, others: Sequence[OtherFlight] = ()
    ) -> tuple[Blocker, ...]:
        blockers = [*self._nest_blockers(nest), *self._weather_blockers(nest.weather)]
        blockers += self._altitude_blockers(request.alt_above_home_m)
        blockers += self._target_blockers(nest.home, nest.home, request.target)
        if nest.battery_pct is None:
            blockers.append(Blocker(BlockerCode.BATTERY_UNKNOWN, "battery level not known"))
        else:
            estimate = route_energy(
                [nest.home, request.target, nest.home],
                self._wind(nest),
                climb_m=request.alt_above_home_m,
                descent_m=request.alt_above_home_m,
                on_station_s=request.on_station_s,
                takeoff=True,
                landing=True,
                model=self.model,
            )
            blockers += self._battery_blockers(nest, estimate, "round trip")
        blockers += self._separation_blockers(nest.nest_id, nest.home, request.target, 0.0, others)
        return tuple(blockers)

    # in flight ------------------------------------------------------------------------------

    def check_goto(
        self,
        nest: NestSnapshot,
        drone: DronePosition,
        request: GotoRequest,
        others: Sequence[OtherFlight] = (),
    ) -> tuple[Blocker, ...]:
        blockers = self._in_flight_blockers(nest)
        blockers += self._altitude_blockers(request.alt_above_home_m)
        blockers += self._target_blockers(nest.home, drone.position, request.target)
        blockers += self._in_flight_battery(
            nest, drone, request.target, request.alt_above_home_m, request.on_station_s, "trip there and home"
        )
        blockers += self._separation_blockers(nest.nest_id, drone.position, request.target, 0.0, others)
        return tuple(blockers)

    def check_orbit(
        self,
        nest: NestSnapshot,
        drone: DronePosition,
        request: OrbitRequest,
        others: Sequence[OtherFlight] = (),
    ) -> tuple[Blocker, ...]:
        blockers = self._in_flight_blockers(nest)
        if not request.radius_m > 0 or not math.isfinite(request.radius_m):
            blockers.append(
                Blocker(BlockerCode.INVALID_REQUEST, f"orbit radius {request.radius_m} m is not positive")
            )
            return tuple(blockers)
        blockers += self._altitude_blockers(request.alt_above_home_m)
        blockers += self._target_blockers(nest.home, drone.position, request.centre)
        named = {b.message for b in blockers}
        for v in self.airspace.circle_violations(request.centre, request.radius_m):
            if v.kind is ViolationKind.LEAVES_GEOFENCE:
                b = Blocker(
                    BlockerCode.OUTSIDE_GEOFENCE,
                    f"orbit of {request.radius_m:.0f} m radius leaves the {v.zone_name} geofence",
                )
            else:
                b = Blocker(
                    BlockerCode.IN_NO_FLY_ZONE,
                    f"orbit of {request.radius_m:.0f} m radius enters no-fly zone '{v.zone_name}'",
                )
            if f"target inside no-fly zone '{v.zone_name}'" not in named:
                blockers.append(b)
        # the orbit's circumference is flown at cruise speed: time on station is the duration asked
        blockers += self._in_flight_battery(
            nest, drone, request.centre, request.alt_above_home_m, request.duration_s, "orbit and trip home"
        )
        blockers += self._separation_blockers(
            nest.nest_id, drone.position, request.centre, request.radius_m, others
        )
        return tuple(blockers)

    # pieces ---------------------------------------------------------------------------------

    def _wind(self, nest: NestSnapshot) -> Wind:
        # without a reading (already blocked for a launch) plan for the limit from the worst direction
        return nest.weather.wind if nest.weather is not None else Wind(self.limits.max_wind_mps, None)

    def _nest_blockers(self, nest: NestSnapshot) -> list[Blocker]:
        state = nest.state
        phase = state.phase
        blockers: list[Blocker] = []
        if state.maintenance or phase is NestPhase.MAINTENANCE:
            blockers.append(Blocker(BlockerCode.NEST_MAINTENANCE, "nest in maintenance"))
        if state.fault is not None:
            blockers.append(Blocker(BlockerCode.NEST_FAULT, f"nest in fault: {state.fault}"))
        elif phase is NestPhase.FAULT:
            _, why = derive_phase(state.obs, state.fault, state.maintenance)
            blockers.append(Blocker(BlockerCode.NEST_FAULT, f"nest in fault: {why}"))
        if phase is NestPhase.OFFLINE:
            if not state.obs.link_up:
                blockers.append(Blocker(BlockerCode.LINK_LOST, "nest link lost"))
            else:
                _, why = derive_phase(state.obs, state.fault, state.maintenance)
                blockers.append(Blocker(BlockerCode.NEST_OFFLINE, f"nest state not known yet: {why}"))
        elif state.flying:
            blockers.append(
                Blocker(BlockerCode.NEST_BUSY, f"nest {nest.nest_id} already flying ({phase.value})")
            )
        elif phase is NestPhase.STANDBY:
            blockers.append(
                Blocker(BlockerCode.NEST_NOT_READY, "drone not ready to arm (pre-flight checks pending)")
            )
        elif phase is NestPhase.POST_FLIGHT:
            blockers.append(
                Blocker(BlockerCode.NEST_NOT_READY, "nest still finishing its last flight (cover closing)")
            )
        elif phase not in LAUNCHABLE and not blockers:
            blockers.append(Blocker(BlockerCode.NEST_NOT_READY, f"nest {phase.value}"))
        for fault in nest.device_faults:
            if fault != state.fault:
                blockers.append(Blocker(BlockerCode.DEVICE_FAULT, fault))
        return blockers

    def _in_flight_blockers(self, nest: NestSnapshot) -> list[Blocker]:
        blockers: list[Blocker] = []
        if nest.state.phase not in AIRBORNE or nest.state.phase is NestPhase.LANDING:
            blockers.append(
                Blocker(BlockerCode.NOT_AIRBORNE, f"drone not in flight (nest {nest.state.phase.value})")
            )
        if not nest.state.obs.link_up:
            blockers.append(Blocker(BlockerCode.LINK_LOST, "drone link lost"))
        return blockers

    def _weather_blockers(self, w: WeatherReading | None) -> list[Blocker]:
        lim = self.limits
        if w is None:
            return [Blocker(BlockerCode.WEATHER_UNKNOWN, "no weather reading from the nest")]
        blockers = []
        if w.wind_speed_mps > lim.max_wind_mps:
            blockers.append(
                Blocker(
                    BlockerCode.WIND,
                    f"wind {w.wind_speed_mps:.1f} m/s above the {lim.max_wind_mps:.1f} m/s limit",
                )
            )
        if w.wind_gust_mps > lim.max_gust_mps:
            blockers.append(
                Blocker(
                    BlockerCode.GUST,
                    f"gusts {w.wind_gust_mps:.1f} m/s above the {lim.max_gust_mps:.1f} m/s limit",
                )
            )
        if w.precipitation_mmph > lim.max_precipitation_mmph:
            blockers.append(
                Blocker(
                    BlockerCode.PRECIPITATION,
                    f"precipitation {w.precipitation_mmph:.1f} mm/h above the"
                    f" {lim.max_precipitation_mmph:.1f} mm/h limit",
                )
            )
        if w.air_temp_c < lim.min_air_temp_c:
            blockers.append(
                Blocker(
                    BlockerCode.TOO_COLD,
                    f"air {w.air_temp_c:.0f} °C below the {lim.min_air_temp_c:.0f} °C limit",
                )
            )
        if w.air_temp_c > lim.max_air_temp_c:
            blockers.append(
                Blocker(
                    BlockerCode.TOO_HOT,
                    f"air {w.air_temp_c:.0f} °C above the {lim.max_air_temp_c:.0f} °C limit",
                )
            )
        return blockers

    def _altitude_blockers(self, alt_m: float) -> list[Blocker]:
        lim = self.limits
        if alt_m > lim.altitude_ceiling_m:
            return [
                Blocker(
                    BlockerCode.ALTITUDE_CEILING,
                    f"altitude {alt_m:.0f} m above the {lim.altitude_ceiling_m:.0f} m ceiling",
                )
            ]
        if not alt_m >= lim.min_altitude_m:
            return [
                Blocker(
                    BlockerCode.ALTITUDE_TOO_LOW,
                    f"altitude {alt_m:.0f} m below the {lim.min_altitude_m:.0f} m minimum",
                )
            ]
        return []

    def _target_blockers(self, home: GeoPoint, start: GeoPoint, target: GeoPoint) -> list[Blocker]:
        airspace = self.airspace
        blockers = []
        inside = airspace.contains(target)
        zone = airspace.zone_at(target)
        if not inside:
            blockers.append(
                Blocker(BlockerCode.OUTSIDE_GEOFENCE, f"target outside the {airspace.geofence.name} geofence")
            )
        if zone is not None:
            blockers.append(Blocker(BlockerCode.IN_NO_FLY_ZONE, f"target inside no-fly zone '{zone.name}'"))
        for v in airspace.path_violations(start, target):
            if v.kind is ViolationKind.LEAVES_GEOFENCE and inside:
                blockers.append(
                    Blocker(
                        BlockerCode.PATH_LEAVES_GEOFENCE,
                        f"flight path leaves the {v.zone_name} geofence {_km(v.at_distance_m)} out",
                    )
                )
            elif v.kind is ViolationKind.ENTERS_NO_FLY and (zone is None or v.zone_name != zone.name):
                blockers.append(
                    Blocker(
                        BlockerCode.PATH_CROSSES_NO_FLY,
                        f"flight path crosses no-fly zone '{v.zone_name}' {_km(v.at_distance_m)} out",
                    )
                )
        range_m = distance_m(home, target)
        if range_m > self.limits.max_range_m:
            blockers.append(
                Blocker(
                    BlockerCode.OUT_OF_RANGE,
                    f"target {_km(range_m)} from the nest, beyond the {_km(self.limits.max_range_m)} range",
                )
            )
        return blockers

    def _battery_blockers(self, nest: NestSnapshot, estimate: EnergyEstimate, trip: str) -> list[Blocker]:
        battery = nest.battery_pct
        assert battery is not None
        reserve = self.limits.reserve_pct
        if not estimate.feasible:
            wind = self._wind(nest)
            origin = f" from {wind.from_deg:.0f}°" if wind.from_deg is not None else ""
            return [
                Blocker(
                    BlockerCode.WIND_TOO_STRONG_FOR_ROUTE,
                    f"wind {wind.speed_mps:.1f} m/s{origin} too strong to fly the"
                    f" {_km(estimate.distance_m)} {trip}"
                    f" at {self.model.cruise_airspeed_mps:.0f} m/s airspeed",
                )
            ]
        needed = estimate.needed_pct + reserve
        if battery < needed:
            return [
                Blocker(
                    BlockerCode.BATTERY_SHORT,
                    f"battery {battery:.0f} % short of the {math.ceil(needed):.0f} % the"
                    f" {_km(estimate.distance_m)}"
                    f" {trip} needs with a {reserve:.0f} % reserve",
                )
            ]
        return []

    def _in_flight_battery(
        self,
        nest: NestSnapshot,
        drone: DronePosition,
        target: GeoPoint,
        alt_m: float,
        on_station_s: float,
        trip: str,
    ) -> list[Blocker]:
        if nest.battery_pct is None:
            return [Blocker(BlockerCode.BATTERY_UNKNOWN, "battery level not known")]
        estimate = route_energy(
            [drone.position, target, nest.home],
            self._wind(nest),
            climb_m=max(0.0, alt_m - drone.alt_above_home_m),
            descent_m=alt_m,
            on_station_s=on_station_s,
            landing=True,
            model=self.model,
            drain_pct_per_min=nest.drain_pct_per_min,
        )
        return self._battery_blockers(nest, estimate, trip)

    def _separation_blockers(
        self, nest_id: int, start: GeoPoint, target: GeoPoint, radius_m: float, others: Sequence[OtherFlight]
    ) -> list[Blocker]:
        sep = self.limits.separation_m
        blockers = []
        for other in others:
            if other.nest_id == nest_id:
                continue
            their_end = other.target or other.position
            to_their_track = distance_to_segment_m(target, other.position, their_end) - radius_m
            if to_their_track < sep:
                what = "target" if radius_m == 0 else "orbit"
                blockers.append(
                    Blocker(
                        BlockerCode.SEPARATION,
                        f"{what} {max(0.0, to_their_track):.0f} m from nest {other.nest_id}'s flight"
                        f" (separation {sep:.0f} m)",
                    )
                )
                continue
            path_to_station = distance_to_segment_m(their_end, start, target)
            if path_to_station < sep:
                blockers.append(
                    Blocker(
                        BlockerCode.SEPARATION,
                        f"flight path passes {path_to_station:.0f} m from nest {other.nest_id}'s"
                        f" {'station' if other.target else 'drone'} (separation {sep:.0f} m)",
                    )
                )
        return blockers
