"""The coverage map on the command-center page: expected time to scene over the whole city.

    GET /api/coverage    {bounds, stats, wind, scale_max_s, on_scene_target_s, image}

``image`` is a PNG data URL, one pixel per grid cell (north up, west left), coloured like the
README's heat map (turbo, 0 to 10 minutes) and transparent where no nest can go or outside the
operating area; the page lays it under the map's other layers at ``bounds`` (its map is a plain
latitude/longitude projection, so the picture fits without warping). The grid is computed
(``dronectl.domain.dispatch.coverage``, ~0.4 s of numpy) in a worker thread for the wind the nests'
weather stations report now, rounded so that small changes reuse the cached grid.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import structlog
from aiohttp import web

from dronectl.domain.config import CityConfig
from dronectl.domain.dispatch import DEFAULT_SETTINGS, DispatchSettings
from dronectl.domain.dispatch.coverage import CoverageGrid, coverage_grid, grid_json
from dronectl.domain.energy import CALM, Wind
from dronectl.nest.fleet import Fleet
from dronectl.transports.web.auth import Authorize
from dronectl.transports.web.coverage_image import SCALE_MAX_S

log = structlog.get_logger("dronectl.transports.web.coverage")

ALPHA = 200  # of a reached cell (the page sets the layer's opacity on top)
WIND_STEP_MPS = 1.0  # the grid is recomputed when the wind changes by this much...
WIND_STEP_DEG = 15.0  # ...or turns by this much


@dataclass(frozen=True)
class _Key:
    speed_mps: float
    from_deg: float | None  # None: direction unknown (the estimate assumes a headwind both ways)


def overlay_png(grid: CoverageGrid) -> bytes:
    """The grid as an RGBA PNG: one pixel per cell, transparent where no nest can go."""
    times = grid.time_s
    scaled = np.clip(np.nan_to_num(times, nan=SCALE_MAX_S) / SCALE_MAX_S, 0.0, 1.0)
    bgr = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    alpha = np.where(np.isfinite(times) & grid.inside, ALPHA, 0).astype(np.uint8)
    ok, png = cv2.imencode(".png", np.dstack([bgr, alpha]))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGRA array
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


def coverage_payload(grid: CoverageGrid, settings: DispatchSettings) -> dict[str, Any]:
    full = grid_json(grid, settings)
    png = base64.b64encode(overlay_png(grid)).decode("ascii")
    return {
        "city": full["city"],
        "bounds": full["bounds"],
        "cell_m": full["cell_m"],
        "rows": full["rows"],
        "cols": full["cols"],
        "wind": full["wind"],
        "stats": full["stats"],
        "on_scene_target_s": settings.on_scene_target_s,
        "scale_max_s": SCALE_MAX_S,
        "image": f"data:image/png;base64,{png}",
    }


class CoverageLayer:
    """Computes and caches the page's coverage layer for the current wind."""

    def __init__(
        self,
        config: CityConfig,
        wind: Callable[[], Wind] = lambda: CALM,
        settings: DispatchSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.config = config
        self.wind = wind
        self.settings = settings
        self._cache: dict[_Key, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    def _key(self, wind: Wind) -> _Key:
        speed = round(wind.speed_mps / WIND_STEP_MPS) * WIND_STEP_MPS
        if speed == 0:
            return _Key(0.0, 0.0)
        if wind.from_deg is None:
            return _Key(speed, None)
        return _Key(speed, (round(wind.from_deg / WIND_STEP_DEG) * WIND_STEP_DEG) % 360.0)

    async def payload(self) -> dict[str, Any]:
        key = self._key(self.wind())
        async with self._lock:  # one computation at a time; later callers find it cached
            cached = self._cache.get(key)
            if cached is None:
                wind = Wind(key.speed_mps, key.from_deg)
                cached = await asyncio.to_thread(self._compute, wind)
                self._cache = {key: cached}  # keep only the latest wind
                log.info("coverage.computed", wind_mps=key.speed_mps, wind_from_deg=key.from_deg)
            return cached

    def _compute(self, wind: Wind) -> dict[str, Any]:
        grid = coverage_grid(self.config, settings=self.settings, wind=wind)
        return coverage_payload(grid, self.settings)


def mean_wind(winds: list[Wind]) -> Wind:
    """The vector mean of the nests' winds (the coverage grid takes one wind for the city); a
    wind of unknown direction makes the direction unknown (the worst case is planned for)."""
    if not winds:
        return CALM
    if any(w.from_deg is None for w in winds):
        return Wind(max(w.speed_mps for w in winds), None)
    # a wind *from* a bearing blows towards bearing + 180; average the vectors
    east = sum(w.speed_mps * math.sin(math.radians(w.from_deg or 0.0)) for w in winds) / len(winds)
    north = sum(w.speed_mps * math.cos(math.radians(w.from_deg or 0.0)) for w in winds) / len(winds)
    speed = math.hypot(east, north)
    if speed < 1e-9:
        return CALM
    return Wind(speed, math.degrees(math.atan2(east, north)) % 360.0)


def fleet_wind(fleet: Fleet) -> Wind:
    """The mean of the winds the nests' weather stations report now."""
    winds = [
        Wind(w.wind_speed_mps, w.wind_from_deg)
        for c in fleet.controllers.values()
        if (w := c.dock.weather) is not None
    ]
    return mean_wind(winds)


def add_coverage_routes(app: web.Application, layer: CoverageLayer, authorize: Authorize) -> None:
    async def coverage(request: web.Request) -> web.Response:
        await authorize(request, "state.view")
        return web.json_response(await layer.payload())

    app.router.add_get("/api/coverage", coverage)
