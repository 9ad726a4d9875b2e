"""A small raster PMTiles file over a city, made in the test (OpenCV PNGs, the ``pmtiles`` writer):
a plain ground of one colour with a street grid every 500 m and a river, so a screenshot reads as
a map and a pixel of the ground has a colour nobody else draws. Synthetic: no real map data."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

GROUND_RGB = (38, 58, 50)  # a dark green-grey: the tiles' ground
STREET_RGB = (92, 104, 112)
RIVER_RGB = (34, 70, 110)
TILE_PX = 256
EARTH_R = 6378137.0


def tile_xy(lat: float, lon: float, z: int) -> tuple[float, float]:
    """Fractional tile coordinates (XYZ, Web Mercator) of a point at zoom ``z``."""
    n = 2**z
    x = (lon + 180.0) / 360.0 * n
    phi = math.radians(lat)
    y = (1.0 - math.log(math.tan(phi) + 1.0 / math.cos(phi)) / math.pi) / 2.0 * n
    return x, y


def _mercator_m(x: float, y: float, z: int) -> tuple[float, float]:
    """Web Mercator metres of fractional tile coordinates."""
    world = 2 * math.pi * EARTH_R
    return x / 2**z * world - world / 2, world / 2 - y / 2**z * world


def _tile_png(z: int, x: int, y: int, with_streets: bool) -> bytes:
    img = np.zeros((TILE_PX, TILE_PX, 3), np.uint8)
    img[:] = GROUND_RGB[::-1]  # OpenCV is BGR
    if with_streets:
        x0, y0 = _mercator_m(x, y, z)
        x1, y1 = _mercator_m(x + 1, y + 1, z)
        px_per_m = TILE_PX / (x1 - x0)
        spacing = 500.0 / math.cos(math.radians(43.9))  # 500 m on the ground, in Mercator metres
        width = max(1, round(12 * px_per_m * 1.4))
        for k in range(math.floor(x0 / spacing), math.ceil(x1 / spacing) + 1):
            px = round((k * spacing - x0) * px_per_m)
            cv2.line(img, (px, 0), (px, TILE_PX - 1), STREET_RGB[::-1], width)
        for k in range(math.floor(y1 / spacing), math.ceil(y0 / spacing) + 1):
            py = round((y0 - k * spacing) * px_per_m)
            cv2.line(img, (0, py), (TILE_PX - 1, py), STREET_RGB[::-1], width)
        # a river: a sine across the city (Mercator metres), 120 m wide
        xs = np.linspace(x0, x1, 64)
        river_y = 5_450_500.0 + 1500.0 * np.sin(xs / 2500.0)
        pts = np.stack([(xs - x0) * px_per_m, (y0 - river_y) * px_per_m], axis=1).astype(np.int32)
        cv2.polylines(img, [pts], False, RIVER_RGB[::-1], max(1, round(120 * px_per_m)))
    ok, png = cv2.imencode(".png", img)
    assert ok
    return png.tobytes()


def write_city_pmtiles(
    path: Path, bounds: tuple[float, float, float, float], zooms: range, *, streets: bool = True
) -> int:
    """Tiles over ``bounds`` (south, west, north, east) at ``zooms``; how many were written."""
    south, west, north, east = bounds
    entries: list[tuple[int, bytes]] = []
    for z in zooms:
        xa, ya = tile_xy(north, west, z)
        xb, yb = tile_xy(south, east, z)
        for x in range(int(xa), int(xb) + 1):
            for y in range(int(ya), int(yb) + 1):
                entries.append((zxy_to_tileid(z, x, y), _tile_png(z, x, y, streets and z >= 12)))
    entries.sort(key=lambda e: e[0])
    e7 = 10_000_000
    with path.open("wb") as f:
        writer = Writer(f)
        for tile_id, data in entries:
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_lon_e7": int(west * e7),
                "min_lat_e7": int(south * e7),
                "max_lon_e7": int(east * e7),
                "max_lat_e7": int(north * e7),
                "center_zoom": zooms[0],
                "center_lon_e7": int((west + east) / 2 * e7),
                "center_lat_e7": int((south + north) / 2 * e7),
            },
            {"name": "synthetic city (test)", "attribution": "synthetic tiles (test)"},
        )
    return len(entries)
