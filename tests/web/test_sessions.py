"""Logging in over HTTP with the users file: a session cookie (HttpOnly, SameSite=Strict), commands
as that user, logout, expiry; wrong logins a clear 401 (then 429 for guessing), nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore
from dronectl.domain.config import load_config
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import COOKIE, Sessions
from tests.api.fake_controller import FakeController
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.web.conftest import NESTS, envelope, launch_args


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class Site:
    client: TestClient
    controller: FakeController
    audit: AuditStore
    clock: Clock


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    base = load_config()
    config = base.model_copy(update={"nests": [n for n in base.nests if n.id in NESTS]})
    controller = FakeController(NESTS, step_s=0.05)
    users_file = tmp_path / "users"
    write_users(users_file)
    clock = Clock()
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        login_audit = LoginAudit(audit.record_login_failure, window_s=60.0, clock=clock)
        sessions = Sessions(Directory(users_file), ttl_s=600.0, clock=clock, login_audit=login_audit)
        gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
        server = WebServer(config, controller, gateway, TokenAuthority(), sessions=sessions)
        async with TestClient(TestServer(server.app)) as client:
            yield Site(client, controller, audit, clock)


async def _login(site: Site, user: str, password: str) -> int:
    async with site.client.post("/api/login", json={"user": user, "password": password}) as res:
        return res.status


async def test_login_launch_logout_and_the_old_cookie_is_refused(site: Site) -> None:
    async with site.client.get("/api/me") as res:
        assert res.status == 401
    async with site.client.post("/api/login", json={"user": "pilot-a", "password": TEST_PASSWORD}) as res:
        assert res.status == 200
        assert (await res.json())["actor"] == {"id": "pilot-a", "role": "pilot"}
        cookie = res.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert TEST_PASSWORD not in str(res.headers)
    old = cookie.value
    async with site.client.get("/api/me") as res:
        assert (await res.json())["actor"] == {"id": "pilot-a", "role": "pilot"}
    async with site.client.post(
        "/api/nests/1/commands", json=envelope("s-1", "launch", launch_args())
    ) as res:
        assert res.status == 202
    (command,) = site.controller.executed
    assert (command.actor_id, command.actor_role.value, command.channel.value) == ("pilot-a", "pilot", "http")
    async with site.client.post("/api/logout") as res:
        assert res.status == 204
    async with site.client.get("/api/me", cookies={COOKIE: old}) as res:
        assert res.status == 401  # the old cookie is worth nothing now
    async with site.client.post(
        "/api/nests/2/commands", json=envelope("s-2", "launch", launch_args(2)), cookies={COOKIE: old}
    ) as res:
        assert res.status == 401
    assert [c.id for c in site.controller.executed] == ["s-1"]


async def test_sessions_expire(site: Site) -> None:
    assert await _login(site, "watcher", TEST_PASSWORD) == 200
    async with site.client.get("/api/me") as res:
        assert res.status == 200
    site.clock.now_s += 601.0
    async with site.client.get("/api/me") as res:
        assert res.status == 401


async def test_wrong_logins_are_refused_then_throttled(site: Site) -> None:
    assert await _login(site, "pilot-a", "wrong-password") == 401
    assert await _login(site, "nobody", TEST_PASSWORD) == 401  # the same answer: no user listing
    assert await _login(site, "dronectl", "anything-at-all") == 401  # the service's account: no page
    async with site.client.post("/api/login", data=b'{"user": 5}') as res:
        assert res.status == 400
    for _ in range(4):
        assert await _login(site, "pilot-a", "another-guess") == 401
    assert await _login(site, "pilot-a", TEST_PASSWORD) == 429  # guessing: even the right one waits
    assert await _login(site, "cmdr-z", TEST_PASSWORD) == 200  # others are not concerned

    rows = await site.audit.login_failures()  # each key's first at once, the rest counted
    assert [(r["channel"], r["user_name"], r["remote_addr"], r["attempts"]) for r in rows] == [
        ("http", "pilot-a", "127.0.0.1", 1),
        ("http", "nobody", "127.0.0.1", 1),
        ("http", "dronectl", "127.0.0.1", 1),
    ]
    site.clock.now_s += 60.0
    assert await _login(site, "pilot-a", "one-more-guess") == 401  # a new window: the burst's row
    rows = await site.audit.login_failures()
    assert (rows[-1]["user_name"], rows[-1]["attempts"]) == ("pilot-a", 4 + 1 + 1)
    assert rows[-1]["first_at_unix_s"] == 1000.0 and rows[-1]["at_unix_s"] == 1060.0
    assert all(TEST_PASSWORD not in str(r) and "guess" not in str(r) for r in rows)


async def test_a_login_from_another_site_is_refused(site: Site) -> None:
    headers = {"Origin": "https://evil.example"}
    async with site.client.post(
        "/api/login", json={"user": "pilot-a", "password": TEST_PASSWORD}, headers=headers
    ) as res:
        assert res.status == 403
        assert COOKIE not in res.cookies


async def test_the_websocket_is_signed_in_by_the_session_cookie(site: Site) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await site.client.ws_connect("/api/updates")
    assert refused.value.status == 401
    assert await _login(site, "pilot-a", TEST_PASSWORD) == 200
    async with site.client.ws_connect("/api/updates") as ws:  # the cookie goes with the handshake
        hello = await ws.receive_json(timeout=10)
        assert hello["data"]["actor"] == {"id": "pilot-a", "role": "pilot"}
    async with site.client.post("/api/logout") as res:
        assert res.status == 204
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await site.client.ws_connect("/api/updates")
    assert refused.value.status == 401
