"""Fixtures for the API tests: a real Mosquitto, a unique topic root per test, a running API."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dronectl.domain.roles import Role
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import CommandCenter
from tests.api.fake_controller import FakeController


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Until ``process`` (a ``dronectl up``) has its broker's port open; its log's tail if it exits
    or the time runs out. Polled: from outside there is nothing else to wait on."""
    deadline = time.monotonic() + timeout_s
    while not _listening(port):
        assert process.poll() is None, f"dronectl up exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no broker on {port}:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


class Mosquitto:
    """A mosquitto process of our own on ``port`` (started, stopped and restarted by the test)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("no mosquitto binary: scripts/system-deps.sh installs it")
        self.process = subprocess.Popen(
            [binary, "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture(scope="session")
def mosquitto_port() -> Iterator[int]:
    """The running Mosquitto at 127.0.0.1:1883, or one of our own where none runs."""
    if _listening(1883):
        yield 1883
        return
    if mosquitto_binary() is None:
        raise RuntimeError("no Mosquitto at 127.0.0.1:1883 and no mosquitto binary to start one")
    own = Mosquitto(free_tcp_port())
    own.start()
    try:
        yield own.port
    finally:
        own.stop()


@pytest.fixture
def own_mosquitto() -> Iterator[Mosquitto]:
    broker = Mosquitto(free_tcp_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def root() -> str:
    return f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"


@dataclass
class Running:
    api: MqttApi
    controller: FakeController
    task: asyncio.Task[None]


# The roles file these tests' service reads (the broker here is anonymous: the identity tests,
# with authentication and the ACL, are in tests/identity): "cc" is the usual command center.
USERS = {"cc": Role.PILOT, "cmd": Role.COMMANDER, "dispatch": Role.COMMANDER}


@contextlib.asynccontextmanager
async def running_api(settings: MqttSettings, controller: FakeController) -> AsyncIterator[Running]:
    api = MqttApi(settings, controller, version="test", role_of=USERS.get)
    task = asyncio.create_task(api.run(), name="test.api")
    try:
        async with asyncio.timeout(10):
            await api.connected.wait()
        yield Running(api, controller, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def command_center(
    port: int, root: str, *, username: str | None = None, password: str | None = None
) -> AsyncIterator[CommandCenter]:
    cc = CommandCenter("127.0.0.1", port, username=username, password=password)
    await cc.connect()
    try:
        await cc.subscribe(f"{root}/#")
        yield cc
    finally:
        cc.close()
