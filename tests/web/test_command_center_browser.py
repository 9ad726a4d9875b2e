"""THE acceptance test of the command-center page, in headless Chromium (Debian's ``chromium``).

The real service (16 simulated nests, MAVSDK, the audit store, the video hub) serves the page;
the browser (tests/web/browser.py) opens it, sees every nest on the map, picks a point with a
click, launches a nest with the page's button, and receives the drone's video by WHEP: frames
decoded at 1280x720, H.264 negotiated. A second page signed in as an observer watches the same
ingest, is refused when it presses Return, and shows why. The commander then talks through the
drone's loudspeaker from the tile (Chromium's fake microphone).

Set ``DRONECTL_SCREENSHOT=/tmp/page.png`` to save a screenshot of the page with the drone on
station and its video playing (the README's picture, on a base map, comes from
tests/web/test_basemap_browser.py).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dronectl.app.compose import compose_operations
from dronectl.domain.config import load_config
from dronectl.domain.geo import destination
from dronectl.domain.nest_state import NestPhase
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import Actor, Role
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import Authorize, TokenAuthority
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import Sessions
from dronectl.transports.whep import add_video_routes
from dronectl.transports.whep.routes import SESSIONS
from dronectl.video import VideoHub, open_video
from dronectl.video.talkback import CLIP_IDS
from tests.conftest import allocate_port_base
from tests.system.conftest import System, system, system_config
from tests.web.browser import (
    CHROMIUM,
    CLOSE_TILES,
    FAKE_MICROPHONE_ARGS,
    MESSAGE,
    NEST_COUNT,
    TO_SCREEN,
    VIDEO_STATS,
    chromium,
    signed_in,
    wait_js,
    wait_until,
)

__all__ = ["system", "system_config"]  # the system fixtures, used here

assert CHROMIUM.exists(), "Debian's chromium is not installed: scripts/system-deps.sh installs it"

ALL_NESTS = [n.id for n in load_config().nests]
NEST = 3
COMMANDER = Actor(id="cmdr.wang", role=Role.COMMANDER)
OBSERVER = Actor(id="wall", role=Role.OBSERVER)


@pytest.fixture
def nest_ids() -> list[int]:
    return ALL_NESTS


@pytest.fixture
def sim_speed() -> float:
    # 16 simulated nests, a camera, the service and Chromium share two cores (and, in this test, one
    # process and its GIL): at 5x the page starved under load (timeouts waiting for video); 2x
    # leaves room and the flight is short
    return 2.0


@dataclass
class Service:
    system: System
    hub: VideoHub
    url: str
    app: web.Application
    sessions: Sessions


@pytest.fixture
async def service(system: System, tmp_path: Path) -> AsyncIterator[Service]:
    for sim in system.world.nests.values():  # never 5600+N: other test runs may stream at once
        sim.camera.video_port = allocate_port_base(span=1)
    controller = compose_operations(system.fleet)
    sessions = Sessions(Directory(tmp_path / "users"))  # pages signed in as after a login
    gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(system.fleet.audit))
    try:
        async with open_video(system.fleet, None) as hub:

            def video(app: web.Application, authorize: Authorize) -> None:
                add_video_routes(app, hub, authorize)

            server = WebServer(
                system.config, controller, gateway, TokenAuthority(), mounts=[video], sessions=sessions
            )
            async with TestServer(server.app, host="127.0.0.1") as http:
                yield Service(system, hub, f"http://127.0.0.1:{http.port}/", server.app, sessions)
    finally:
        await controller.aclose()


async def _open(browser: Any, service: Service, actor: Actor, host: str = "127.0.0.1") -> Any:
    page = await signed_in(browser, service.url.replace("127.0.0.1", host), service.sessions, actor)
    assert await wait_js(page, NEST_COUNT, 30, "the nests on the map") == len(ALL_NESTS)
    return page


async def test_the_page_launches_a_nest_and_shows_its_video(service: Service, tmp_path: Path) -> None:
    system = service.system
    target = destination(system.nest(NEST).home, 45.0, 1000.0)
    async with chromium(tmp_path / "profile", FAKE_MICROPHONE_ARGS) as browser:
        page = await _open(browser, service, COMMANDER)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # every nest on the map and in the list, with its state; no secret in the address bar
        assert len(ALL_NESTS) == 16
        phases = "() => [...document.querySelectorAll('#states td.phase')].map((td) => td.textContent)"
        await wait_js(page, f"() => ({phases})().filter((p) => p === 'ready').length === 16", 30, "all ready")
        who = await page.evaluate("() => document.querySelector('#who').textContent")
        assert who == "cmdr.wang (commander)"
        assert page.url == service.url

        # a real click on the map picks the point; the page's button launches there
        x, y = await page.evaluate(TO_SCREEN, [target.lat_deg, target.lon_deg])
        await page.select_option("#nest-select", str(NEST))
        # Chromium's MouseEvent carries whole pixels (26 m at this zoom): click the nearest one
        await page.mouse.click(round(x), round(y))
        picked = await page.evaluate("() => window.commandCenter.pick")
        assert picked["lat"] == pytest.approx(target.lat_deg, abs=2e-4)
        assert picked["lon"] == pytest.approx(target.lon_deg, abs=2e-4)
        await page.click("#btn-launch")
        await wait_js(page, MESSAGE, 30, "the launch accepted", ["ok", f"launch #{NEST}: accepted"])
        commands = await system.fleet.audit.commands(nest_id=NEST)  # through the API, audited
        assert [(c["method"], c["actor_id"], c["actor_role"]) for c in commands] == [
            ("launch", "cmdr.wang", "commander")
        ]

        # the drone's video: decoded frames, 1280x720, H.264; the drone on the map
        stats = await wait_js(page, VIDEO_STATS, 90, "decoded video frames", NEST)
        assert (stats["width"], stats["height"], stats["codec"]) == (1280, 720, "video/H264")
        assert stats["session"].startswith(f"{service.url}whep/nests/{NEST}/sessions/")
        drone = f"() => !!document.querySelector('#layer-drones .drone[data-nest=\"{NEST}\"] polygon')"
        await wait_js(page, drone, 30, "the drone on the map")

        # an observer's page watches the same ingest; its Return is refused, with the reason shown.
        # A browser holds one session cookie per site: the observer's page comes by another name of
        # this machine (localhost), so each page keeps its own sign-in
        observer = await _open(browser, service, OBSERVER, host="localhost")
        watching = await wait_js(observer, VIDEO_STATS, 60, "the observer's video", NEST)
        assert (watching["width"], watching["height"], watching["codec"]) == (1280, 720, "video/H264")
        assert service.hub.subscriber_count(NEST) == 2  # two viewers, one ingest
        await observer.select_option("#nest-select", str(NEST))
        await observer.click("#btn-return")
        refused = ["refused", f"return_home #{NEST} refused"]
        refusal = await wait_js(observer, MESSAGE, 90, "the refusal", refused)  # a loaded page is slow
        reason = "wall: role observer may not call return_home"  # the user, then why
        assert f"return_home #{NEST} refused (forbidden): {reason}" in refusal
        commands = await system.fleet.audit.commands(nest_id=NEST)
        assert [(c["method"], c["actor_id"], c["outcomes"][0]["outcome"]) for c in commands] == [
            ("launch", "cmdr.wang", "accepted"),
            ("return_home", "wall", "refused"),
        ]
        await observer.evaluate(CLOSE_TILES)  # as on pagehide
        await observer.close()
        await wait_until(lambda: service.hub.subscriber_count(NEST) == 1, 15, "the observer's session closed")

        # talk-back: the tile's Talk button sends the (fake) microphone to the drone's loudspeaker
        await page.click(f"#videos .tile[data-nest='{NEST}'] button.talk")
        talk_session = f"""() => {{
          const tile = window.commandCenter.videos.get({NEST});
          const audio = tile.pc && tile.pc.getSenders().some((s) => s.track && s.track.kind === "audio");
          return tile.talking && tile.session && audio;
        }}"""
        try:
            await wait_js(page, talk_session, 30, "a talk-back session")
        except AssertionError:
            pytest.fail(await page.evaluate("() => document.querySelector('#messages').textContent"))
        talking = await wait_js(page, VIDEO_STATS, 60, "the video again, now with talk-back", NEST)
        assert talking["codec"] == "video/H264"
        payload = system.world.nest(NEST).payload
        talkback = [s.talkback for s in service.app[SESSIONS].sessions.values() if s.talkback is not None]
        assert len(talkback) == 1, "one session talks"
        try:
            await wait_until(lambda: payload.clip(CLIP_IDS[0]) is not None, 60, "a clip on the loudspeaker")
        except AssertionError:
            pytest.fail(f"no clip played; talk-back: {talkback[0].stats}")
        played = [r for r in system.world.nest(NEST).ctx.recorder.all() if r.kind == "speaker.clip"]
        assert played and played[0].data["clip_id"] == CLIP_IDS[0]

        screenshot = os.environ.get("DRONECTL_SCREENSHOT")
        if screenshot:
            await _screenshot(page, system, Path(screenshot))

        # leaving: the tile DELETEs its WHEP session and, with no viewer left, the ingest stops
        await page.evaluate(CLOSE_TILES)
        await wait_until(lambda: not service.hub.ingest_running(NEST), 15, "the ingest stopped")
        assert errors == []


async def _screenshot(page: Any, system: System, path: Path) -> None:
    """The page with the drone on station, its track, and its video, zoomed in with the wheel."""
    await system.wait_phase(NEST, NestPhase.ON_STATION, timeout_s=90)
    track = f"() => (window.commandCenter.tracks.get({NEST}) || []).length >= 12"
    await wait_js(page, track, 30, "a track on the map")
    middle = destination(system.nest(NEST).home, 45.0, 500.0)
    x, y = await page.evaluate(TO_SCREEN, [middle.lat_deg, middle.lon_deg])
    await page.mouse.move(x, y)
    for _ in range(3):
        await page.mouse.wheel(0, -400)
    await wait_js(page, "() => window.commandCenter.view.w < window.commandCenter.fullView.w / 4", 5, "zoom")
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))
