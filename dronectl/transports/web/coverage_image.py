"""The coverage grid drawn as a PNG heat map with OpenCV: time to scene in colour (turbo, 0 to 10
minutes), the 3- and 5-minute lines, the nests, the geofence and the no-fly zones, and a legend."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from dronectl.domain.config import load_config
from dronectl.domain.dispatch.coverage import CoverageGrid, coverage_grid, grid_json
from dronectl.domain.dispatch_settings import DEFAULT_SETTINGS, DispatchSettings
from dronectl.domain.energy import Wind

SCALE_MAX_S = 600.0
PX_PER_CELL = 3
LEGEND_W = 190
TITLE_H = 56
MIN_HEIGHT = 620  # room for the legend
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (150, 150, 150)
RED = (40, 40, 220)

Image = npt.NDArray[np.uint8]


def _colour(times_s: npt.NDArray[np.float64]) -> Image:
    scaled = np.clip(np.nan_to_num(times_s, nan=SCALE_MAX_S) / SCALE_MAX_S, 0.0, 1.0)
    colour: Image = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    return colour


def _to_px(grid: CoverageGrid, lat: float, lon: float) -> tuple[int, int]:
    rows, cols = grid.time_s.shape
    north = grid.lats[0] + (grid.lats[0] - grid.lats[1]) / 2
    south = grid.lats[-1] - (grid.lats[0] - grid.lats[1]) / 2
    west = grid.lons[0] - (grid.lons[1] - grid.lons[0]) / 2
    east = grid.lons[-1] + (grid.lons[1] - grid.lons[0]) / 2
    x = (lon - west) / (east - west) * cols * PX_PER_CELL
    y = (north - lat) / (north - south) * rows * PX_PER_CELL
    return round(x), round(y) + TITLE_H


def _text(
    img: Image,
    text: str,
    at: tuple[int, int],
    scale: float = 0.45,
    colour: tuple[int, int, int] = BLACK,
    thickness: int = 1,
    outline: bool = False,
) -> None:
    if outline:
        cv2.putText(img, text, at, FONT, scale, WHITE, thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, at, FONT, scale, colour, thickness, cv2.LINE_AA)


def _contours(img: Image, grid: CoverageGrid, level_s: float, colour: tuple[int, int, int]) -> None:
    rows, cols = grid.time_s.shape
    reached = np.nan_to_num(grid.time_s, nan=np.inf) <= level_s
    mask = cv2.resize(
        reached.astype(np.uint8) * 255,
        (cols * PX_PER_CELL, rows * PX_PER_CELL),
        interpolation=cv2.INTER_NEAREST,
    )
    found, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    shifted = [c + np.array([[[0, TITLE_H]]]) for c in found]
    cv2.drawContours(img, shifted, -1, colour, 1, cv2.LINE_AA)


def _legend(img: Image, x0: int, settings: DispatchSettings, stats: dict[str, float]) -> None:
    top, bottom = TITLE_H + 40, TITLE_H + 340
    bar = np.linspace(0.0, SCALE_MAX_S, bottom - top)[:, None].repeat(24, axis=1)
    img[top:bottom, x0 + 16 : x0 + 40] = _colour(bar)
    cv2.rectangle(img, (x0 + 16, top), (x0 + 40, bottom), BLACK, 1)
    _text(img, "time to scene", (x0 + 10, top - 14), 0.5, thickness=1)
    for minute in range(0, 11):
        y = top + round(minute * 60 / SCALE_MAX_S * (bottom - top - 1))
        cv2.line(img, (x0 + 40, y), (x0 + 46, y), BLACK, 1)
        _text(img, f"{minute} min" + ("+" if minute == 10 else ""), (x0 + 50, y + 5), 0.42)
    y = bottom + 30
    cv2.rectangle(img, (x0 + 10, y - 6), (x0 + 42, y + 6), GREY, -1)
    cv2.line(img, (x0 + 12, y), (x0 + 40, y), WHITE, 2)
    _text(img, f"{settings.moving_target_s / 60:.0f} min line", (x0 + 48, y + 5), 0.42)
    y += 22
    cv2.line(img, (x0 + 12, y), (x0 + 40, y), BLACK, 2)
    _text(img, f"{settings.on_scene_target_s / 60:.0f} min line", (x0 + 48, y + 5), 0.42)
    y += 22
    cv2.rectangle(img, (x0 + 12, y - 8), (x0 + 40, y + 4), RED, 2)
    _text(img, "no-fly zone", (x0 + 48, y + 3), 0.42)
    y += 22
    cv2.rectangle(img, (x0 + 12, y - 8), (x0 + 40, y + 4), GREY, -1)
    _text(img, "unreachable", (x0 + 48, y + 3), 0.42)
    y += 22
    cv2.circle(img, (x0 + 26, y - 2), 7, WHITE, -1)
    cv2.circle(img, (x0 + 26, y - 2), 7, BLACK, 1)
    _text(img, "nest", (x0 + 48, y + 3), 0.42)
    y += 34
    for line in (
        f"area {stats['area_km2']:.0f} km2",
        f"within 5 min: {stats['within_target_pct']:.0f} %",
        f"median {stats['median_s'] / 60:.1f} min",
        f"worst {stats['max_s'] / 60:.1f} min",
    ):
        _text(img, line, (x0 + 12, y), 0.42)
        y += 20


def render(grid: CoverageGrid, settings: DispatchSettings, out: Path) -> Image:
    rows, cols = grid.time_s.shape
    width, height = cols * PX_PER_CELL, rows * PX_PER_CELL
    img = np.full((max(height + TITLE_H, MIN_HEIGHT), width + LEGEND_W, 3), 255, dtype=np.uint8)
    heat = _colour(grid.time_s)
    heat[~np.isfinite(grid.time_s)] = GREY
    img[TITLE_H : TITLE_H + height, :width] = cv2.resize(
        heat, (width, height), interpolation=cv2.INTER_NEAREST
    )
    _contours(img, grid, settings.moving_target_s, WHITE)
    _contours(img, grid, settings.on_scene_target_s, BLACK)

    fence = [_to_px(grid, lat, lon) for lat, lon in grid.config.geofence.polygon]
    cv2.polylines(img, [np.array(fence, dtype=np.int32)], True, BLACK, 2, cv2.LINE_AA)
    for zone in grid.config.no_fly_zones:
        pts = np.array([_to_px(grid, lat, lon) for lat, lon in zone.polygon], dtype=np.int32)
        cv2.polylines(img, [pts], True, RED, 2, cv2.LINE_AA)
        x, y = pts[:, 0].min(), pts[:, 1].min()
        _text(img, zone.name, (int(x), int(y) - 5), 0.38, RED, outline=True)
    for nest in grid.config.nests:
        x, y = _to_px(grid, nest.lat, nest.lon)
        cv2.circle(img, (x, y), 9, WHITE, -1, cv2.LINE_AA)
        cv2.circle(img, (x, y), 9, BLACK, 1, cv2.LINE_AA)
        label = str(nest.id)
        (tw, th), _ = cv2.getTextSize(label, FONT, 0.38, 1)
        _text(img, label, (x - tw // 2, y + th // 2), 0.38)

    wind = grid.wind
    air = "calm air" if wind.speed_mps <= 0 else f"wind {wind.speed_mps:.0f} m/s from {wind.from_deg:.0f} deg"
    _text(
        img,
        f"{grid.config.city}: expected time to scene, {len(grid.config.nests)} nests",
        (12, 24),
        0.62,
        thickness=2,
    )
    _text(
        img,
        f"launch from a closed, charged dock, {settings.cruise_alt_m:.0f} m cruise altitude, {air}; "
        f"{grid.cell_m:.0f} m cells",
        (12, 46),
        0.42,
    )
    _legend(img, width, settings, grid.stats(settings.on_scene_target_s))
    if not cv2.imwrite(str(out), img):
        raise OSError(f"cannot write {out}")
    return img


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dronectl.transports.web.coverage_image", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path("docs/img/coverage.png"), help="the PNG to write")
    parser.add_argument("--json", type=Path, default=None, help="the JSON grid (default: next to --out)")
    parser.add_argument("--config", type=Path, default=None, help="city config (default: the shipped one)")
    parser.add_argument("--cell-m", type=float, default=100.0)
    parser.add_argument("--wind-mps", type=float, default=0.0)
    parser.add_argument("--wind-from-deg", type=float, default=270.0)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    wind = Wind(args.wind_mps, args.wind_from_deg)
    grid = coverage_grid(config, wind=wind, cell_m=args.cell_m)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    render(grid, DEFAULT_SETTINGS, args.out)
    json_path = args.json or args.out.with_suffix(".json")
    json_path.write_text(json.dumps(grid_json(grid), separators=(",", ":")), encoding="utf-8")
    stats = grid.stats(DEFAULT_SETTINGS.on_scene_target_s)
    sys.stdout.write(f"{args.out}, {json_path}: {json.dumps(stats)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
