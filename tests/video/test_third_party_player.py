"""A WHEP player nobody here wrote (medooze whip-whep 1.2.0, vendored in tests/web/third_party),
in Debian's Chromium, on a page of another origin, plays a nest's video (issue 18): the CORS
preflight, the token, the Location and ETag it reads, and its trickle-ICE PATCHes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.transports.web import cors
from dronectl.transports.web.server import _same_origin
from dronectl.transports.whep import add_video_routes
from dronectl.transports.whep.routes import SESSIONS
from dronectl.video import open_video
from tests.conftest import allocate_port_base
from tests.video.conftest import System, VideoSystem, authorize
from tests.web.browser import chromium, wait_js

NEST = 3
PLAYER_DIR = Path(__file__).resolve().parents[1] / "web" / "third_party" / "whip-whep-1.2.0"

# the player's page: the third-party client as its README shows it, and a record of its requests
PAGE = """<!doctype html>
<meta charset="utf-8"><title>third-party WHEP player</title>
<video id="v" autoplay muted playsinline></video>
<script type="module">
import { WHEPClient } from "./whep.js";
window.requests = [];
const fetchOf = window.fetch.bind(window);
window.fetch = async (url, options = {}) => {
  const response = await fetchOf(url, options);
  window.requests.push([options.method || "GET", response.status]);
  return response;
};
window.play = (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => {
    document.getElementById("v").srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  const client = new WHEPClient();
  window.client = client;
  client.view(pc, url, token).catch((error) => { window.failed = String(error); });
};
window.ready = true;
</script>
"""

PLAYING = """() => {
  const v = document.getElementById("v");
  if (window.failed) return {failed: window.failed};
  return v.videoWidth > 0 && v.currentTime > 1.0 ? {width: v.videoWidth, time: v.currentTime} : null;
}"""


@pytest.fixture
def nest_ids() -> list[int]:
    return [NEST]


@pytest.fixture
async def player_site() -> AsyncIterator[str]:
    """Another origin serving the player's page and its script (nothing else)."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def script(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(PLAYER_DIR / "whep.js", headers={"Content-Type": "text/javascript"})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/whep.js", script)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def cross_origin_video(system: System, player_site: str) -> AsyncIterator[VideoSystem]:
    """The video routes as ``dronectl up --whep-origin PLAYER_SITE`` mounts them."""
    for sim in system.world.nests.values():
        sim.camera.video_port = allocate_port_base(span=1)
    async with open_video(system.fleet, None) as hub:
        app = web.Application(middlewares=[cors.cors, _same_origin])
        add_video_routes(app, hub, authorize, player_origins=cors.origins_of([player_site]))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield VideoSystem(system, hub, client, app)


async def test_a_third_party_whep_player_on_another_origin_plays_the_video(
    cross_origin_video: VideoSystem, player_site: str, tmp_path: Path
) -> None:
    video = cross_origin_video
    await video.launch(NEST)
    whep_url = f"http://127.0.0.1:{video.client.port}/whep/nests/{NEST}"
    assert not whep_url.startswith(player_site)  # two origins
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(f"{player_site}/")
        await wait_js(page, "() => window.ready === true", 20, "the player's page")
        await page.evaluate("([url, token]) => window.play(url, token)", [whep_url, "observer-token"])
        playing = await wait_js(page, PLAYING, 60, "the third-party player showing video")
        assert "failed" not in playing, playing
        assert playing["width"] == 1280
        requests = await page.evaluate("() => window.requests")
        assert ["POST", 201] in requests
        # the client trickles what it gathers after its offer; each PATCH was taken (204)
        patches = [status for method, status in requests if method == "PATCH"]
        assert patches and set(patches) == {204}, requests
        sessions = list(video.app[SESSIONS].sessions.values())
        assert [(s.nest_id, s.viewer) for s in sessions] == [(NEST, "observer")]
