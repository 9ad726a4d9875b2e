"""A configured road stretch as something to fly: positions along it by distance, waypoints at a
spacing, and where along it a point lies. Pure geodesy (``dronectl.domain.geo``), no I/O.

Distances along the route (``s_m``) are geodesic lengths of its legs summed from the first point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from dronectl.domain.config import RoadStretchConfig
from dronectl.domain.geo import GeoPoint, LocalProjection, bearing_deg, distance_m, interpolate


@dataclass(frozen=True)
class Route:
    stretch_id: str
    points: tuple[GeoPoint, ...]
    length_m: float = field(init=False)
    offsets_m: tuple[float, ...] = field(init=False, repr=False)  # s_m of each point

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError(f"route {self.stretch_id!r} needs at least 2 points, has {len(self.points)}")
        offsets = [0.0]
        for a, b in itertools.pairwise(self.points):
            leg = distance_m(a, b)
            if leg == 0.0:
                raise ValueError(f"route {self.stretch_id!r} repeats the point {a}")
            offsets.append(offsets[-1] + leg)
        object.__setattr__(self, "offsets_m", tuple(offsets))
        object.__setattr__(self, "length_m", offsets[-1])

    @classmethod
    def of(cls, stretch: RoadStretchConfig) -> Route:
        return cls(stretch.id, tuple(GeoPoint(lat, lon) for lat, lon in stretch.points))

    @property
    def start(self) -> GeoPoint:
        return self.points[0]

    @property
    def end(self) -> GeoPoint:
        return self.points[-1]

    def _leg(self, s_m: float) -> int:
        """Index i of the leg points[i] -> points[i+1] holding ``s_m`` (already clamped)."""
        for i in range(len(self.points) - 2, -1, -1):
            if s_m >= self.offsets_m[i]:
                return i
        return 0

    def point_at(self, s_m: float) -> GeoPoint:
        """The point ``s_m`` metres along the route; clamped to its ends."""
        if math.isnan(s_m):
            raise ValueError("s_m is NaN")
        s = min(max(s_m, 0.0), self.length_m)
        if s == self.length_m:
            return self.end
        i = self._leg(s)
        if s == self.offsets_m[i]:
            return self.points[i]
        leg = self.offsets_m[i + 1] - self.offsets_m[i]
        return interpolate(self.points[i], self.points[i + 1], (s - self.offsets_m[i]) / leg)

    def heading_deg_at(self, s_m: float) -> float:
        """The road's direction of travel at ``s_m`` (degrees from true north), for the camera."""
        s = min(max(s_m, 0.0), self.length_m)
        i = self._leg(s)
        here = self.point_at(s)
        ahead = self.points[i + 1]
        return bearing_deg(here if here != ahead else self.points[i], ahead)

    def waypoints(self, spacing_m: float) -> tuple[GeoPoint, ...]:
        """Points no more than ``spacing_m`` apart from start to end, every corner included (so
        the drone follows the road round a bend instead of cutting across the block)."""
        if not spacing_m > 0.0:
            raise ValueError(f"spacing_m must be positive, not {spacing_m}")
        out: list[GeoPoint] = [self.points[0]]
        for i in range(len(self.points) - 1):
            a, b = self.points[i], self.points[i + 1]
            leg = self.offsets_m[i + 1] - self.offsets_m[i]
            steps = max(1, math.ceil(leg / spacing_m - 1e-9))
            out += [interpolate(a, b, k / steps) for k in range(1, steps)]
            out.append(b)
        return tuple(out)

    def nearest(self, p: GeoPoint) -> tuple[float, float]:
        """(s_m, distance_m): where along the route the point nearest ``p`` is, and how far off."""
        best = (0.0, math.inf)
        for i in range(len(self.points) - 1):
            a, b = self.points[i], self.points[i + 1]
            proj = LocalProjection(interpolate(a, b, 0.5))
            (ax, ay), (bx, by), (px, py) = proj.to_xy(a), proj.to_xy(b), proj.to_xy(p)
            dx, dy = bx - ax, by - ay
            t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
            off = math.hypot(px - (ax + t * dx), py - (ay + t * dy))
            if off < best[1]:
                leg = self.offsets_m[i + 1] - self.offsets_m[i]
                best = (self.offsets_m[i] + t * leg, off)
        return best

    def nearest_s(self, p: GeoPoint) -> float:
        """How far along the route the point nearest ``p`` is."""
        return self.nearest(p)[0]

    def reversed(self) -> Route:
        """The same road flown the other way."""
        return Route(self.stretch_id, tuple(reversed(self.points)))


def routes_of(stretches: Sequence[RoadStretchConfig]) -> dict[str, Route]:
    """Every configured stretch as a route, by stretch id."""
    return {s.id: Route.of(s) for s in stretches}
