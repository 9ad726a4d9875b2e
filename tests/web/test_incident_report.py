"""Reporting an incident over HTTP (the page's "Report incident at point"): POST /api/incidents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore
from dronectl.domain.config import load_config
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import Actor, Role
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import Sessions
from tests.api.fake_controller import FakeController
from tests.web.browser import MESSAGE, NEST_COUNT, TO_SCREEN, chromium, signed_in, wait_js
from tests.web.conftest import Web


async def _post(web: Web, body: Any, role: Role = Role.COMMANDER) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with web.client.post("/api/incidents", data=raw, headers=web.headers(role)) as res:
        try:
            return res.status, await res.json()
        except aiohttp.ContentTypeError:  # not JSON (an auth refusal is plain text)
            return res.status, await res.text()


SCENE = {"lat": 43.8600, "lon": 125.3000}


async def test_a_commander_reports_an_incident_as_themself(web_api: Web) -> None:
    status, body = await _post(
        web_api, {"kind": "accident", "position": SCENE, "priority": 1, "text": "two cars, icy ramp"}
    )
    assert status == 202 and body["state"] == "received"
    [incident] = web_api.controller.incidents
    assert incident.id == body["id"] and incident.kind == "accident" and incident.priority == 1
    assert (incident.position.lat, incident.position.lon) == (SCENE["lat"], SCENE["lon"])
    assert incident.actor.id == "commander-1" and incident.actor.role is Role.COMMANDER
    assert incident.text == "two cars, icy ramp"


async def test_the_page_sees_the_report_button_only_where_allowed(web_api: Web) -> None:
    for role, allowed in ((Role.COMMANDER, True), (Role.PILOT, False), (Role.OBSERVER, False)):
        async with web_api.client.get("/api/me", headers=web_api.headers(role)) as res:
            assert ("incident.report" in (await res.json())["methods"]) is allowed


@pytest.mark.parametrize("role", [Role.PILOT, Role.OBSERVER])
async def test_roles_the_broker_would_not_let_publish_incidents_are_forbidden(
    web_api: Web, role: Role
) -> None:
    status, _ = await _post(web_api, {"kind": "fire", "position": SCENE, "priority": 2}, role)
    assert status == 403
    assert web_api.controller.incidents == []


async def test_no_token_no_incident(web_api: Web) -> None:
    async with web_api.client.post("/api/incidents", data=b"{}") as res:
        assert res.status == 401
    assert web_api.controller.incidents == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        ({"kind": "fire", "position": SCENE}, "priority"),
        ({"kind": "fire", "position": {"lat": 95.0, "lon": 125.3}, "priority": 2}, "position.lat"),
        ({"kind": "Fire!", "position": SCENE, "priority": 2}, "kind"),
        ({"kind": "fire", "position": SCENE, "priority": 9}, "priority"),
        (  # the actor is the token's, never the body's
            {"kind": "fire", "position": SCENE, "priority": 2, "actor": {"id": "x", "role": "commander"}},
            "unexpected field 'actor'",
        ),
    ],
)
async def test_bad_reports_are_refused_with_the_reason_and_change_nothing(
    web_api: Web, body: Any, says: str
) -> None:
    status, answer = await _post(web_api, body)
    assert status == 400
    assert answer["error"] == "invalid_incident"
    assert any(says in reason for reason in answer["reasons"]), answer
    assert web_api.controller.incidents == []


async def test_the_page_reports_an_incident_at_the_picked_point(tmp_path: Path) -> None:
    """In Chromium: pick the scene on the map, choose kind and priority, report; the dispatcher
    (here the fake controller) receives it with the commander as actor."""
    base = load_config()
    config = base.model_copy(update={"nests": base.nests[:3]})
    controller = FakeController((1, 2, 3), step_s=0.05)
    sessions = Sessions(Directory(tmp_path / "users"))  # signed in below, as after a login
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
        server = WebServer(config, controller, gateway, TokenAuthority(), sessions=sessions)
        async with TestClient(TestServer(server.app)) as client, chromium(tmp_path / "profile") as browser:
            commander = Actor(id="li.wei", role=Role.COMMANDER)
            page = await signed_in(browser, str(client.make_url("/")), sessions, commander)
            await wait_js(page, NEST_COUNT, 30, "the nests on the map")
            await page.click("#btn-incident")  # no point picked yet: refused in the page
            await wait_js(page, MESSAGE, 10, "the refusal", ["refused", "pick the scene"])
            x, y = await page.evaluate(TO_SCREEN, [SCENE["lat"], SCENE["lon"]])
            await page.mouse.click(x, y)
            await page.select_option("#incident-kind", "black_ice")
            await page.select_option("#incident-priority", "1")
            await page.fill("#incident-text", "ice on the ramp")
            await page.click("#btn-incident")
            await wait_js(page, MESSAGE, 10, "the report's answer", ["ok", "reported"])
    [incident] = controller.incidents
    assert (incident.kind, incident.priority, incident.text) == ("black_ice", 1, "ice on the ramp")
    assert incident.actor.id == "li.wei"
    # where the click landed, to within a few screen pixels of the whole-city view
    assert abs(incident.position.lat - SCENE["lat"]) < 0.003
    assert abs(incident.position.lon - SCENE["lon"]) < 0.003
