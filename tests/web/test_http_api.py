"""The REST API: tokens, roles, refusal reasons, expiry, dedupe shared with MQTT, audit."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dronectl.operations.models import Role
from tests.web.conftest import TOKENS, Web, envelope, launch_args


async def _post(web: Web, path: str, body: Any, role: Role = Role.COMMANDER) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with web.client.post(path, data=raw, headers=web.headers(role)) as res:
        return res.status, await res.json()


@pytest.mark.parametrize("path", ["/api/me", "/api/config", "/api/nests", "/api/nests/1", "/api/updates"])
async def test_every_api_route_needs_a_valid_token(web_api: Web, path: str) -> None:
    async with web_api.client.get(path) as res:
        assert res.status == 401
        assert res.headers["WWW-Authenticate"].startswith("Bearer")
    async with web_api.client.get(path, headers={"Authorization": "Bearer not-a-token-we-know-of"}) as res:
        assert res.status == 401
    async with web_api.client.get(path, params={"token": "token-of-nobody-at-all"}) as res:
        assert res.status == 400  # a secret in a URL: refused whatever it is
        assert "in the URL is refused" in await res.text()


async def test_token_by_header_never_by_query(web_api: Web) -> None:
    async with web_api.client.get("/api/me", headers=web_api.headers(Role.PILOT)) as res:
        assert res.status == 200
        me = await res.json()
    assert me["actor"] == {"id": "pilot-1", "role": "pilot"}
    assert "launch" in me["methods"] and "maintenance.set" not in me["methods"]
    async with web_api.client.get("/api/me", headers=web_api.headers(Role.OBSERVER)) as res:
        assert (await res.json()) == {"actor": {"id": "observer-1", "role": "observer"}, "methods": []}
    async with web_api.client.get("/api/me", params={"token": TOKENS[Role.OBSERVER]}) as res:
        assert res.status == 400  # a good token in the URL is refused too: never used


async def test_the_page_and_its_files_are_served_without_internet(web_api: Web) -> None:
    async with web_api.client.get("/") as res:
        assert res.status == 200
        html = await res.text()
        assert "default-src 'self'" in res.headers["Content-Security-Policy"]
    assert '<script src="/static/app.js"' in html
    texts = {"index.html": html}
    for name in ("app.js", "style.css"):
        async with web_api.client.get(f"/static/{name}") as res:
            assert res.status == 200
            texts[name] = await res.text()
    for name, text in texts.items():
        text = text.replace("http://www.w3.org/2000/svg", "")  # a namespace name, never fetched
        assert "http://" not in text and "https://" not in text, f"{name} must not load anything from outside"


async def test_config_is_the_map(web_api: Web) -> None:
    async with web_api.client.get("/api/config", headers=web_api.headers(Role.OBSERVER)) as res:
        config = await res.json()
    assert [n["id"] for n in config["nests"]] == [1, 2, 3]
    assert all({"name", "lat", "lon"} <= set(n) for n in config["nests"])
    assert len(config["geofence"]["polygon"]) >= 3
    assert config["no_fly_zones"] and all(len(z["polygon"]) >= 3 for z in config["no_fly_zones"])
    assert config["video"] is False  # no video routes mounted here
    assert "mavlink" not in json.dumps(config)


async def test_nest_states(web_api: Web) -> None:
    async with web_api.client.get("/api/nests", headers=web_api.headers(Role.OBSERVER)) as res:
        states = await res.json()
    assert [s["nest_id"] for s in states] == [1, 2, 3]
    assert states[0]["phase"] == "ready"
    async with web_api.client.get("/api/nests/2", headers=web_api.headers(Role.OBSERVER)) as res:
        assert (await res.json())["nest_id"] == 2
    for missing in ("9", "02", "x"):
        async with web_api.client.get(f"/api/nests/{missing}", headers=web_api.headers(Role.OBSERVER)) as res:
            assert res.status == 404


async def test_launch_is_accepted_for_the_tokens_actor(web_api: Web) -> None:
    status, reply = await _post(web_api, "/api/nests/1/commands", envelope("c-1", "launch", launch_args()))
    assert status == 202
    assert reply == {
        "kind": "reply",
        "id": "c-1",
        "ok": True,
        "result": {"state": "accepted", "message": "preflight checks passed"},
        "error": None,
        "repeated": False,
    }
    (command,) = web_api.controller.executed
    assert (command.actor_id, command.actor_role.value, command.nest_id) == ("commander-1", "commander", 1)


async def test_roles_are_checked_with_reasons(web_api: Web) -> None:
    status, reply = await _post(
        web_api, "/api/nests/1/commands", envelope("o-1", "launch", launch_args()), Role.OBSERVER
    )
    assert status == 403
    assert reply["error"]["code"] == "forbidden"
    assert (
        reply["error"]["message"]
        == "observer-1: role observer may not call launch (allowed: pilot, commander, automation)"
    )
    status, reply = await _post(web_api, "/api/commands", envelope("p-1", "return_all"), Role.PILOT)
    assert (status, reply["error"]["code"]) == (403, "forbidden")
    status, reply = await _post(
        web_api, "/api/nests/2/commands", envelope("a-1", "control.take"), Role.AUTOMATION
    )
    assert (status, reply["error"]["code"]) == (403, "forbidden")
    assert web_api.controller.executed == []


async def test_the_actor_is_the_tokens(web_api: Web) -> None:
    body = envelope("x-1", "launch", launch_args(), actor={"id": "commander-1", "role": "commander"})
    status, _ = await _post(web_api, "/api/nests/1/commands", body, Role.OBSERVER)
    assert status == 403  # an observer cannot pass itself off as a commander
    assert web_api.controller.executed == []
    body = envelope("x-2", "hold", actor={"id": "pilot-1", "role": "pilot"})
    status, reply = await _post(web_api, "/api/nests/1/commands", body, Role.PILOT)
    assert (status, reply["ok"]) == (202, True)  # naming oneself is fine


async def test_refusals_name_their_reasons(web_api: Web) -> None:
    cases: list[tuple[str, Any, int, str]] = [
        ("/api/nests/1/commands", b"{not json", 400, "malformed"),
        ("/api/nests/1/commands", envelope("r-1", "fly_away"), 400, "unknown_method"),
        ("/api/nests/1/commands", envelope("r-2", "light.set", {"mode": "disco"}), 422, "invalid_args"),
        ("/api/nests/9/commands", envelope("r-3", "hold"), 404, "unknown_nest"),
        ("/api/nests/01/commands", envelope("r-4", "hold"), 404, "unknown_nest"),
        ("/api/commands", envelope("r-5", "launch", launch_args()), 400, "unknown_method"),
    ]
    for path, body, status, code in cases:
        got_status, reply = await _post(web_api, path, body)
        assert (got_status, reply["ok"], reply["error"]["code"]) == (status, False, code), (path, reply)
        assert reply["error"]["message"]
    _, reply = await _post(web_api, "/api/nests/1/commands", envelope("r-6", "light.set", {"mode": "disco"}))
    assert any(reason.startswith("args.mode") for reason in reply["error"]["reasons"])
    assert web_api.controller.executed == []


async def test_the_controllers_refusal_comes_back_with_reasons(web_api: Web) -> None:
    status, _ = await _post(
        web_api, "/api/nests/3/commands", envelope("m-1", "maintenance.set", {"on": True})
    )
    assert status == 202
    status, reply = await _post(web_api, "/api/nests/3/commands", envelope("m-2", "launch", launch_args(3)))
    assert status == 409
    assert reply["error"] == {
        "code": "refused",
        "message": "launch refused",
        "reasons": ["nest 3 is in maintenance"],
    }


async def test_expired_is_refused_never_executed(web_api: Web) -> None:
    old = envelope("e-1", "launch", launch_args())
    old["issued_at"] = (datetime.now(tz=UTC) - timedelta(seconds=60)).isoformat()
    status, reply = await _post(web_api, "/api/nests/1/commands", old)
    assert (status, reply["error"]["code"]) == (409, "expired")
    assert "ttl 30 s" in reply["error"]["message"]
    assert web_api.controller.executed == []
    row = await web_api.audit.first_outcome("e-1")  # audited like an MQTT refusal
    assert row is not None and (row["outcome"], row["code"]) == ("refused", "expired")


async def test_a_repeated_id_is_executed_once(web_api: Web) -> None:
    body = envelope("d-1", "launch", launch_args())
    first = await _post(web_api, "/api/nests/1/commands", body)
    second = await _post(web_api, "/api/nests/1/commands", body)
    assert first[0] == 202 and second[0] == 200
    assert second[1] == {**first[1], "repeated": True}
    assert [c.id for c in web_api.controller.executed] == ["d-1"]
    refused = envelope("d-2", "launch", launch_args(2))
    refused["issued_at"] = (datetime.now(tz=UTC) - timedelta(seconds=60)).isoformat()
    assert (await _post(web_api, "/api/nests/2/commands", refused))[0] == 409
    again = await _post(web_api, "/api/nests/2/commands", refused)
    assert again[1]["repeated"] is True and again[1]["error"]["code"] == "expired"
    assert [c.id for c in web_api.controller.executed] == ["d-1"]


async def test_dedupe_is_shared_with_mqtt(web_api: Web) -> None:
    """One gateway for both transports: an id executed over MQTT is not executed again over HTTP."""
    body = envelope("s-1", "launch", launch_args(2), actor={"id": "commander-1", "role": "commander"})
    body["reply_to"] = "dronectl/v1/replies/commander-1/1"
    async with asyncio.TaskGroup() as tasks:
        web_api.mqtt._tasks = tasks
        await web_api.mqtt._handle(
            "dronectl/v1/nests/2/commands/commander-1", json.dumps(body).encode(), retained=False
        )
    mqtt_reply = next(p for t, p in web_api.mqtt.sent if p.get("kind") == "reply")
    status, http_reply = await _post(web_api, "/api/nests/2/commands", body)
    assert status == 200
    assert http_reply == {**mqtt_reply, "repeated": True}
    assert [c.id for c in web_api.controller.executed] == ["s-1"]
    # and the other way round
    reply_to = "dronectl/v1/replies/commander-1/2"
    body = envelope("s-2", "hold", actor={"id": "commander-1", "role": "commander"}, reply_to=reply_to)
    assert (await _post(web_api, "/api/nests/1/commands", body))[0] == 202
    async with asyncio.TaskGroup() as tasks:
        web_api.mqtt._tasks = tasks
        await web_api.mqtt._handle(
            "dronectl/v1/nests/1/commands/commander-1", json.dumps(body).encode(), retained=False
        )
    while web_api.mqtt._outbox:  # repeats and refusals are published from the MQTT API's outbox
        await web_api.mqtt._outbox.popleft()()
    assert (reply_to, {**(await _post(web_api, "/api/nests/1/commands", body))[1]}) in web_api.mqtt.sent
    assert [c.id for c in web_api.controller.executed] == ["s-1", "s-2"]


async def test_an_http_refusal_is_an_event_on_mqtt_too(web_api: Web) -> None:
    await _post(web_api, "/api/nests/1/commands", envelope("v-1", "launch", launch_args()), Role.OBSERVER)
    events = [(t, p) for t, p in web_api.mqtt.sent if p.get("kind") == "command_rejected"]
    assert [t for t, _ in events] == ["dronectl/v1/nests/1/events", "dronectl/v1/events"]
    assert events[0][1]["command_id"] == "v-1" and events[0][1]["data"]["code"] == "forbidden"
