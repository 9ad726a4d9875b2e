"""Geodesy and airspace for the controller: pure functions, no I/O.

Distances and bearings are WGS84 geodesics (geographiclib, accurate to nanometres). Polygon
work (geofence, no-fly zones, flight paths) uses shapely in a local *azimuthal equidistant*
projection: a point is placed at its exact geodesic distance and azimuth from a centre point.

Why an exact intersection in a projection rather than sampling points along the path: the
smallest zone in the Changchun config (the provincial government compound) is ~400 m wide, and
a sampled path misses any corner it cuts between two samples, however fine the step. In the
projection a flight path is a straight segment and shapely intersects it exactly. The cost is the
projection's error: within 25 km of the centre a geodesic deviates from the straight segment by a
few centimetres and lengths are right to better than 1e-5, far below GPS error and zone margins.
Polygon edges are taken as straight lines in the same projection (the config gives vertices only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from geographiclib.geodesic import Geodesic
from shapely.geometry import LineString, Point
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry.base import BaseGeometry

_WGS84 = Geodesic.WGS84


@dataclass(frozen=True)
class GeoPoint:
    """A horizontal WGS84 position. Altitude is kept apart because its reference (AMSL, above
    the nest's pad) differs from one use to the next; the field that holds it says which."""

    lat_deg: float
    lon_deg: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat_deg <= 90.0) or math.isnan(self.lat_deg):
            raise ValueError(f"latitude {self.lat_deg} outside -90..90")
        if not (-180.0 <= self.lon_deg <= 180.0) or math.isnan(self.lon_deg):
            raise ValueError(f"longitude {self.lon_deg} outside -180..180")

    def __str__(self) -> str:
        return f"{self.lat_deg:.6f},{self.lon_deg:.6f}"


def distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """Geodesic distance on the WGS84 ellipsoid."""
    return float(_WGS84.Inverse(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg, Geodesic.DISTANCE)["s12"])


_A_M, _E2 = Geodesic.WGS84.a, Geodesic.WGS84.f * (2.0 - Geodesic.WGS84.f)


def short_distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """The distance between two close points (successive samples of a flight, metres apart) on
    the ellipsoid's tangent plane at their mean latitude: its meridional and prime-vertical radii
    of curvature. Within 1e-6 of the geodesic below 1 km (tests/core/test_geo.py) and some twenty
    times cheaper than ``distance_m``, which stays the measure of anything farther."""
    lat = math.radians((a.lat_deg + b.lat_deg) / 2.0)
    w2 = 1.0 - _E2 * math.sin(lat) ** 2
    prime_vertical = _A_M / math.sqrt(w2)
    meridional = prime_vertical * (1.0 - _E2) / w2
    d_lon = (b.lon_deg - a.lon_deg + 180.0) % 360.0 - 180.0
    east = math.radians(d_lon) * prime_vertical * math.cos(lat)
    north = math.radians(b.lat_deg - a.lat_deg) * meridional
    return math.hypot(east, north)


def bearing_deg(a: GeoPoint, b: GeoPoint) -> float:
    """Initial bearing from ``a`` to ``b``, degrees clockwise from true north in [0, 360)."""
    azi = _WGS84.Inverse(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg, Geodesic.AZIMUTH)["azi1"]
    return float(azi) % 360.0


def destination(start: GeoPoint, bearing: float, distance: float) -> GeoPoint:
    """The point ``distance`` metres from ``start`` along the initial bearing ``bearing`` degrees."""
    r = _WGS84.Direct(start.lat_deg, start.lon_deg, bearing, distance)
    return GeoPoint(float(r["lat2"]), _wrap_lon(float(r["lon2"])))


def interpolate(a: GeoPoint, b: GeoPoint, fraction: float) -> GeoPoint:
    """The point ``fraction`` (0 = a, 1 = b) of the way along the geodesic from ``a`` to ``b``."""
    line = _WGS84.InverseLine(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg)
    r = line.Position(line.s13 * fraction)
    return GeoPoint(float(r["lat2"]), _wrap_lon(float(r["lon2"])))


def _wrap_lon(lon: float) -> float:
    wrapped = (lon + 180.0) % 360.0 - 180.0
    return 180.0 if wrapped == -180.0 and lon > 0 else wrapped


class LocalProjection:
    """Azimuthal equidistant projection around ``centre``: (east_m, north_m) of a point are its
    geodesic distance from the centre along its azimuth. Exact for distances from the centre."""

    def __init__(self, centre: GeoPoint) -> None:
        self.centre = centre

    def to_xy(self, point: GeoPoint) -> tuple[float, float]:
        r = _WGS84.Inverse(
            self.centre.lat_deg,
            self.centre.lon_deg,
            point.lat_deg,
            point.lon_deg,
            Geodesic.DISTANCE | Geodesic.AZIMUTH,
        )
        azi = math.radians(float(r["azi1"]))
        s = float(r["s12"])
        return s * math.sin(azi), s * math.cos(azi)

    def to_geo(self, east_m: float, north_m: float) -> GeoPoint:
        return destination(
            self.centre, math.degrees(math.atan2(east_m, north_m)), math.hypot(east_m, north_m)
        )


def _segment_distance_xy(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0.0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))


def distance_to_segment_m(point: GeoPoint, start: GeoPoint, end: GeoPoint) -> float:
    """Shortest distance from ``point`` to the flight path ``start`` -> ``end`` (track separation).

    Projected around the path's midpoint, where the path is a straight segment (see module doc).
    """
    proj = LocalProjection(interpolate(start, end, 0.5))
    return _segment_distance_xy(proj.to_xy(point), proj.to_xy(start), proj.to_xy(end))


def segment_distance_m(a_start: GeoPoint, a_end: GeoPoint, b_start: GeoPoint, b_end: GeoPoint) -> float:
    """Shortest distance between two flight paths (0 when they cross)."""
    proj = LocalProjection(interpolate(a_start, b_end, 0.5))
    a = LineString([proj.to_xy(a_start), proj.to_xy(a_end)])
    b = LineString([proj.to_xy(b_start), proj.to_xy(b_end)])
    return float(a.distance(b))


# --- airspace ---------------------------------------------------------------------------------


class ViolationKind(Enum):
    LEAVES_GEOFENCE = "leaves_geofence"
    ENTERS_NO_FLY = "enters_no_fly"


@dataclass(frozen=True)
class Zone:
    """A named polygon of [lat, lon] vertices (closed implicitly)."""

    name: str
    vertices: tuple[GeoPoint, ...]


@dataclass(frozen=True)
class PathViolation:
    """Where a straight flight path breaks the airspace rules."""

    kind: ViolationKind
    zone_name: str
    at_distance_m: float  # along the path from its start, where the violation begins


class Airspace:
    """The operating area (geofence) and its no-fly zones, ready for fast point and path tests."""

    def __init__(self, geofence: Zone, no_fly_zones: Sequence[Zone] = ()) -> None:
        self.geofence = geofence
        self.no_fly_zones = tuple(no_fly_zones)
        lats = [v.lat_deg for v in geofence.vertices]
        lons = [v.lon_deg for v in geofence.vertices]
        self.projection = LocalProjection(GeoPoint((min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2))
        self._fence = self._polygon(geofence)
        self._zones = [(zone, self._polygon(zone)) for zone in self.no_fly_zones]

    @classmethod
    def from_polygons(
        cls,
        geofence: tuple[str, Iterable[tuple[float, float]]],
        no_fly_zones: Iterable[tuple[str, Iterable[tuple[float, float]]]],
    ) -> Airspace:
        """From (name, [(lat, lon), ...]) pairs, as the city config gives them
        (``CityConfig.airspace()``)."""

        def zone(name: str, vertices: Iterable[tuple[float, float]]) -> Zone:
            return Zone(name, tuple(GeoPoint(lat, lon) for lat, lon in vertices))

        return cls(zone(*geofence), [zone(name, vertices) for name, vertices in no_fly_zones])

    def _polygon(self, zone: Zone) -> ShapelyPolygon:
        poly = ShapelyPolygon([self.projection.to_xy(v) for v in zone.vertices])
        if not poly.is_valid:
            raise ValueError(f"zone {zone.name!r} is not a simple polygon (edges cross)")
        return poly

    def _xy(self, point: GeoPoint) -> Point:
        return Point(self.projection.to_xy(point))

    def contains(self, point: GeoPoint) -> bool:
        """Inside the geofence (its border counts as inside)."""
        return bool(self._fence.covers(self._xy(point)))

    def zone_at(self, point: GeoPoint) -> Zone | None:
        """The first no-fly zone holding ``point`` (border included), or None."""
        p = self._xy(point)
        for zone, poly in self._zones:
            if poly.covers(p):
                return zone
        return None

    def path_violations(self, start: GeoPoint, end: GeoPoint) -> tuple[PathViolation, ...]:
        """Every zone a straight flight from ``start`` to ``end`` enters, and whether it leaves the
        geofence, in the order met along the path. Endpoint problems are included (a path ending
        in a zone enters it)."""
        a, b = self.projection.to_xy(start), self.projection.to_xy(end)
        line = LineString([a, b]) if a != b else Point(a)
        found: list[PathViolation] = []
        outside = line.difference(self._fence)
        if not outside.is_empty:
            found.append(
                PathViolation(ViolationKind.LEAVES_GEOFENCE, self.geofence.name, _first_along(a, outside))
            )
        for zone, poly in self._zones:
            hit = line.intersection(poly)
            if not hit.is_empty:
                found.append(PathViolation(ViolationKind.ENTERS_NO_FLY, zone.name, _first_along(a, hit)))
        return tuple(sorted(found, key=lambda v: v.at_distance_m))

    def path_violation(self, start: GeoPoint, end: GeoPoint) -> PathViolation | None:
        """The first violation along the path, or None when the path is clear."""
        found = self.path_violations(start, end)
        return found[0] if found else None

    def circle_violations(self, centre: GeoPoint, radius_m: float) -> tuple[PathViolation, ...]:
        """For an orbit: the geofence if the circle leaves it, and each no-fly zone it touches
        (``at_distance_m`` is the zone's distance from the centre)."""
        c = self._xy(centre)
        disc = c.buffer(radius_m, quad_segs=32)
        found: list[PathViolation] = []
        if not self._fence.covers(disc):
            found.append(PathViolation(ViolationKind.LEAVES_GEOFENCE, self.geofence.name, 0.0))
        for zone, poly in self._zones:
            if poly.intersects(disc):
                found.append(PathViolation(ViolationKind.ENTERS_NO_FLY, zone.name, float(poly.distance(c))))
        return tuple(found)


def _first_along(origin: tuple[float, float], geometry: BaseGeometry) -> float:
    """Distance from ``origin`` to the nearest point of ``geometry`` (a part of a straight path
    starting at ``origin``, so this is how far along the path it begins)."""
    return float(Point(origin).distance(geometry))
