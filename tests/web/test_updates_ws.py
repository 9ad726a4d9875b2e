"""The WebSocket: states on connect, telemetry, events, progress to the sender's pages only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import ClientWebSocketResponse

from dronectl.operations.models import Actor, Role
from dronectl.transports.web.updates import QUEUE_MESSAGES, _Page
from tests.web.conftest import TOKENS, Web, envelope, launch_args


async def _until(
    ws: ClientWebSocketResponse, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0
) -> list[dict[str, Any]]:
    """Messages received until one matches (included); fails after timeout_s."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout_s):
        while True:
            msg = json.loads(await ws.receive_str())
            seen.append(msg)
            if predicate(msg):
                return seen


async def test_a_page_gets_hello_every_state_and_telemetry(web_api: Web) -> None:
    async with web_api.client.ws_connect("/api/updates", headers=web_api.headers(Role.OBSERVER)) as ws:
        hello = json.loads(await ws.receive_str())
        assert hello == {
            "type": "hello",
            "data": {"actor": {"id": "observer-1", "role": "observer"}, "nests": [1, 2, 3]},
        }
        seen = await _until(ws, lambda m: m["type"] == "telemetry" and m["data"]["nest_id"] == 3)
        states = [m["data"]["nest_id"] for m in seen if m["type"] == "state"]
        assert states[:3] == [1, 2, 3]
        # telemetry goes on at the configured rate (10 Hz docked here)
        more = await _until(ws, lambda m: m["type"] == "telemetry" and m["data"]["nest_id"] == 1)
        assert more[-1]["data"]["heading_deg"] == 90.0


async def test_progress_goes_to_the_senders_pages_and_events_to_all(web_api: Web) -> None:
    client = web_api.client
    async with (
        client.ws_connect("/api/updates", headers=web_api.headers(Role.COMMANDER)) as commander,
        # a WebSocket client that cannot set headers offers its token as a subprotocol
        client.ws_connect(
            "/api/updates", protocols=("dronectl", f"bearer.{TOKENS[Role.OBSERVER]}")
        ) as observer,
    ):
        await _until(commander, lambda m: m["type"] == "hello")
        await _until(observer, lambda m: m["type"] == "hello")
        assert observer.protocol == "dronectl"  # answered, never echoing the token
        async with client.post(
            "/api/nests/2/commands",
            json=envelope("w-1", "launch", launch_args(2)),
            headers=web_api.headers(Role.COMMANDER),
        ) as res:
            assert res.status == 202
        done = await _until(
            commander, lambda m: m["type"] == "progress" and m["data"]["state"] == "succeeded"
        )
        states = [m["data"]["state"] for m in done if m["type"] == "progress"]
        assert states[0] == "accepted" and states[-1] == "succeeded" and "in_progress" in states
        assert done[-1]["data"]["id"] == "w-1" and done[-1]["data"]["result"] == {"flight_id": "flight-w-1"}
        seen = await _until(observer, lambda m: m["type"] == "event" and m["data"]["kind"] == "on_station")
        assert any(m["type"] == "state" and m["data"]["phase"] == "en_route" for m in seen)
        assert not any(m["type"] == "progress" for m in seen), "progress goes to the sender's pages only"


async def test_a_refusal_is_an_event_on_every_page(web_api: Web) -> None:
    async with web_api.client.ws_connect("/api/updates", headers=web_api.headers(Role.OBSERVER)) as ws:
        await _until(ws, lambda m: m["type"] == "hello")
        async with web_api.client.post(
            "/api/nests/1/commands", json=envelope("f-1", "abort"), headers=web_api.headers(Role.AUTOMATION)
        ) as res:
            assert res.status == 403
        seen = await _until(ws, lambda m: m["type"] == "event" and m["data"]["kind"] == "command_rejected")
        event = seen[-1]["data"]
        assert event["command_id"] == "f-1" and event["data"]["code"] == "forbidden"
        assert "role automation may not call abort" in event["message"]


async def test_a_page_that_cannot_keep_up_is_told_to_reconnect() -> None:
    page = _Page(Actor(id="x", role=Role.OBSERVER))
    for n in range(QUEUE_MESSAGES + 10):
        page.offer(f"m{n}")
    assert page.overflowed
    items = [page.queue.get_nowait() for _ in range(page.queue.qsize())]
    assert items[-1] is None  # the end marker: the sender closes the socket
    assert items[:-1] == [f"m{n}" for n in range(1, QUEUE_MESSAGES)]
