"""Geofence evaluation as PX4's navigator does it (``src/modules/navigator/geofence.cpp``).

A FENCE plan is a sequence of items: polygon vertices (MAV_CMD_NAV_FENCE_POLYGON_VERTEX_
INCLUSION / _EXCLUSION, param1 = the polygon's vertex count, consecutive items), circles
(MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION / _EXCLUSION, param1 = radius in metres) and a return point
(MAV_CMD_NAV_FENCE_RETURN_POINT, not a boundary). PX4 walks the plan by the vertex count of each
polygon's first vertex, and:

* a position is inside the fence only when it passes *every* shape: inside each inclusion and
  outside each exclusion (PX4 main combines all shapes with AND);
* a shape that does not hold the home position is discarded when the fence loads
  ("Geofence invalid, doesn't contain Home position"), so it never triggers a breach;
* polygons use PNPOLY on raw latitude/longitude, circles the great-circle distance (PX4's
  azimuthal projection, R = 6 371 000 m), strictly inside the radius;
* fence item altitudes are ignored; GF_MAX_HOR_DIST / GF_MAX_VER_DIST (0 = off) bound the
  distance from home and the height above home.

Everything here is pure arithmetic on the items: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.mission import FENCE_CIRCLE_COMMANDS, FENCE_POLYGON_COMMANDS, MissionItem, vertex_count
from sitl.environment import GeoPoint

EARTH_RADIUS_M = 6_371_000.0  # PX4 CONSTANTS_RADIUS_OF_EARTH

_INCLUSION = frozenset(
    {mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION}
)


@dataclass(frozen=True)
class FenceShape:
    """One polygon or circle of a fence plan; ``number`` counts shapes of the same kind from 1."""

    kind: str  # "polygon" | "circle"
    inclusion: bool
    number: int
    first_seq: int
    vertices: tuple[tuple[float, float], ...] = ()  # (lat_deg, lon_deg); polygons
    complete: bool = True  # False: the plan ends before the polygon's declared vertex count
    center: tuple[float, float] = (0.0, 0.0)  # circles
    radius_m: float = 0.0

    @property
    def name(self) -> str:
        return f"{'inclusion' if self.inclusion else 'exclusion'} {self.kind} {self.number}"

    def contains(self, lat_deg: float, lon_deg: float) -> bool:
        if self.kind == "circle":
            return distance_m(self.center[0], self.center[1], lat_deg, lon_deg) < self.radius_m
        if not self.complete:
            return False  # PX4's vertex read fails and PNPOLY stops with "outside"
        return _pnpoly(self.vertices, lat_deg, lon_deg)

    def passes(self, lat_deg: float, lon_deg: float) -> bool:
        """True when the position satisfies this shape (inside an inclusion, outside an exclusion)."""
        return self.contains(lat_deg, lon_deg) == self.inclusion


def fence_shapes(items: Sequence[MissionItem]) -> tuple[FenceShape, ...]:
    """The shapes of a fence plan, walked as PX4's Geofence::_updateFence() walks it."""
    shapes: list[FenceShape] = []
    numbers: dict[tuple[str, bool], int] = {}

    def number(kind: str, inclusion: bool) -> int:
        numbers[(kind, inclusion)] = numbers.get((kind, inclusion), 0) + 1
        return numbers[(kind, inclusion)]

    seq = 0
    while seq < len(items):
        item = items[seq]
        inclusion = item.command in _INCLUSION
        if item.command in FENCE_CIRCLE_COMMANDS:
            shapes.append(
                FenceShape(
                    kind="circle",
                    inclusion=inclusion,
                    number=number("circle", inclusion),
                    first_seq=seq,
                    center=(item.lat_deg, item.lon_deg),
                    radius_m=item.param1,
                )
            )
            seq += 1
        elif item.command in FENCE_POLYGON_COMMANDS:
            count = vertex_count(item)
            if count == 0:
                seq += 1  # PX4: "Polygon with 0 vertices. Skipping"
                continue
            run = items[seq : seq + count]
            shapes.append(
                FenceShape(
                    kind="polygon",
                    inclusion=inclusion,
                    number=number("polygon", inclusion),
                    first_seq=seq,
                    vertices=tuple((v.lat_deg, v.lon_deg) for v in run),
                    complete=len(run) == count,
                )
            )
            seq += count
        else:
            seq += 1  # return point or an unhandled command
    return tuple(shapes)


def shapes_excluding_home(items: Sequence[MissionItem], home: GeoPoint) -> tuple[FenceShape, ...]:
    """Shapes PX4 discards on load because home fails them (it then sends, once per shape,
    STATUSTEXT "Geofence invalid, doesn't contain Home position", severity critical)."""
    return tuple(s for s in fence_shapes(items) if not s.passes(home.lat_deg, home.lon_deg))


def fence_violation(
    items: Sequence[MissionItem],
    lat_deg: float,
    lon_deg: float,
    alt_amsl_m: float,
    home: GeoPoint,
    *,
    max_hor_dist_m: float = 0.0,
    max_ver_dist_m: float = 0.0,
) -> str | None:
    """Why the position breaches the fence ("outside inclusion polygon 1"), or None inside it."""
    if max_hor_dist_m > 0:
        dist = distance_m(home.lat_deg, home.lon_deg, lat_deg, lon_deg)
        if dist >= max_hor_dist_m:
            return f"{dist:.0f} m from home, beyond the maximum of {max_hor_dist_m:.0f} m"
    if max_ver_dist_m > 0:
        height = alt_amsl_m - home.alt_amsl_m
        if height >= max_ver_dist_m:
            return f"{height:.0f} m above home, above the maximum of {max_ver_dist_m:.0f} m"
    for shape in fence_shapes(items):
        if not shape.passes(home.lat_deg, home.lon_deg):
            continue  # discarded on load
        if not shape.passes(lat_deg, lon_deg):
            return f"{'outside' if shape.inclusion else 'inside'} {shape.name}"
    return None


def distance_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance as PX4's MapProjection measures it from a reference point."""
    lat1, lat2 = math.radians(lat1_deg), math.radians(lat2_deg)
    d_lon = math.radians(lon2_deg - lon1_deg)
    arg = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(d_lon)
    return math.acos(max(-1.0, min(1.0, arg))) * EARTH_RADIUS_M


def _pnpoly(vertices: Sequence[tuple[float, float]], lat: float, lon: float) -> bool:
    """PX4's PNPOLY on (lat, lon): crossings of the meridian through the point."""
    inside = False
    j = len(vertices) - 1
    for i in range(len(vertices)):
        lat_i, lon_i = vertices[i]
        lat_j, lon_j = vertices[j]
        if (lon_i >= lon) != (lon_j >= lon):
            crossing_lat = (lat_j - lat_i) * (lon - lon_i) / (lon_j - lon_i) + lat_i
            if lat <= crossing_lat:
                inside = not inside
        j = i
    return inside
