"""The synthetic city under the cameras: a road grid, building lots and traffic, all pure functions.

Everything is a deterministic function of latitude, longitude and simulated time, with no
origin of its own, so two drones (of any nests) looking at the same spot see the same roads,
buildings and cars at the same moment.

- Roads: north-south roads at every multiple of ``BLOCK_LON_DEG`` of longitude, east-west roads
  at every multiple of ``BLOCK_LAT_DEG`` of latitude (blocks of about 120 m); every fourth road is
  a six-lane avenue, the others are two-lane streets.
- Lots: each block is cut into a few lots, each a building (roof colour and size from a hash of
  its indices) or a small park.
- Traffic: each lane carries cars that enter it at hashed intervals and move at the lane's
  speed; inside a ``SlowTraffic`` zone they slow down (and bunch up, as in a jam). A car's
  position is found by inverting the lane's travel-time function, so nothing is stepped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sitl.camera.scene import SlowTraffic

M_PER_DEG_LAT = 111_132.0
BLOCK_LAT_DEG = 0.0011  # ~122 m
BLOCK_LON_DEG = 0.0015  # ~120 m at 44 deg north
AVENUE_EVERY = 4
AVENUE_WIDTH_M = 24.0
STREET_WIDTH_M = 11.0
AVENUE_LANES = 3  # per direction
STREET_LANES = 1
CAR_LENGTH_M = 4.6
CAR_WIDTH_M = 1.9

_MASK64 = (1 << 64) - 1


def m_per_deg_lon(lat_deg: float) -> float:
    return 111_320.0 * math.cos(math.radians(lat_deg))


def mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 finalizer): stable across runs and processes."""
    h = 0x9E3779B97F4A7C15
    for value in values:
        h = (h ^ ((value & _MASK64) + 0x9E3779B97F4A7C15 + ((h << 6) & _MASK64) + (h >> 2))) & _MASK64
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & _MASK64
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h


def unit(*values: int) -> float:
    """A hash of integers as a float in [0, 1)."""
    return mix(*values) / 2.0**64


def is_avenue(index: int) -> bool:
    return index % AVENUE_EVERY == 0


def road_width_m(index: int) -> float:
    return AVENUE_WIDTH_M if is_avenue(index) else STREET_WIDTH_M


# roads --------------------------------------------------------------------------------------------
NORTH_SOUTH = 0  # a road along a meridian (at a fixed longitude)
EAST_WEST = 1


@dataclass(frozen=True)
class Road:
    axis: int  # NORTH_SOUTH or EAST_WEST
    index: int

    @property
    def lat_deg(self) -> float:  # for an east-west road
        return self.index * BLOCK_LAT_DEG

    @property
    def lon_deg(self) -> float:  # for a north-south road
        return self.index * BLOCK_LON_DEG

    @property
    def width_m(self) -> float:
        return road_width_m(self.index)

    @property
    def lanes_per_direction(self) -> int:
        return AVENUE_LANES if is_avenue(self.index) else STREET_LANES

    def s_per_deg(self) -> float:
        """Metres of the road's own coordinate ``s`` per degree along it."""
        return M_PER_DEG_LAT if self.axis == NORTH_SOUTH else m_per_deg_lon(self.lat_deg)

    def s_of(self, lat_deg: float, lon_deg: float) -> float:
        """Position along the road of the point nearest (lat, lon), in metres."""
        return (lat_deg if self.axis == NORTH_SOUTH else lon_deg) * self.s_per_deg()

    def point(self, s_m: float, offset_m: float) -> tuple[float, float]:
        """(lat, lon) at ``s_m`` along the road, ``offset_m`` to its east (N-S) or north (E-W)."""
        if self.axis == NORTH_SOUTH:
            return s_m / M_PER_DEG_LAT, self.lon_deg + offset_m / m_per_deg_lon(s_m / M_PER_DEG_LAT)
        return self.lat_deg + offset_m / M_PER_DEG_LAT, s_m / self.s_per_deg()


def roads_near(lat_deg: float, lon_deg: float, radius_m: float) -> list[Road]:
    """Every road whose carriageway comes within ``radius_m`` of the point."""
    pad = radius_m + AVENUE_WIDTH_M
    dlat = pad / M_PER_DEG_LAT
    dlon = pad / m_per_deg_lon(lat_deg)
    roads = [
        Road(NORTH_SOUTH, i)
        for i in range(
            math.floor((lon_deg - dlon) / BLOCK_LON_DEG), math.ceil((lon_deg + dlon) / BLOCK_LON_DEG) + 1
        )
    ]
    roads += [
        Road(EAST_WEST, j)
        for j in range(
            math.floor((lat_deg - dlat) / BLOCK_LAT_DEG), math.ceil((lat_deg + dlat) / BLOCK_LAT_DEG) + 1
        )
    ]
    return roads


# lots ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lot:
    """A building footprint or a park, as a lat/lon rectangle."""

    south_deg: float
    west_deg: float
    north_deg: float
    east_deg: float
    kind: int  # 0 park, 1..N a building whose roof style is ``kind``
    seed: int


ROOF_STYLES = 6


@lru_cache(maxsize=4096)
def lots_of_block(i: int, j: int) -> tuple[Lot, ...]:
    """The lots of the block east of N-S road ``i`` and north of E-W road ``j``."""
    south = j * BLOCK_LAT_DEG + road_width_m(j) / 2 / M_PER_DEG_LAT
    north = (j + 1) * BLOCK_LAT_DEG - road_width_m(j + 1) / 2 / M_PER_DEG_LAT
    m_lon = m_per_deg_lon(south)
    west = i * BLOCK_LON_DEG + road_width_m(i) / 2 / m_lon
    east = (i + 1) * BLOCK_LON_DEG - road_width_m(i + 1) / 2 / m_lon
    cols = 2 + mix(i, j, 1) % 2
    rows = 2 + mix(i, j, 2) % 2
    out: list[Lot] = []
    sidewalk_lat = 4.0 / M_PER_DEG_LAT
    sidewalk_lon = 4.0 / m_lon
    for c in range(cols):
        for r in range(rows):
            seed = mix(i, j, c, r)
            w0 = west + (east - west) * c / cols
            w1 = west + (east - west) * (c + 1) / cols
            s0 = south + (north - south) * r / rows
            s1 = south + (north - south) * (r + 1) / rows
            inset_lon = sidewalk_lon * (0.6 + unit(seed, 3))
            inset_lat = sidewalk_lat * (0.6 + unit(seed, 4))
            kind = 0 if unit(seed, 5) < 0.12 else 1 + mix(seed, 6) % ROOF_STYLES
            out.append(Lot(s0 + inset_lat, w0 + inset_lon, s1 - inset_lat, w1 - inset_lon, kind, seed))
    return tuple(out)


def blocks_near(lat_deg: float, lon_deg: float, radius_m: float) -> Iterator[tuple[int, int]]:
    dlat = radius_m / M_PER_DEG_LAT
    dlon = radius_m / m_per_deg_lon(lat_deg)
    for i in range(
        math.floor((lon_deg - dlon) / BLOCK_LON_DEG), math.floor((lon_deg + dlon) / BLOCK_LON_DEG) + 1
    ):
        for j in range(
            math.floor((lat_deg - dlat) / BLOCK_LAT_DEG), math.floor((lat_deg + dlat) / BLOCK_LAT_DEG) + 1
        ):
            yield i, j


# traffic ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lane:
    road: Road
    direction: int  # +1: s grows (north or east), -1: s shrinks
    number: int  # 0 nearest the centre line

    @property
    def offset_m(self) -> float:
        """Lateral offset of the lane's centre from the road's centre line (right-hand traffic)."""
        lane_w = (self.road.width_m / 2 - 1.0) / self.road.lanes_per_direction
        side = (lane_w * (self.number + 0.5)) + 0.5
        # Driving north on a N-S road, the right side is east (+); driving east on E-W, it is south (-).
        sign = 1.0 if self.road.axis == NORTH_SOUTH else -1.0
        return side * sign * self.direction

    @property
    def key(self) -> tuple[int, int, int, int]:
        return self.road.axis, self.road.index, self.direction, self.number

    @property
    def speed_mps(self) -> float:
        base = 13.0 if is_avenue(self.road.index) else 8.0
        return base * (0.8 + 0.4 * unit(*self.key, 11))

    @property
    def headway_s(self) -> float:
        base = 2.5 if is_avenue(self.road.index) else 7.0
        return base * (0.7 + 0.6 * unit(*self.key, 12))


def lanes_of(road: Road) -> list[Lane]:
    return [Lane(road, d, n) for d in (1, -1) for n in range(road.lanes_per_direction)]


@dataclass(frozen=True)
class Car:
    lat_deg: float
    lon_deg: float
    heading_deg: float
    color: int  # palette index
    seed: int = 0  # the car's own hash: what a renderer varies per car (a skid's yaw on ice)


def _slow_intervals(lane: Lane, zones: Sequence[SlowTraffic]) -> list[tuple[float, float, float]]:
    """(u0, u1, factor) stretches of the lane (u = direction * s) inside slow zones, sorted."""
    road = lane.road
    out: list[tuple[float, float, float]] = []
    for zone in zones:
        if road.axis == NORTH_SOUTH:
            lateral = (zone.lon_deg - road.lon_deg) * m_per_deg_lon(zone.lat_deg)
        else:
            lateral = (zone.lat_deg - road.lat_deg) * M_PER_DEG_LAT
        if abs(lateral) >= zone.radius_m:
            continue
        half = math.sqrt(zone.radius_m**2 - lateral**2)
        center = road.s_of(zone.lat_deg, zone.lon_deg)
        a, b = sorted((lane.direction * (center - half), lane.direction * (center + half)))
        out.append((a, b, zone.speed_factor))
    out.sort()
    # Overlapping zones: keep the slower factor on the overlap by splitting into disjoint pieces.
    merged: list[tuple[float, float, float]] = []
    for a, b, f in out:
        if merged and a < merged[-1][1]:
            pa, pb, pf = merged.pop()
            merged.append((pa, a, pf))
            merged.append((a, min(pb, b), min(pf, f)))
            if b > pb:
                merged.append((pb, b, f))
            elif pb > b:
                merged.append((b, pb, pf))
        else:
            merged.append((a, b, f))
    return [(a, b, f) for a, b, f in merged if b > a]


class _TravelTime:
    """tau(u): seconds a car needs from u = 0 to u along a lane, and its inverse."""

    def __init__(self, speed_mps: float, slow: list[tuple[float, float, float]]) -> None:
        self.v = speed_mps
        self.slow = slow

    def tau(self, u: float) -> float:
        t = u / self.v
        for a, b, f in self.slow:
            if u <= a:
                break
            t += (min(u, b) - a) * (1.0 / (self.v * f) - 1.0 / self.v)
        return t

    def position(self, tau: float) -> float:
        u_prev, t_prev = -math.inf, -math.inf
        for a, b, f in self.slow:
            t_a = self.tau(a)
            if tau < t_a:
                break
            t_b = self.tau(b)
            if tau <= t_b:
                return a + (tau - t_a) * self.v * f
            u_prev, t_prev = b, t_b
        if u_prev == -math.inf:
            return tau * self.v  # before every slow stretch: tau is linear from 0
        return u_prev + (tau - t_prev) * self.v


def cars_on(lane: Lane, s_min: float, s_max: float, time_s: float, zones: Sequence[SlowTraffic]) -> list[Car]:
    """The cars of ``lane`` between ``s_min`` and ``s_max`` (metres along the road) at ``time_s``."""
    d = lane.direction
    u_lo, u_hi = sorted((d * s_min, d * s_max))
    travel = _TravelTime(lane.speed_mps, _slow_intervals(lane, zones))
    # Car k enters at u = 0 at time k*h + jitter_k (jitter < 0.5 h) and is at u where tau(u) = t - enter.
    h = lane.headway_s
    k_first = math.floor((time_s - travel.tau(u_hi)) / h) - 1
    k_last = math.ceil((time_s - travel.tau(u_lo)) / h)
    if k_last - k_first > 2000:
        return []  # a view far too large for individual cars
    cars: list[Car] = []
    road = lane.road
    heading = (0.0 if d > 0 else 180.0) if road.axis == NORTH_SOUTH else (90.0 if d > 0 else 270.0)
    lane_seed = mix(*lane.key)
    for k in range(k_first, k_last + 1):
        seed = mix(lane_seed, k)
        if seed % 7 == 0:
            continue  # a gap in the traffic
        enter_s = k * h + 0.5 * h * ((seed >> 8) & 0xFFFF) / 65536.0
        u = travel.position(time_s - enter_s)
        if not u_lo <= u <= u_hi:
            continue
        lat, lon = road.point(d * u, lane.offset_m)
        cars.append(Car(lat, lon, heading, (seed >> 40) % 8, seed))
    return cars
