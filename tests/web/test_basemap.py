"""The base map without a browser: the config section's checks (each mistake said with its line),
the PMTiles file served tile by tile to a signed-in page only, what GET /api/config tells the page,
and the Content-Security-Policy letting in the force's own tile server and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dronectl.domain.config import BasemapConfig, ConfigError, load_config, parse_config
from dronectl.operations.models import Role
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.tiles import TileSet
from tests.web.conftest import Web
from tests.web.pmtiles_city import tile_xy, write_city_pmtiles, write_street_pmtiles

SHIPPED = Path("dronectl/data/changchun.yaml")
BOUNDS = (43.85, 125.30, 43.90, 125.36)  # south, west, north, east: part of Changchun


def _with_basemap(section: str) -> str:
    return SHIPPED.read_text(encoding="utf-8") + "\nbasemap:\n" + section


def _problems(section: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(_with_basemap(section), "city.yaml")
    return err.value.problems


def test_the_shipped_config_has_no_tiles() -> None:
    assert load_config().basemap == BasemapConfig(kind="none")


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("  kind: pmtiles\n", "basemap.path: kind pmtiles needs path"),
        ("  kind: xyz\n", "basemap.url: kind xyz needs url"),
        ("  kind: xyz\n  url: https://tiles.local/{z}/{x}.png\n", "the tile URL template lacks {y}"),
        ("  kind: xyz\n  url: file:///srv/{z}/{x}/{y}.png\n", "must start with https:// or http://"),
        ("  kind: none\n  path: city.pmtiles\n", "basemap.kind: kind none draws no tiles"),
        ("  kind: pmtiles\n  path: a.pmtiles\n  url: https://t/{z}/{x}/{y}\n", "takes a path, not a url"),
        ("  kind: wmts\n", "basemap.kind: Input should be 'none', 'pmtiles' or 'xyz'"),
        ("  kind: xyz\n  url: https://t/{z}/{x}/{y}\n  min_zoom: 12\n  max_zoom: 10\n", "above max_zoom"),
    ],
)
def test_a_bad_basemap_section_is_refused_with_its_line(section: str, expected: str) -> None:
    problems = _problems(section)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("city.yaml:") for p in problems)


def test_gcj02_tiles_are_refused_and_the_reason_given() -> None:
    problems = _problems("  kind: xyz\n  url: https://tiles.example.cn/{z}/{x}/{y}\n  crs: gcj02\n")
    assert len(problems) == 1
    assert "basemap.crs: GCJ-02 tiles are refused: they are offset 100-700 m" in problems[0]
    assert "Tianditu" in problems[0]


def test_a_known_gcj02_tile_host_is_refused_whatever_crs_says() -> None:
    problems = _problems("  kind: xyz\n  url: https://webrd01.is.autonavi.com/x={x}&y={y}&z={z}\n")
    url_line = SHIPPED.read_text(encoding="utf-8").count("\n") + 4  # the blank line, basemap:, kind:
    assert problems == [
        f"city.yaml:{url_line}: basemap.url: autonavi.com serves GCJ-02 (or BD-09) tiles, "
        "offset 100-700 m from WGS84: refused, as crs gcj02 is; "
        "use WGS84 or CGCS2000 tiles (Tianditu's Web Mercator layers)"
    ]


def test_tianditu_cgcs2000_in_web_mercator_is_taken_as_it_is() -> None:
    url = (
        "https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec"
        "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY"
    )
    config = parse_config(_with_basemap(f"  kind: xyz\n  url: '{url}'\n  crs: cgcs2000\n"), "city.yaml")
    assert (config.basemap.kind, config.basemap.crs) == ("xyz", "cgcs2000")


def test_a_file_that_is_not_pmtiles_is_refused_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "city.pmtiles"
    bad.write_bytes(b"not a tile archive at all" * 10)
    with pytest.raises(ConfigError, match="not a PMTiles v3 file"):
        TileSet(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        TileSet(tmp_path / "missing.pmtiles")


async def test_tiles_are_served_to_a_signed_in_page_only(web_api: Web, tmp_path: Path) -> None:
    path = tmp_path / "city.pmtiles"
    write_city_pmtiles(path, BOUNDS, range(10, 13), streets=False)
    config = web_api.server.config.model_copy(
        update={"basemap": BasemapConfig(kind="pmtiles", path=str(path), attribution="test tiles")}
    )
    server = WebServer(config, web_api.controller, web_api.gateway, web_api.server.auth)
    x, y = (int(v) for v in tile_xy(43.87, 125.33, 12))
    async with TestClient(TestServer(server.app)) as client:
        headers = web_api.headers(Role.OBSERVER)
        async with client.get(f"/tiles/12/{x}/{y}.png", headers=headers) as res:
            assert res.status == 200
            assert res.content_type == "image/png"
            assert (await res.read())[:8] == b"\x89PNG\r\n\x1a\n"
        async with client.get(f"/tiles/12/{x}/{y}.png") as res:
            assert res.status == 401  # as every /api route: a session or a token
        for missing in (f"/tiles/12/{x + 50}/{y}.png", f"/tiles/15/{x}/{y}.png", f"/tiles/12/{x}/{y}.jpg"):
            async with client.get(missing, headers=headers) as res:
                assert res.status == 404, missing
        async with client.get("/api/config", headers=headers) as res:
            basemap = (await res.json())["basemap"]
    assert basemap == {
        "kind": "pmtiles",
        "attribution": "test tiles",
        "crs": "wgs84",
        "type": "raster",
        "tiles": "/tiles/{z}/{x}/{y}.png",
        "tile_size": 256,
        "min_zoom": 10,
        "max_zoom": 12,
        "bounds": [125.3, 43.85, 125.36, 43.9],
        "vector_layers": [],
    }


async def test_the_page_may_load_tiles_from_the_configured_server_and_nowhere_else(web_api: Web) -> None:
    async with web_api.client.get("/") as res:
        csp = res.headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:;" in csp and "connect-src 'self' ws: wss:;" in csp
    config = web_api.server.config.model_copy(
        update={"basemap": BasemapConfig(kind="xyz", url="https://tiles.police.local:8443/{z}/{x}/{y}.png")}
    )
    server = WebServer(config, web_api.controller, web_api.gateway, web_api.server.auth)
    async with TestClient(TestServer(server.app)) as client:
        async with client.get("/") as res:
            csp = res.headers["Content-Security-Policy"]
        async with client.get("/api/config", headers=web_api.headers(Role.OBSERVER)) as res:
            basemap = (await res.json())["basemap"]
    assert "img-src 'self' data: blob: https://tiles.police.local:8443;" in csp
    assert "connect-src 'self' ws: wss: https://tiles.police.local:8443;" in csp
    assert basemap["tiles"] == "https://tiles.police.local:8443/{z}/{x}/{y}.png"
    assert basemap["type"] == "raster"


async def test_the_vendored_map_library_is_served_with_its_licence(web_api: Web) -> None:
    for path, kind in (
        ("/static/vendor/maplibre-gl/maplibre-gl.mjs", "text/javascript"),
        ("/static/vendor/maplibre-gl/maplibre-gl-worker.mjs", "text/javascript"),
        ("/static/vendor/maplibre-gl/maplibre-gl.css", "text/css"),
        ("/static/vendor/maplibre-gl/LICENSE.txt", "text/plain"),
    ):
        async with web_api.client.get(path) as res:
            assert res.status == 200, path
            # a module script needs a JavaScript MIME type (text/ or application/javascript)
            assert res.content_type.split("/")[1] == kind.split("/")[1], path
            assert res.headers["Cache-Control"] == "no-cache", path  # revalidated, not fetched again
            modified = res.headers["Last-Modified"]
        async with web_api.client.get(path, headers={"If-Modified-Since": modified}) as res:
            assert res.status == 304, path


def test_the_vendored_version_is_noted_where_the_script_pins_it() -> None:
    versions = Path("dronectl/transports/web/static/vendor/maplibre-gl/VERSIONS").read_text(encoding="utf-8")
    script = Path("scripts/vendor-web.sh").read_text(encoding="utf-8")
    assert "maplibre-gl 6.20.0" in versions and "VERSION=6.20.0" in script
    sha = next(line.split(": ")[1] for line in versions.splitlines() if line.startswith("sha256"))
    assert f"SHA256={sha}" in script


async def test_vector_tiles_are_served_as_stored_gzip(web_api: Web, tmp_path: Path) -> None:
    path = tmp_path / "streets.pmtiles"
    write_street_pmtiles(path, BOUNDS, range(11, 13), ("Renmin Street", 43.875))
    config = web_api.server.config.model_copy(
        update={"basemap": BasemapConfig(kind="pmtiles", path=str(path))}
    )
    server = WebServer(config, web_api.controller, web_api.gateway, web_api.server.auth)
    x, y = (int(v) for v in tile_xy(43.875, 125.33, 12))
    async with TestClient(TestServer(server.app)) as client:
        headers = web_api.headers(Role.OBSERVER)
        async with client.get(f"/tiles/12/{x}/{y}.pbf", headers=headers) as res:
            assert res.status == 200
            assert res.content_type == "application/vnd.mapbox-vector-tile"
            assert res.headers["Content-Encoding"] == "gzip"
            body = await res.read()  # inflated by the client, as by the browser
        async with client.get("/api/config", headers=headers) as res:
            basemap = (await res.json())["basemap"]
    assert body[:1] == b"\x1a" and b"roads" in body and b"Renmin Street" in body  # an MVT layer
    assert (basemap["type"], basemap["tiles"], basemap["vector_layers"]) == (
        "vector",
        "/tiles/{z}/{x}/{y}.pbf",
        ["roads"],
    )


def test_dronectl_up_refuses_a_base_map_it_cannot_read_before_starting_anything(tmp_path: Path) -> None:
    config = tmp_path / "city.yaml"
    config.write_text(
        _with_basemap(f"  kind: pmtiles\n  path: {tmp_path / 'missing.pmtiles'}\n"), encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dronectl", "up", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"basemap.path: {tmp_path / 'missing.pmtiles'}: cannot read: No such file or directory"
    )
