"""The coverage map: the expected time to scene over the whole city, for the configured nests.

For every cell of a grid over the geofence, the time the soonest nest needs to put a drone over
it, with the same model the dispatcher uses (``dronectl.domain.dispatch.estimate``: readiness from a
closed, charged dock, then the leg at cruise airspeed with the wind) and the same reasons to pass
a nest over (the target outside the geofence or in a no-fly zone, the straight path crossing
one, beyond the nest's range, a full battery short of the round trip plus the reserve). Cells
nobody can reach stay empty. The grid is computed with numpy in a local projection around the
geofence's centre (metres per degree at its latitude; within 0.2 % over the city's 30 km).

    python -m dronectl.domain.dispatch.coverage --out docs/img/coverage.png [--json FILE]
        [--config FILE] [--cell-m 100] [--wind-mps 0 --wind-from-deg 270]

writes the PNG heat map and a JSON grid (for the web page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dronectl.domain.config import CityConfig
from dronectl.domain.dispatch.estimate import cruise_model, readiness_s
from dronectl.domain.dispatch_settings import DEFAULT_SETTINGS, DispatchSettings
from dronectl.domain.energy import CALM, EnergyModel, Wind
from dronectl.domain.safety import SafetyLimits, SafetyPolicy

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Frame:
    """Local east/north metres around (lat0, lon0)."""

    lat0: float
    lon0: float

    @property
    def m_per_deg_lat(self) -> float:
        phi = math.radians(self.lat0)
        return 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)

    @property
    def m_per_deg_lon(self) -> float:
        phi = math.radians(self.lat0)
        return 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)

    def xy(self, lat: Any, lon: Any) -> tuple[Any, Any]:
        return (np.asarray(lon) - self.lon0) * self.m_per_deg_lon, (
            np.asarray(lat) - self.lat0
        ) * self.m_per_deg_lat


@dataclass(frozen=True)
class CoverageGrid:
    config: CityConfig
    wind: Wind
    cell_m: float
    lats: Array  # row centres, north to south
    lons: Array  # column centres, west to east
    time_s: Array  # rows x cols; NaN where no nest can go (or outside the geofence)
    nest: npt.NDArray[np.int64]  # the soonest nest per cell; 0 where none
    inside: npt.NDArray[np.bool_]  # inside the geofence and outside every no-fly zone

    def time_at(self, lat: float, lon: float) -> float:
        row = int(np.argmin(np.abs(self.lats - lat)))
        col = int(np.argmin(np.abs(self.lons - lon)))
        return float(self.time_s[row, col])

    def stats(self, target_s: float) -> dict[str, float]:
        area = int(self.inside.sum())
        reached = np.isfinite(self.time_s) & self.inside
        times = self.time_s[reached]
        return {
            "area_km2": round(area * self.cell_m**2 / 1e6, 1),
            "reached_pct": round(100.0 * reached.sum() / area, 1) if area else 0.0,
            "within_target_pct": round(100.0 * (times <= target_s).sum() / area, 1) if area else 0.0,
            "median_s": round(float(np.median(times)), 1) if times.size else math.nan,
            "p95_s": round(float(np.percentile(times, 95)), 1) if times.size else math.nan,
            "max_s": round(float(times.max()), 1) if times.size else math.nan,
        }


def _inside_polygon(x: Array, y: Array, px: Array, py: Array) -> npt.NDArray[np.bool_]:
    """Even-odd rule, vectorised over the points."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(px)
    for i in range(n):
        x1, y1, x2, y2 = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at_x)
    return inside


def _segments_cross(
    ax: float, ay: float, bx: Array, by: Array, cx: float, cy: float, dx: float, dy: float
) -> npt.NDArray[np.bool_]:
    """Does the segment A->B (A fixed, B per cell) intersect the segment C->D?"""

    def orient(px: Any, py: Any, qx: Any, qy: Any, rx: Any, ry: Any) -> Any:
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    o1 = orient(ax, ay, bx, by, cx, cy)
    o2 = orient(ax, ay, bx, by, dx, dy)
    o3 = orient(cx, cy, dx, dy, ax, ay)
    o4 = orient(cx, cy, dx, dy, bx, by)
    return ((o1 > 0) != (o2 > 0)) & ((o3 > 0) != (o4 > 0))


def _ground_speed(track_rad: Array, wind: Wind, airspeed: float) -> Array:
    """``dronectl.domain.energy.ground_speed_mps``, vectorised (wind direction known)."""
    if wind.speed_mps <= 0.0:
        return np.full(track_rad.shape, airspeed)
    to_rad = math.radians((wind.from_deg or 0.0) + 180.0) - track_rad
    along = wind.speed_mps * np.cos(to_rad)
    cross = wind.speed_mps * np.sin(to_rad)
    gs = along + np.sqrt(np.maximum(airspeed**2 - cross**2, 0.0))
    return np.where(np.abs(cross) >= airspeed, 0.0, np.maximum(gs, 0.0))


def _leg_times(bearing: Array, dist: Array, wind: Wind, model: EnergyModel) -> Array:
    """Seconds to fly ``dist`` along ``bearing`` (radians); inf where the wind forbids it. An unknown
    wind direction is taken at its worst for the leg, as the energy model does."""
    if wind.from_deg is None and wind.speed_mps > 0.0:
        worst = np.zeros(dist.shape)
        for d in range(0, 360, 5):
            worst = np.maximum(worst, _leg_times(bearing, dist, Wind(wind.speed_mps, float(d)), model))
        return worst
    gs = _ground_speed(bearing, wind, model.cruise_airspeed_mps)
    with np.errstate(divide="ignore"):
        return np.where(gs < model.min_ground_speed_mps, np.inf, dist / np.maximum(gs, 1e-9))


def coverage_grid(
    config: CityConfig,
    *,
    settings: DispatchSettings = DEFAULT_SETTINGS,
    wind: Wind = CALM,
    cell_m: float = 100.0,
    battery_pct: float = 100.0,
) -> CoverageGrid:
    policy = SafetyPolicy.from_config(config)
    limits: SafetyLimits = policy.limits
    model = policy.model
    flying = cruise_model(model, settings)
    fence = np.array(config.geofence.polygon, dtype=float)
    south, north = float(fence[:, 0].min()), float(fence[:, 0].max())
    west, east = float(fence[:, 1].min()), float(fence[:, 1].max())
    frame = Frame((south + north) / 2, (west + east) / 2)
    rows = max(2, round((north - south) * frame.m_per_deg_lat / cell_m))
    cols = max(2, round((east - west) * frame.m_per_deg_lon / cell_m))
    lats = north - (np.arange(rows) + 0.5) * (north - south) / rows
    lons = west + (np.arange(cols) + 0.5) * (east - west) / cols
    lat_grid, lon_grid = np.meshgrid(lats, lons, indexing="ij")
    x, y = frame.xy(lat_grid, lon_grid)

    zones = [(z.name, np.array(z.polygon, dtype=float)) for z in config.no_fly_zones]
    fx, fy = frame.xy(fence[:, 0], fence[:, 1])
    inside = _inside_polygon(x, y, fx, fy)
    for _, poly in zones:
        zx, zy = frame.xy(poly[:, 0], poly[:, 1])
        inside &= ~_inside_polygon(x, y, zx, zy)

    alt = settings.cruise_alt_m
    ready = readiness_s(settings, model, alt)
    fixed_s = (
        model.takeoff_overhead_s
        + alt / model.climb_rate_mps
        + alt / model.descent_rate_mps
        + model.landing_overhead_s
        + settings.on_scene_s
    )
    best = np.full(x.shape, np.inf)
    best_nest = np.zeros(x.shape, dtype=np.int64)
    for nest in config.nests:
        nx, ny = frame.xy(nest.lat, nest.lon)
        dx, dy = x - nx, y - ny
        dist = np.hypot(dx, dy)
        out_bearing = np.arctan2(dx, dy)
        out_s = _leg_times(out_bearing, dist, wind, flying)
        back_s = _leg_times(out_bearing + math.pi, dist, wind, model)
        needed = (
            (fixed_s + _leg_times(out_bearing, dist, wind, model) + back_s) / 60.0 * model.drain_pct_per_min
        )
        ok = inside & (dist <= limits.max_range_m) & (needed + limits.reserve_pct <= battery_pct)
        for _, poly in [("geofence", fence), *zones]:
            px, py = frame.xy(poly[:, 0], poly[:, 1])
            for i in range(len(px)):
                j = (i + 1) % len(px)
                ok &= ~_segments_cross(float(nx), float(ny), x, y, px[i], py[i], px[j], py[j])
        total = np.where(ok, ready + out_s + settings.leg_overhead_s, np.inf)
        better = total < best
        best = np.where(better, total, best)
        best_nest = np.where(better, nest.id, best_nest)
    time_s = np.where(np.isfinite(best), best, np.nan)
    return CoverageGrid(config, wind, cell_m, lats, lons, time_s, best_nest, inside)


def grid_json(grid: CoverageGrid, settings: DispatchSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """The grid for the web page: rows north to south, columns west to east; null: no nest can go."""
    times = [[None if math.isnan(v) else round(v) for v in row] for row in grid.time_s.tolist()]
    nests = [[n if n else None for n in row] for row in grid.nest.tolist()]
    return {
        "city": grid.config.city,
        "bounds": {
            "south": float(grid.lats[-1] - (grid.lats[0] - grid.lats[1]) / 2),
            "north": float(grid.lats[0] + (grid.lats[0] - grid.lats[1]) / 2),
            "west": float(grid.lons[0] - (grid.lons[1] - grid.lons[0]) / 2),
            "east": float(grid.lons[-1] + (grid.lons[1] - grid.lons[0]) / 2),
        },
        "cell_m": grid.cell_m,
        "rows": len(grid.lats),
        "cols": len(grid.lons),
        "order": "row-major, row 0 is the northernmost, column 0 the westernmost",
        "wind": {"speed_mps": grid.wind.speed_mps, "from_deg": grid.wind.from_deg},
        "on_scene_target_s": settings.on_scene_target_s,
        "stats": grid.stats(settings.on_scene_target_s),
        "nests": [{"id": n.id, "name": n.name, "lat": n.lat, "lon": n.lon} for n in grid.config.nests],
        "no_fly_zones": [{"name": z.name, "polygon": z.polygon} for z in grid.config.no_fly_zones],
        "geofence": grid.config.geofence.polygon,
        "time_to_scene_s": times,
        "nest": nests,
    }
