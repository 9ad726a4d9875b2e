"""Cross-origin access where a mount opened it (web.cors): a configured origin may use those paths
with a token, never with the browser's session cookie; everything else stays same-origin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.transports.web import cors
from dronectl.transports.web.server import _same_origin

Client = TestClient[web.Request, web.Application]
PLAYER = "https://player.example:8443"
POLICY = cors.CrossOrigin(
    "/whep/", frozenset({PLAYER}), ("POST", "PATCH", "DELETE", "OPTIONS"),
    ("Authorization", "Content-Type", "If-Match"), ("Location", "ETag"),
)  # fmt: skip


async def _echo(request: web.Request) -> web.Response:
    """What the handler saw: the cookie (if any) and the authorization."""
    cookie = request.headers.get("Cookie", "")
    auth = request.headers.get("Authorization", "")
    return web.json_response({"cookie": cookie, "auth": auth}, status=201, headers={"Location": "/whep/x/1"})


async def _refuse(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="no such nest")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = web.Application(middlewares=[cors.cors, _same_origin])
    app.router.add_post("/whep/nests/1", _echo)
    app.router.add_post("/whep/nests/99", _refuse)
    app.router.add_post("/api/commands", _echo)
    cors.allow(app, POLICY)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_a_preflight_from_the_configured_origin_is_answered(client: Client) -> None:
    headers = {"Origin": PLAYER, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
    async with client.options("/whep/nests/1", headers=headers) as res:
        assert res.status == 204
        assert res.headers["Access-Control-Allow-Origin"] == PLAYER
        assert "PATCH" in res.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in res.headers["Access-Control-Allow-Headers"]
        assert res.headers["Access-Control-Expose-Headers"] == "Location, ETag"
        assert "Access-Control-Allow-Credentials" not in res.headers


@pytest.mark.parametrize("origin", ["https://evil.example", "https://player.example", "null"])
async def test_a_preflight_from_another_origin_is_refused(client: Client, origin: str) -> None:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    async with client.options("/whep/nests/1", headers=headers) as res:
        assert res.status == 403
        assert "Access-Control-Allow-Origin" not in res.headers


async def test_the_configured_origin_acts_with_its_token_and_never_with_the_cookie(client: Client) -> None:
    headers = {"Origin": PLAYER, "Authorization": "Bearer t0ken", "Cookie": "dronectl_session=abc"}
    async with client.post("/whep/nests/1", headers=headers) as res:
        assert res.status == 201
        assert res.headers["Access-Control-Allow-Origin"] == PLAYER
        assert await res.json() == {"cookie": "", "auth": "Bearer t0ken"}
    # an error carries the CORS headers too, so the player can read why
    async with client.post("/whep/nests/99", headers=headers) as res:
        assert res.status == 404
        assert res.headers["Access-Control-Allow-Origin"] == PLAYER
        assert await res.text() == "no such nest"


async def test_without_a_token_the_configured_origin_is_told_to_give_one(client: Client) -> None:
    headers = {"Origin": PLAYER, "Cookie": "dronectl_session=abc"}
    async with client.post("/whep/nests/1", headers=headers) as res:
        assert res.status == 401
        assert "token" in await res.text()
        assert res.headers["Access-Control-Allow-Origin"] == PLAYER


async def test_other_origins_and_other_paths_stay_same_origin(client: Client) -> None:
    auth = {"Authorization": "Bearer t0ken"}
    async with client.post("/whep/nests/1", headers={**auth, "Origin": "https://evil.example"}) as res:
        assert res.status == 403
        assert "Access-Control-Allow-Origin" not in res.headers
    async with client.post("/api/commands", headers={**auth, "Origin": PLAYER}) as res:
        assert res.status == 403
    own = f"http://{client.host}:{client.port}"
    async with client.post("/whep/nests/1", headers={**auth, "Origin": own, "Cookie": "c=1"}) as res:
        assert res.status == 201
        assert "Access-Control-Allow-Origin" not in res.headers
        assert (await res.json())["cookie"] == "c=1"  # our own page keeps its session


@pytest.mark.parametrize(
    ("given", "origin"),
    [("https://Player.Example:8443", "https://player.example:8443"), ("http://10.1.2.3/", "http://10.1.2.3")],
)
def test_configured_origins_are_normalized(given: str, origin: str) -> None:
    assert cors.origins_of([given]) == frozenset({origin})


@pytest.mark.parametrize("bad", ["player.example", "ftp://x", "https://x/path", "https://u:p@x", "*"])
def test_a_bad_origin_is_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        cors.origins_of([bad])
