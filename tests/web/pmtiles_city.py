"""A small raster PMTiles file over a city, made in the test (OpenCV PNGs, the ``pmtiles`` writer):
a plain ground of one colour with a street grid every 500 m and a river, so a screenshot reads as
a map and a pixel of the ground has a colour nobody else draws. Synthetic: no real map data."""

from __future__ import annotations

import gzip
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


def _write(
    path: Path,
    entries: list[tuple[int, bytes]],
    tile_type: TileType,
    compression: Compression,
    bounds: tuple[float, float, float, float],
    center_zoom: int,
    metadata: dict[str, object],
) -> int:
    """Write ``entries`` (tile id, bytes) as a PMTiles file over ``bounds``; how many tiles."""
    south, west, north, east = bounds
    entries.sort(key=lambda e: e[0])
    e7 = 10_000_000
    with path.open("wb") as f:
        writer = Writer(f)
        for tile_id, data in entries:
            writer.write_tile(tile_id, data)
        writer.finalize(
            {
                "tile_type": tile_type,
                "tile_compression": compression,
                "min_lon_e7": int(west * e7),
                "min_lat_e7": int(south * e7),
                "max_lon_e7": int(east * e7),
                "max_lat_e7": int(north * e7),
                "center_zoom": center_zoom,
                "center_lon_e7": int((west + east) / 2 * e7),
                "center_lat_e7": int((south + north) / 2 * e7),
            },
            metadata,
        )
    return len(entries)


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
    return _write(
        path, entries, TileType.PNG, Compression.NONE, bounds, zooms[0],
        {"name": "synthetic city (test)", "attribution": "synthetic tiles (test)"},
    )  # fmt: skip


# --- a vector tile set: one layer "roads", one named street -------------------------------------

MVT_EXTENT = 4096


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return key + _varint(payload)
    assert isinstance(payload, bytes)
    return key + _varint(len(payload)) + payload


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 31)


def _street_tile(name: str, y_px: int) -> bytes:
    """An MVT tile (hand-encoded protobuf, spec 2.1) with a street across it at row ``y_px``."""
    geometry = [9, _zigzag(-64), _zigzag(y_px), 10, _zigzag(MVT_EXTENT + 128), 0]  # MoveTo, LineTo
    feature = (
        _field(1, 0, 1)
        + _field(2, 2, b"".join(_varint(v) for v in (0, 0)))  # tags: name = value 0
        + _field(3, 0, 2)  # LINESTRING
        + _field(4, 2, b"".join(_varint(v) for v in geometry))
    )
    layer = (
        _field(15, 0, 2)
        + _field(1, 2, b"roads")
        + _field(2, 2, feature)
        + _field(3, 2, b"name")
        + _field(4, 2, _field(1, 2, name.encode()))
        + _field(5, 0, MVT_EXTENT)
    )
    return _field(3, 2, layer)


def write_street_pmtiles(
    path: Path, bounds: tuple[float, float, float, float], zooms: range, street: tuple[str, float]
) -> int:
    """Vector tiles (gzip, as PMTiles usually stores them) over ``bounds``: in every tile the
    street's latitude crosses, that street (a ``name``), west to east. How many tiles."""
    name, lat = street
    south, west, north, east = bounds
    entries: list[tuple[int, bytes]] = []
    for z in zooms:
        xa, _ = tile_xy(north, west, z)
        xb, _ = tile_xy(south, east, z)
        _, ys = tile_xy(lat, west, z)
        y = int(ys)
        y_px = round((ys - y) * MVT_EXTENT)
        for x in range(int(xa), int(xb) + 1):
            entries.append((zxy_to_tileid(z, x, y), gzip.compress(_street_tile(name, y_px), mtime=0)))
    return _write(
        path, entries, TileType.MVT, Compression.GZIP, bounds, zooms[0],
        {"name": "one street (test)", "vector_layers": [{"id": "roads", "fields": {"name": "String"}}]},
    )  # fmt: skip
