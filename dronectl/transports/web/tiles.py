"""The page's base map (``basemap:`` in the city config, ``domain.config.BasemapConfig``).

    GET /tiles/{z}/{x}/{y}.{ext}    one tile of the configured PMTiles file (session or token, as
                                    every /api route; 404 where the file has none)

A PMTiles file is one archive of a city's tiles; the service reads it (memory-mapped, the protomaps
project's ``pmtiles`` reader) and serves it tile by tile, so the browser needs no Range requests,
no PMTiles code and no token in a URL: its session cookie goes with each tile request as with the
rest of the page. An ``xyz`` base map is the force's own tile server: the page gets its URL template
and the Content-Security-Policy lets that origin in; nothing else is ever loaded from elsewhere.
"""

from __future__ import annotations

import asyncio
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pmtiles.reader import Reader
from pmtiles.tile import Compression, TileType

from dronectl.domain.config import BasemapConfig, ConfigError
from dronectl.transports.web.auth import Authorize

# PMTiles tile type -> (extension, Content-Type, what MapLibre draws it as)
_TYPES: dict[TileType, tuple[str, str, str]] = {
    TileType.PNG: ("png", "image/png", "raster"),
    TileType.JPEG: ("jpg", "image/jpeg", "raster"),
    TileType.WEBP: ("webp", "image/webp", "raster"),
    TileType.MVT: ("pbf", "application/vnd.mapbox-vector-tile", "vector"),
}


@dataclass(frozen=True)
class TileFormat:
    ext: str
    content_type: str
    kind: str  # raster | vector


class TileSet:
    """One PMTiles file, open for the life of the service (a read-only memory map)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._reader = Reader(lambda offset, length: self._map[offset : offset + length])
            header = self._reader.header()
            metadata = self._reader.metadata()
        except OSError as exc:
            raise ConfigError(
                str(path), [f"basemap.path: {path}: cannot read: {exc.strerror or exc}"]
            ) from exc
        except Exception as exc:  # the reader's own errors (not a PMTiles v3 file): said plainly
            raise ConfigError(str(path), [f"basemap.path: {path}: not a PMTiles v3 file ({exc!r})"]) from exc
        tile_type = header["tile_type"]
        if tile_type not in _TYPES:
            raise ConfigError(str(path), [f"basemap.path: {path}: tiles of type {tile_type} cannot be drawn"])
        ext, content_type, kind = _TYPES[tile_type]
        self.format = TileFormat(ext, content_type, kind)
        self.gzip = header["tile_compression"] == Compression.GZIP
        self.min_zoom = int(header["min_zoom"])
        self.max_zoom = int(header["max_zoom"])
        e7 = 10_000_000
        self.bounds = [
            header["min_lon_e7"] / e7, header["min_lat_e7"] / e7,
            header["max_lon_e7"] / e7, header["max_lat_e7"] / e7,
        ]  # fmt: skip
        self.vector_layers = [str(layer["id"]) for layer in metadata.get("vector_layers", [])]

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not (self.min_zoom <= z <= self.max_zoom) or not (0 <= x < 2**z and 0 <= y < 2**z):
            return None
        data = self._reader.get(z, x, y)
        return bytes(data) if data else None

    def close(self) -> None:
        self._map.close()


def page_basemap(config: BasemapConfig, tiles: TileSet | None) -> dict[str, Any]:
    """What the page needs to draw the base map (``basemap`` in GET /api/config)."""
    common = {"kind": config.kind, "attribution": config.attribution, "crs": config.crs}
    if config.kind == "pmtiles" and tiles is not None:
        return {
            **common,
            "type": tiles.format.kind,
            "tiles": f"/tiles/{{z}}/{{x}}/{{y}}.{tiles.format.ext}",
            "tile_size": config.tile_size,
            "min_zoom": tiles.min_zoom,
            "max_zoom": tiles.max_zoom,
            "bounds": tiles.bounds,
            "vector_layers": tiles.vector_layers,
        }
    if config.kind == "xyz" and config.url:
        return {
            **common,
            "type": "raster",
            "tiles": config.url,
            "tile_size": config.tile_size,
            "min_zoom": config.min_zoom,
            "max_zoom": config.max_zoom,
        }
    return {"kind": "none"}


def tile_origins(config: BasemapConfig) -> list[str]:
    """Origins the page may load tiles from besides its own (the CSP's img-src and connect-src)."""
    if config.kind != "xyz" or not config.url:
        return []
    parts = urlsplit(config.url.replace("{", "").replace("}", ""))
    return [f"{parts.scheme}://{parts.netloc}"]


def open_tiles(config: BasemapConfig) -> TileSet | None:
    """The configured PMTiles file, open; None for the other kinds. Raises ConfigError."""
    if config.kind != "pmtiles" or not config.path:
        return None
    return TileSet(Path(config.path))


def add_tile_routes(app: web.Application, tiles: TileSet, authorize: Authorize) -> None:
    async def tile(request: web.Request) -> web.Response:
        await authorize(request, "state.view")
        try:
            z, x, y = (int(request.match_info[k]) for k in ("z", "x", "y"))
        except ValueError:
            raise web.HTTPNotFound(text="no such tile") from None
        if request.match_info["ext"] != tiles.format.ext:
            raise web.HTTPNotFound(text=f"the base map's tiles are .{tiles.format.ext}")
        data = await asyncio.to_thread(tiles.tile, z, x, y)  # page faults of the map: off the loop
        if data is None:
            raise web.HTTPNotFound(text=f"no tile {z}/{x}/{y} in the base map")
        response = web.Response(body=data, content_type=tiles.format.content_type)
        if tiles.gzip:
            response.headers["Content-Encoding"] = "gzip"  # as stored; the browser inflates it
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    app.router.add_get(r"/tiles/{z:\d+}/{x:\d+}/{y:\d+}.{ext:[a-z]+}", tile)
