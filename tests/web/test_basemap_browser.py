"""The page on a real base map, in headless Chromium (Debian's ``chromium``, WebGL by SwiftShader):
a PMTiles file made here is the configured base map; the page draws its tiles (the server served
them, a pixel of the map's canvas has the tiles' colour); the fleet's SVG layers lie exactly over
the same places of the tiles; a drone launched from the page moves on the map; the map's controls
(scale bar, coordinates under the cursor, search, follow a drone) work.

The service is the real one with one simulated nest (MAVSDK, the audit store), as in
tests/system. Set ``DRONECTL_SCREENSHOT=docs/img/command-center.png`` to save the README's picture
(the page on the base map with the drone on station).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.app.compose import compose_operations
from dronectl.automations.lookout import SnapshotStore
from dronectl.domain.config import BasemapConfig
from dronectl.domain.geo import destination
from dronectl.domain.nest_state import NestPhase
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import Actor, Role
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.replay import add_replay_routes
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import Sessions
from tests.evidence.test_evidence_package import T0, record_incident
from tests.system.conftest import System, nest_ids, sim_speed, system, system_config
from tests.web.browser import CHROMIUM, MESSAGE, NEST_COUNT, TO_SCREEN, chromium, signed_in, wait_js
from tests.web.conftest import Web
from tests.web.pmtiles_city import GROUND_RGB, STREET_RGB, write_city_pmtiles, write_street_pmtiles
from tests.web.test_replay_browser import CHOSEN, at

__all__ = ["nest_ids", "sim_speed", "system", "system_config"]  # the system fixtures (one nest: 3)

assert CHROMIUM.exists(), "Debian's chromium is not installed: scripts/system-deps.sh installs it"

NEST = 3
COMMANDER = Actor(id="cmdr.li", role=Role.COMMANDER)
# WebGL without a GPU: SwiftShader, which newer Chromium only uses when told to
WEBGL_ARGS = ["--enable-unsafe-swiftshader"]

MAP_IDLE = """() => { const m = window.basemap.map;
  return !!m && window.basemap.ready && m.loaded() && m.areTilesLoaded(); }"""

BASEMAP_STATE = """() => ({ error: window.basemap.error, lastError: window.basemap.lastError || null,
  ready: window.basemap.ready, map: !!window.basemap.map,
  messages: document.querySelector('#messages').textContent })"""

# pixels of the map's WebGL canvas (kept: preserveDrawingBuffer), on a grid of n x n, as [r, g, b]
CANVAS_PIXELS = """(n) => {
  const src = window.basemap.map.getCanvas();
  const c = document.createElement("canvas");
  c.width = src.width; c.height = src.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(src, 0, 0);
  const out = [];
  for (let i = 1; i <= n; i++) for (let j = 1; j <= n; j++) {
    const x = Math.floor((c.width * i) / (n + 1));
    const y = Math.floor((c.height * j) / (n + 1));
    const d = ctx.getImageData(x, y, 1, 1).data;
    out.push([d[0], d[1], d[2]]);
  }
  return out;
}"""

# where MapLibre puts a point on the screen, and where the page's SVG does (tests/web/browser.TO_SCREEN)
MAP_TO_SCREEN = """([lat, lon]) => {
  const p = window.basemap.map.project([lon, lat]);
  const r = window.basemap.map.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""

# where the drone's marker is on the screen (its group's origin), and the position it was drawn for
DRONE = """(nest) => {
  const g = document.querySelector(`#layer-drones .drone[data-nest="${nest}"]`);
  if (!g) return null;
  const p = new DOMPoint(0, 0).matrixTransform(g.getScreenCTM());
  const pose = dronePose(nest).position;
  return { x: p.x, y: p.y, lat: pose.lat, lon: pose.lon };
}"""

# the replayed drone's marker on the screen (replay.js draws it in #layer-drones)
REPLAY_MARKER = """() => {
  const g = document.querySelector('#layer-drones .drone.replay');
  if (!g) return null;
  const p = new DOMPoint(0, 0).matrixTransform(g.getScreenCTM());
  return { x: p.x, y: p.y, t: window.commandCenter.replayer.t };
}"""


async def _pane_pixels(page: Any, n: int) -> list[list[int]]:
    """Pixels of a screenshot of the map pane, on a grid of n x n, as [r, g, b]."""
    png = await page.locator("#map-pane").screenshot()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "the screenshot is not a PNG"
    h, w = img.shape[:2]
    grid = [(w * i // (n + 1), h * j // (n + 1)) for i in range(1, n + 1) for j in range(1, n + 1)]
    return [[int(v) for v in img[y, x][::-1]] for x, y in grid]


def _near(rgb: list[int], want: tuple[int, int, int], tol: int = 3) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, want, strict=True))


@dataclass
class Service:
    system: System
    url: str
    sessions: Sessions
    tiles_served: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
async def service(system: System, tmp_path: Path) -> AsyncIterator[Service]:
    fence = system.config.geofence.polygon
    lats, lons = [p[0] for p in fence], [p[1] for p in fence]
    tiles = tmp_path / "changchun.pmtiles"
    write_city_pmtiles(tiles, (min(lats), min(lons), max(lats), max(lons)), range(9, 15))
    basemap = BasemapConfig(kind="pmtiles", path=str(tiles), attribution="synthetic tiles (test)")
    config = system.config.model_copy(update={"basemap": basemap})
    controller = compose_operations(system.fleet)
    sessions = Sessions(Directory(tmp_path / "users"))
    gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(system.fleet.audit))
    served: list[tuple[str, int]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/tiles/"):
            served.append((request.path, response.status))

    try:
        server = WebServer(config, controller, gateway, TokenAuthority(), sessions=sessions)
        server.app.on_response_prepare.append(record)
        async with TestServer(server.app, host="127.0.0.1") as http:
            yield Service(system, f"http://127.0.0.1:{http.port}/", sessions, served)
    finally:
        await controller.aclose()


async def test_the_map_draws_the_tiles_and_a_launched_drone_moves_on_it(
    service: Service, tmp_path: Path
) -> None:
    system = service.system
    async with chromium(tmp_path / "profile", WEBGL_ARGS) as browser:
        page = await signed_in(browser, service.url, service.sessions, COMMANDER)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        console: list[str] = []
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        assert await wait_js(page, NEST_COUNT, 30, "the nest on the map") == 1

        # the tiles: asked of the server with the session cookie, served, drawn on the canvas
        try:
            await wait_js(page, MAP_IDLE, 60, "the base map's tiles drawn")
        except AssertionError:
            why = await page.evaluate(BASEMAP_STATE)
            served = service.tiles_served[:5]
            pytest.fail(f"no tiles drawn: {why}; console: {console[-10:]}; served: {served}")
        assert await page.evaluate("() => window.basemap.error") is None
        ok = [path for path, status in service.tiles_served if status == 200]
        assert len(ok) >= 4, service.tiles_served
        assert all(path.endswith(".png") for path in ok)
        pixels = await page.evaluate(CANVAS_PIXELS, 8)
        ground = [p for p in pixels if _near(p, GROUND_RGB)]
        streets = [p for p in pixels if _near(p, STREET_RGB, 12)]
        assert len(ground) >= len(pixels) // 2, pixels  # mostly the tiles' ground, not the page's
        assert len(ground) + len(streets) > len(pixels) * 0.8, pixels
        # and seen: on the page's picture, the map pane shows the tiles through the SVG layers
        seen = await _pane_pixels(page, 8)
        assert len([p for p in seen if _near(p, GROUND_RGB, 12)]) >= len(seen) // 2, seen

        # the SVG layers over the same places of the tiles: the nest where MapLibre puts it
        home = system.nest(NEST).home
        svg_xy = await page.evaluate(TO_SCREEN, [home.lat_deg, home.lon_deg])
        map_xy = await page.evaluate(MAP_TO_SCREEN, [home.lat_deg, home.lon_deg])
        assert svg_xy == pytest.approx(map_xy, abs=1.0)
        scale = await page.evaluate("() => document.querySelector('.maplibregl-ctrl-scale')?.textContent")
        assert scale and scale.strip().endswith(("km", "m")), scale
        attribution = await page.evaluate(
            "() => document.querySelector('.maplibregl-ctrl-attrib')?.textContent"
        )
        assert "synthetic tiles (test)" in (attribution or "")

        # coordinates under the cursor
        await page.mouse.move(*svg_xy)
        cursor = await page.evaluate("() => document.querySelector('#map-cursor').textContent")
        lat, lon = (float(v) for v in cursor.split(","))
        assert (lat, lon) == pytest.approx((home.lat_deg, home.lon_deg), abs=3e-4)

        # search: a nest by its name centres the view on it, zoomed in; the tiles follow
        name = system.config.nest(NEST).name
        await page.fill("#map-search", name)
        await page.press("#map-search", "Enter")
        centre = await page.evaluate("""() => { const v = window.commandCenter.view;
          return unproject(v.x + v.w / 2, v.y + v.h / 2); }""")
        assert (centre["lat"], centre["lon"]) == pytest.approx((home.lat_deg, home.lon_deg), abs=1e-6)
        await wait_js(page, MAP_IDLE, 60, "the tiles at the nest's zoom")
        assert await page.evaluate("() => window.basemap.map.getZoom()") > 13

        # launch from the page: click the map for the target, press Launch; the drone moves on the map
        await page.click("#map-fit")
        target = destination(home, 45.0, 1200.0)
        await page.select_option("#nest-select", str(NEST))
        await page.mouse.click(*await page.evaluate(TO_SCREEN, [target.lat_deg, target.lon_deg]))
        await page.click("#btn-launch")
        await wait_js(page, MESSAGE, 30, "the launch accepted", ["ok", f"launch #{NEST}: accepted"])
        first = await wait_js(page, DRONE, 60, "the drone on the map", NEST)
        await system.wait_phase(NEST, NestPhase.EN_ROUTE, timeout_s=60)
        moved = f"""() => {{ const d = ({DRONE})({NEST});
          return d && Math.hypot(d.x - {first["x"]}, d.y - {first["y"]}) > 15 ? d : null; }}"""
        later = await wait_js(page, moved, 90, "the drone moving on the map")
        # drawn where the tiles have the position it reports
        at = await page.evaluate(MAP_TO_SCREEN, [later["lat"], later["lon"]])
        assert (later["x"], later["y"]) == pytest.approx(at, abs=2.0)

        # follow: the view keeps the drone in the middle while it flies
        await page.click("#map-follow")
        assert await page.evaluate("() => window.basemap.following") == NEST
        followed = f"""() => {{ const d = ({DRONE})({NEST});
          const r = document.querySelector('#map').getBoundingClientRect();
          return d && Math.hypot(d.x - (r.left + r.width / 2), d.y - (r.top + r.height / 2)) < 20; }}"""
        await wait_js(page, followed, 30, "the followed drone in the middle")
        await page.click("#map-follow")
        assert await page.evaluate("() => window.basemap.following") is None

        screenshot = os.environ.get("DRONECTL_SCREENSHOT")
        if screenshot:
            await _screenshot(page, system, Path(screenshot))
        assert errors == []


async def _screenshot(page: Any, system: System, path: Path) -> None:
    """The page with the drone on station and its track, zoomed in on the base map."""
    await system.wait_phase(NEST, NestPhase.ON_STATION, timeout_s=120)
    await page.set_viewport_size({"width": 1280, "height": 800})  # a modest picture for the README
    await page.click("#map-fit")
    home = system.nest(NEST).home
    middle = destination(home, 45.0, 600.0)
    x, y = await page.evaluate(TO_SCREEN, [middle.lat_deg, middle.lon_deg])
    await page.mouse.move(x, y)
    for _ in range(3):
        await page.mouse.wheel(0, -400)
    await wait_js(page, "() => window.commandCenter.view.w < window.commandCenter.fullView.w / 4", 5, "zoom")
    await wait_js(page, MAP_IDLE, 60, "the tiles at that zoom")
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))


@contextlib.asynccontextmanager
async def _page_on(
    web_api: Web, tmp_path: Path, basemap: BasemapConfig, browser_args: Sequence[str] = WEBGL_ARGS
) -> AsyncIterator[Any]:
    """The page over the fake controller (tests/web/conftest.py) with ``basemap`` and the replay
    routes, signed in as a commander, its nests drawn; no page error."""
    assert web_api.sessions is not None
    config = web_api.server.config.model_copy(update={"basemap": basemap})
    auth = web_api.server.auth
    server = WebServer(config, web_api.controller, web_api.gateway, auth, sessions=web_api.sessions)
    snapshots = SnapshotStore(web_api.snapshots)
    add_replay_routes(server.app, web_api.audit, web_api.recordings, snapshots, auth.authorize)
    async with (
        TestClient(TestServer(server.app)) as client,
        chromium(tmp_path / "profile", browser_args) as browser,
    ):
        page = await signed_in(browser, str(client.make_url("/")), web_api.sessions, COMMANDER)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await wait_js(page, NEST_COUNT, 30, "the nests on the map")
        yield page
        assert errors == []


def _fence_bounds(web_api: Web) -> tuple[float, float, float, float]:
    fence = web_api.server.config.geofence.polygon
    lats, lons = [p[0] for p in fence], [p[1] for p in fence]
    return min(lats), min(lons), max(lats), max(lons)


async def test_a_replayed_incident_is_drawn_on_the_base_map(web_api: Web, tmp_path: Path) -> None:
    """The replay's drone marker (tests/web/test_replay_browser.py) lies on the tiles where its
    recorded position is."""
    await record_incident(web_api.audit, web_api.recordings, web_api.snapshots)
    detail = await web_api.audit.flight("f-1")
    assert detail is not None
    tiles = tmp_path / "city.pmtiles"
    write_city_pmtiles(tiles, _fence_bounds(web_api), range(9, 14), streets=False)
    async with _page_on(web_api, tmp_path, BasemapConfig(kind="pmtiles", path=str(tiles))) as page:
        await wait_js(page, MAP_IDLE, 60, "the base map's tiles drawn")
        listed = "() => !!document.querySelector('#replay-incident option[value=\"inc-1\"]')"
        await wait_js(page, listed, 15, "inc-1 listed")
        await page.select_option("#replay-incident", "inc-1")
        await page.click("#btn-replay")
        await wait_js(page, "() => !!window.commandCenter.replay", 15, "the replay loaded")
        await page.evaluate(
            """(s) => { const r = document.getElementById('replay-scrub'); r.value = String(s);
                        r.dispatchEvent(new Event('input')); }""",
            CHOSEN - T0,
        )
        marker = await wait_js(page, REPLAY_MARKER, 10, "the replayed drone")
        assert marker["t"] == pytest.approx(CHOSEN)
        lat, lon = at(detail["track"], CHOSEN)
        on_tiles = await page.evaluate(MAP_TO_SCREEN, [lat, lon])
        assert (marker["x"], marker["y"]) == pytest.approx(on_tiles, abs=1.0)
        seen = await _pane_pixels(page, 6)
        assert len([p for p in seen if _near(p, GROUND_RGB, 12)]) >= len(seen) // 2, seen


async def test_vector_tiles_are_drawn_and_their_street_names_found(web_api: Web, tmp_path: Path) -> None:
    """A vector PMTiles file (gzip MVT): served as stored, drawn (its street is a rendered feature),
    and the search box finds the street by the name the tiles carry."""
    tiles = tmp_path / "streets.pmtiles"
    street_lat = 43.8805
    write_street_pmtiles(tiles, _fence_bounds(web_api), range(9, 15), ("Renmin Street", street_lat))
    async with _page_on(web_api, tmp_path, BasemapConfig(kind="pmtiles", path=str(tiles))) as page:
        await wait_js(page, MAP_IDLE, 60, "the base map's tiles drawn")
        rendered = "() => window.basemap.map.queryRenderedFeatures({ layers: ['roads-line'] })"
        drawn = await page.evaluate(f"() => ({rendered})().map((f) => f.properties.name)")
        assert drawn and set(drawn) == {"Renmin Street"}
        await page.fill("#map-search", "renmin")
        await page.press("#map-search", "Enter")
        centre = await page.evaluate("""() => { const v = window.commandCenter.view;
          return unproject(v.x + v.w / 2, v.y + v.h / 2); }""")
        assert centre["lat"] == pytest.approx(street_lat, abs=1e-4)
        await page.fill("#map-search", "no such street")
        await page.press("#map-search", "Enter")
        said = await wait_js(page, MESSAGE, 5, "nothing found", ["refused", "search: nothing called"])
        assert "names in the base map's tiles" in said


async def test_without_webgl_the_page_says_so_and_keeps_the_fleet_map(web_api: Web, tmp_path: Path) -> None:
    tiles = tmp_path / "city.pmtiles"
    write_city_pmtiles(tiles, (43.85, 125.30, 43.90, 125.36), range(10, 11), streets=False)
    basemap = BasemapConfig(kind="pmtiles", path=str(tiles))
    async with _page_on(web_api, tmp_path, basemap, ["--disable-3d-apis"]) as page:
        said = await wait_js(page, MESSAGE, 30, "the reason", ["refused", "base map:"])
        assert "no WebGL" in said, said
        assert await page.evaluate("() => document.getElementById('basemap').hidden")
        drawn = "() => document.querySelectorAll('#layer-zones .geofence, #layer-stretches .stretch').length"
        assert await page.evaluate(drawn) > 1  # the fleet's map as without a base map
