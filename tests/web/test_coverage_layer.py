"""The coverage layer of the command-center page: GET /api/coverage."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore
from dronectl.domain.config import load_config
from dronectl.domain.dispatch import DEFAULT_SETTINGS
from dronectl.domain.dispatch.coverage import coverage_grid
from dronectl.domain.energy import Wind
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import Actor, Role
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.coverage import CoverageLayer, add_coverage_routes, mean_wind
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import Sessions
from tests.api.fake_controller import FakeController
from tests.web.browser import NEST_COUNT, chromium, signed_in, wait_js

TOKEN = "token-of-an-observer-0123456789"


class CountingLayer(CoverageLayer):
    computed = 0

    def _compute(self, wind: Wind) -> dict[str, object]:
        self.computed += 1
        return super()._compute(wind)


@pytest.fixture
async def client_and_layer() -> AsyncIterator[tuple[TestClient, CountingLayer, list[Wind]]]:
    config = load_config()
    wind = [Wind(0.0, 0.0)]
    layer = CountingLayer(config, wind=lambda: wind[0])
    auth = TokenAuthority({TOKEN: Actor(id="observer-1", role=Role.OBSERVER)})
    app = web.Application()
    add_coverage_routes(app, layer, auth.authorize)
    async with TestClient(TestServer(app)) as client:
        yield client, layer, wind


def _decode(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    raw = np.frombuffer(base64.b64decode(data_url[len(prefix) :]), np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


async def test_needs_a_token(client_and_layer: tuple[TestClient, CountingLayer, list[Wind]]) -> None:
    client, layer, _ = client_and_layer
    async with client.get("/api/coverage") as res:
        assert res.status == 401
    assert layer.computed == 0


async def test_layer_is_the_grid_as_a_transparent_picture(
    client_and_layer: tuple[TestClient, CountingLayer, list[Wind]],
) -> None:
    client, _, _ = client_and_layer
    async with client.get("/api/coverage", headers={"Authorization": f"Bearer {TOKEN}"}) as res:
        assert res.status == 200
        cov = await res.json()
    config = load_config()
    fence = np.array(config.geofence.polygon)
    b = cov["bounds"]
    assert b["south"] == pytest.approx(fence[:, 0].min(), abs=1e-9)
    assert b["north"] == pytest.approx(fence[:, 0].max(), abs=1e-9)
    assert b["west"] == pytest.approx(fence[:, 1].min(), abs=1e-9)
    assert b["east"] == pytest.approx(fence[:, 1].max(), abs=1e-9)
    image = _decode(cov["image"])
    assert image.shape == (cov["rows"], cov["cols"], 4)
    grid = coverage_grid(config, settings=DEFAULT_SETTINGS)
    reachable = np.isfinite(grid.time_s) & grid.inside
    # opaque exactly where a nest can go, transparent elsewhere (a no-fly zone is a hole)
    assert np.array_equal(image[:, :, 3] > 0, reachable)
    zone = config.no_fly_zones[0].polygon
    lat = (zone[0][0] + zone[2][0]) / 2
    lon = (zone[0][1] + zone[2][1]) / 2
    row = int(np.argmin(np.abs(grid.lats - lat)))
    col = int(np.argmin(np.abs(grid.lons - lon)))
    assert image[row, col, 3] == 0
    # the cell of a nest is coloured as a fast one, the far corner (if reachable) as slower
    nest = config.nests[0]
    r_n = int(np.argmin(np.abs(grid.lats - nest.lat)))
    c_n = int(np.argmin(np.abs(grid.lons - nest.lon)))
    assert grid.time_s[r_n, c_n] < cov["on_scene_target_s"]
    assert 0 < cov["stats"]["within_target_pct"] <= 100
    assert cov["stats"] == grid.stats(DEFAULT_SETTINGS.on_scene_target_s)


async def test_recomputed_only_when_the_wind_changes_enough(
    client_and_layer: tuple[TestClient, CountingLayer, list[Wind]],
) -> None:
    client, layer, wind = client_and_layer
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def get() -> dict[str, object]:
        async with client.get("/api/coverage", headers=headers) as res:
            assert res.status == 200
            body: dict[str, object] = await res.json()
            return body

    calm = await get()
    await get()
    assert layer.computed == 1
    wind[0] = Wind(0.3, 90.0)  # rounds to calm
    await get()
    assert layer.computed == 1
    wind[0] = Wind(9.0, 270.0)
    windy = await get()
    assert layer.computed == 2
    assert windy["wind"] == {"speed_mps": 9.0, "from_deg": 270.0}
    assert windy["stats"] != calm["stats"]


def test_mean_wind_is_the_vector_mean() -> None:
    w = mean_wind([Wind(4.0, 90.0), Wind(4.0, 90.0), Wind(4.0, 270.0)])
    assert w.speed_mps == pytest.approx(4.0 / 3)
    assert w.from_deg == pytest.approx(90.0)
    assert mean_wind([]).speed_mps == 0.0
    assert mean_wind([Wind(5.0, None), Wind(3.0, 10.0)]) == Wind(5.0, None)


async def test_the_page_lays_the_layer_over_the_map(tmp_path: Path) -> None:
    """In Chromium: the Coverage button shows the picture at the grid's bounds, with the figures."""
    base = load_config()
    config = base.model_copy(update={"nests": base.nests[:3]})
    controller = FakeController((1, 2, 3), step_s=0.05)
    sessions = Sessions(Directory(tmp_path / "users"))  # signed in below, as after a login
    layer = CoverageLayer(config)
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
        server = WebServer(
            config,
            controller,
            gateway,
            TokenAuthority(),
            mounts=[lambda app, authorize: add_coverage_routes(app, layer, authorize)],
            sessions=sessions,
        )
        async with TestClient(TestServer(server.app)) as client, chromium(tmp_path / "profile") as browser:
            observer = Actor(id="observer-1", role=Role.OBSERVER)
            page = await signed_in(browser, str(client.make_url("/")), sessions, observer)
            await wait_js(page, NEST_COUNT, 30, "the nests on the map")
            await page.click("#map-coverage")
            stats = await wait_js(
                page,
                "() => document.getElementById('coverage-stats')?.textContent",
                60,
                "the coverage figures",
            )
            expected = (await layer.payload())["stats"]
            assert f"{expected['within_target_pct']} % of the city within 5 min" in stats
            # the picture's corners are the grid's bounds, in the page's own projection
            placed = await page.evaluate(
                """() => { const i = document.querySelector('#layer-coverage image');
                   return i && [+i.getAttribute('x'), +i.getAttribute('y'), +i.getAttribute('width'),
                                +i.getAttribute('height'), i.getAttribute('href').slice(0, 22)]; }"""
            )
            b = (await layer.payload())["bounds"]
            nw = await page.evaluate("([lat, lon]) => project(lat, lon)", [b["north"], b["west"]])
            se = await page.evaluate("([lat, lon]) => project(lat, lon)", [b["south"], b["east"]])
            assert placed[0] == pytest.approx(nw[0]) and placed[1] == pytest.approx(nw[1])
            assert placed[2] == pytest.approx(se[0] - nw[0]) and placed[3] == pytest.approx(se[1] - nw[1])
            assert placed[4] == "data:image/png;base64,"
            await page.click("#map-coverage")  # off again
            assert await page.evaluate("() => document.querySelectorAll('#layer-coverage image').length") == 0
