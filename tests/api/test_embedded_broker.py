"""The embedded broker (amqtt in-process): the API and a plain paho client work through it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr

from dronectl.domain.roles import Role
from dronectl.operations.users import Bootstrap, add_user, bootstrap
from dronectl.transports.mqtt.broker import EmbeddedBroker
from dronectl.transports.mqtt.service import serve_api
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import CommandCenter, poll_until, request
from tests.api.conftest import command_center, free_tcp_port, running_api
from tests.api.fake_controller import FakeController

ROOT = "dronectl/v1"


def _accounts(tmp_path: Path) -> tuple[Path, Bootstrap]:
    users_file = tmp_path / "users"
    add_user(users_file, "cc", Role.PILOT, "cc-password")
    return users_file, bootstrap(users_file)


async def test_api_through_the_embedded_broker(tmp_path: Path) -> None:
    port = free_tcp_port()
    users_file, account = _accounts(tmp_path)
    async with EmbeddedBroker("127.0.0.1", port, users_file=users_file) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        controller = FakeController(step_s=0.02)
        settings = MqttSettings(
            broker=broker.url,
            protocol="3.1.1",  # the embedded broker (amqtt) speaks no MQTT 5
            root=ROOT,
            username=account.service_user,
            password=SecretStr(account.service_password),
        )
        # the command center here reads everything: it logs in as the service's account
        async with (
            running_api(settings, controller),
            command_center(
                port, ROOT, username=account.service_user, password=account.service_password
            ) as cc,
        ):
            assert (await cc.wait_for(f"{ROOT}/status"))["state"] == "online"
            state = await cc.wait_for(f"{ROOT}/nests/1/state")
            assert state["phase"] == "ready"
            assert cc.messages(f"{ROOT}/nests/1/state")[0].retain
            launch = request(
                "launch",
                {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 50}},
                reply_to=f"{ROOT}/replies/cc/1",
            )
            await cc.publish(f"{ROOT}/nests/1/commands/cc", launch)
            assert (await cc.wait_for(f"{ROOT}/replies/cc/1", lambda p: p["kind"] == "reply"))["ok"] is True
            await cc.wait_for(f"{ROOT}/replies/cc/1", lambda p: p.get("state") == "succeeded")
            await cc.wait_for(f"{ROOT}/nests/1/events", lambda e: e["kind"] == "on_station")
    # stopped cleanly: the port is free again
    async with EmbeddedBroker("127.0.0.1", port, users_file=users_file):
        pass


async def test_serve_api_starts_the_embedded_broker_when_none_is_configured(tmp_path: Path) -> None:
    port = free_tcp_port()
    users_file, account = _accounts(tmp_path)
    settings = MqttSettings(
        broker=None,
        embedded_port=port,
        root=ROOT,
        username=account.service_user,
        password=SecretStr(account.service_password),
    )
    task = asyncio.create_task(serve_api(settings, FakeController(), users_file=users_file))
    try:
        async with command_center_when_up(port, "cc", "cc-password") as cc:
            assert (await cc.wait_for(f"{ROOT}/status"))["state"] == "online"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def command_center_when_up(port: int, user: str, password: str) -> AsyncIterator[CommandCenter]:
    """Connect once the broker inside serve_api listens."""

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    await poll_until(listening, timeout_s=10, what="the embedded broker")
    cc = CommandCenter("127.0.0.1", port, username=user, password=password)
    await cc.connect()
    try:
        await cc.subscribe(f"{ROOT}/status")
        yield cc
    finally:
        cc.close()
