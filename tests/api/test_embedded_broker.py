"""The embedded broker (amqtt in-process): the API and a plain paho client work through it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from dronectl.api.broker import EmbeddedBroker
from dronectl.api.service import serve_api
from dronectl.api.settings import MqttSettings
from tests.api.command_center import CommandCenter, poll_until, request
from tests.api.conftest import command_center, free_tcp_port, running_api
from tests.api.fake_controller import FakeController

ROOT = "dronectl/v1"


async def test_api_through_the_embedded_broker() -> None:
    port = free_tcp_port()
    async with EmbeddedBroker("127.0.0.1", port) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        controller = FakeController(step_s=0.02)
        settings = MqttSettings(broker=broker.url, root=ROOT)
        async with running_api(settings, controller), command_center(port, ROOT) as cc:
            assert (await cc.wait_for(f"{ROOT}/status"))["state"] == "online"
            state = await cc.wait_for(f"{ROOT}/nests/1/state")
            assert state["phase"] == "ready"
            assert cc.messages(f"{ROOT}/nests/1/state")[0].retain
            launch = request(
                "launch",
                {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 50}},
                reply_to=f"{ROOT}/replies/cc/1",
            )
            await cc.publish(f"{ROOT}/nests/1/commands", launch)
            assert (await cc.wait_for(f"{ROOT}/replies/cc/1", lambda p: p["kind"] == "reply"))["ok"] is True
            await cc.wait_for(f"{ROOT}/replies/cc/1", lambda p: p.get("state") == "succeeded")
            await cc.wait_for(f"{ROOT}/nests/1/events", lambda e: e["kind"] == "on_station")
    # stopped cleanly: the port is free again
    async with EmbeddedBroker("127.0.0.1", port):
        pass


async def test_serve_api_starts_the_embedded_broker_when_none_is_configured() -> None:
    port = free_tcp_port()
    settings = MqttSettings(broker=None, embedded_port=port, root=ROOT)
    task = asyncio.create_task(serve_api(settings, FakeController()))
    try:
        async with command_center_when_up(port) as cc:
            assert (await cc.wait_for(f"{ROOT}/status"))["state"] == "online"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def command_center_when_up(port: int) -> AsyncIterator[CommandCenter]:
    """Connect once the broker inside serve_api listens."""

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    await poll_until(listening, timeout_s=10, what="the embedded broker")
    async with command_center(port, ROOT) as cc:
        yield cc
