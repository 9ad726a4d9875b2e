"""Which embedded broker by default: a test matrix, not taste (issue 18).

Both embedded brokers, configured as ``dronectl up`` runs them (the users file, the ACL of
roles.py, no anonymous clients), are tried with Mosquitto's own clients, ``mosquitto_pub`` and
``mosquitto_sub``, on what the MQTT API relies on:

| feature        | what is checked                                                          |
|----------------|--------------------------------------------------------------------------|
| mqtt5          | an MQTT 5 CONNECT is answered and a publish goes through                 |
| mqtt311        | the same with MQTT 3.1.1                                                 |
| retained       | a retained message reaches a subscriber that comes later                 |
| qos_downgrade  | a QoS 0 message reaches a QoS 1 subscription as QoS 0 (the lower of both)|
| last_will      | a client that vanishes (kill -9) has its last will published             |

``EXPECTED`` is the matrix measured here; a broker whose behaviour changes fails its cell and
the choice is revisited. Mosquitto passes every row; amqtt 0.12 fails MQTT 5 (no CONNACK: the
client waits) and the QoS downgrade, so Mosquitto is the default wherever the machine has it
(dronectl/transports/mqtt/mosquitto.py) and amqtt the fallback. A browser MQTT client (MQTT.js,
vendored in tests/web/third_party) receives the fleet's retained state from the embedded
Mosquitto over WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from dronectl.operations.users import Directory
from dronectl.transports.mqtt.broker import EmbeddedBroker
from dronectl.transports.mqtt.mosquitto import MosquittoBroker, _ipv4_of, find_mosquitto
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import poll_until
from tests.api.conftest import free_tcp_port
from tests.api.fake_controller import FakeController
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.web.browser import CHROMIUM, chromium, wait_js

PUB, SUB, STDBUF = shutil.which("mosquitto_pub"), shutil.which("mosquitto_sub"), shutil.which("stdbuf")
assert PUB and SUB and STDBUF, "mosquitto-clients is not installed: scripts/system-deps.sh installs it"
assert find_mosquitto(), "no mosquitto 2: scripts/system-deps.sh installs it"
MQTT_JS = Path(__file__).resolve().parents[1] / "web" / "third_party" / "mqtt-5.10.1" / "mqtt.min.js"
WAIT_S = 5.0  # how long a client waits for the broker before the cell is marked failed

FEATURES = ("mqtt5", "mqtt311", "retained", "qos_downgrade", "last_will")
EXPECTED = {
    "mosquitto": dict.fromkeys(FEATURES, True),
    "amqtt": {"mqtt5": False, "mqtt311": True, "retained": True, "qos_downgrade": False, "last_will": True},
}


@dataclass
class Running:
    port: int
    root: str
    service: tuple[str, str]  # the service's account: writes the whole tree
    observer: tuple[str, str]  # a user of the roles file: reads the public tree
    mosquitto: MosquittoBroker | None = None  # the broker, when it is Mosquitto


@contextlib.asynccontextmanager
async def broker(kind: str, tmp_path: Path, ws_port: int | None = None) -> AsyncIterator[Running]:
    users_file = tmp_path / "users"
    account = write_users(users_file)
    root = f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"
    port = free_tcp_port()
    running = Running(
        port, root, (account.service_user, account.service_password), ("observer-1", TEST_PASSWORD)
    )
    if kind == "mosquitto":
        async with MosquittoBroker("127.0.0.1", port, users_file=users_file, root=root, ws_port=ws_port) as m:
            running.mosquitto = m
            yield running
    else:
        async with EmbeddedBroker("127.0.0.1", port, users_file=users_file, root=root):
            yield running


def _login(user: tuple[str, str]) -> list[str]:
    return ["-u", user[0], "-P", user[1]]


async def _run(*args: str, timeout_s: float = WAIT_S) -> tuple[int | None, str]:
    """A client to its end; None as the exit code if it had to be killed after ``timeout_s``."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return None, out.decode()
    return proc.returncode, out.decode()


@contextlib.asynccontextmanager
async def _subscriber(b: Running, topic: str, *extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``mosquitto_sub -d`` as the observer, once its SUBACK came (debug lines on stdout)."""
    assert SUB and STDBUF
    proc = await asyncio.create_subprocess_exec(
        STDBUF, "-oL", SUB, "-h", "127.0.0.1", "-p", str(b.port), *_login(b.observer),
        "-t", topic, "-d", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(WAIT_S):
            while b"SUBACK" not in (line := await proc.stdout.readline()):
                assert line, "mosquitto_sub ended before it subscribed"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _read_until(proc: asyncio.subprocess.Process, needle: str) -> str | None:
    """The first stdout line holding ``needle`` within WAIT_S, or None."""
    assert proc.stdout is not None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_S):
            while line := (await proc.stdout.readline()).decode():
                if needle in line:
                    return line
    return None


async def feature(name: str, b: Running) -> bool:
    assert PUB and SUB
    state = f"{b.root}/nests/1/state"
    service = ["-h", "127.0.0.1", "-p", str(b.port), *_login(b.service)]
    if name in ("mqtt5", "mqtt311"):
        code, _ = await _run(PUB, "-V", name.replace("mqtt5", "mqttv5").replace("mqtt311", "mqttv311"),
                             *service, "-t", f"{b.root}/status", "-m", "hello", "-q", "1")  # fmt: skip
        return code == 0
    if name == "retained":
        code, _ = await _run(PUB, *service, "-t", state, "-m", "kept", "-r", "-q", "1")
        if code != 0:
            return False
        code, out = await _run(
            SUB, "-h", "127.0.0.1", "-p", str(b.port), *_login(b.observer), "-t", state, "-C", "1", "-W", "5"
        )
        return code == 0 and out.strip() == "kept"
    if name == "qos_downgrade":  # telemetry goes out at QoS 0: a QoS 1 subscriber gets QoS 0
        async with _subscriber(b, state, "-q", "1") as sub:
            code, _ = await _run(PUB, *service, "-t", state, "-m", "q0", "-q", "0")
            line = await _read_until(sub, "received PUBLISH")
        return code == 0 and line is not None and "q0" in line
    if name == "last_will":
        status = f"{b.root}/status"
        async with _subscriber(b, status) as sub:
            assert STDBUF
            leaver = await asyncio.create_subprocess_exec(
                STDBUF, "-oL", SUB, *service, "-t", f"{b.root}/events", "-d",
                "--will-topic", status, "--will-payload", "gone", "--will-qos", "1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert leaver.stdout is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WAIT_S):
                    while b"SUBACK" not in (line := await leaver.stdout.readline()) and line:
                        pass
            leaver.send_signal(signal.SIGKILL)
            await leaver.wait()
            line = await _read_until(sub, "gone")
        return line is not None
    raise AssertionError(name)


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses beyond loopback."""
    found = [_ipv4_of(name) for _, name in socket.if_nameindex() if name != "lo"]
    return [a for a in found if a is not None and not a.startswith("127.")]


async def _board(_: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>board</title>", content_type="text/html")


async def _mqtt_js(_: web.Request) -> web.FileResponse:
    return web.FileResponse(MQTT_JS)


@pytest.mark.parametrize("name", FEATURES)
@pytest.mark.parametrize("kind", sorted(EXPECTED))
async def test_broker_matrix(kind: str, name: str, tmp_path: Path) -> None:
    async with broker(kind, tmp_path) as b:
        assert await feature(name, b) is EXPECTED[kind][name], f"{kind} {name}: the matrix changed"


async def test_the_embedded_mosquitto_speaks_websockets_to_a_browser_client(tmp_path: Path) -> None:
    """MQTT.js in Chromium, over ws://, signs in as a user and receives every nest's retained state
    as the service publishes it through the embedded Mosquitto."""
    assert CHROMIUM.exists(), "Debian's chromium is not installed: scripts/system-deps.sh installs it"
    ws_port = free_tcp_port()
    async with broker("mosquitto", tmp_path, ws_port=ws_port) as b:
        # on loopback only, as asked (libwebsockets alone would listen on every interface)
        for address in _other_addresses():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, ws_port), timeout=2).close()
        settings = MqttSettings(
            broker=f"mqtt://127.0.0.1:{b.port}",
            root=b.root,
            username=b.service[0],
            password=SecretStr(b.service[1]),
        )
        api = MqttApi(settings, FakeController(), role_of=Directory(tmp_path / "users").role_of)
        task = asyncio.create_task(api.run())
        try:
            async with asyncio.timeout(15):
                await api.connected.wait()
            # a dashboard page of its own (Chromium lets a page on loopback reach loopback)
            app = web.Application()
            app.router.add_get("/", _board)
            app.router.add_get("/mqtt.min.js", _mqtt_js)
            async with TestServer(app) as site, chromium(tmp_path / "profile") as browser:
                page = await browser.new_page()
                said: list[str] = []
                page.on("console", lambda m: said.append(m.text))
                page.on("pageerror", lambda exc: said.append(str(exc)))
                await page.goto(str(site.make_url("/")))
                await page.add_script_tag(url="/mqtt.min.js")
                await page.evaluate(
                    """([url, user, password, topic]) => {
                      window.states = {};
                      const c = mqtt.connect(url, {username: user, password, protocolVersion: 5});
                      c.on('connect', () => c.subscribe(topic, {qos: 1}));
                      c.on('error', (e) => console.log('mqtt error: ' + e.message));
                      c.on('message', (t, payload) => {
                        const s = JSON.parse(new TextDecoder().decode(payload));
                        window.states[s.nest_id] = s.phase;
                      });
                    }""",
                    [f"ws://127.0.0.1:{ws_port}/", b.observer[0], b.observer[1], f"{b.root}/nests/+/state"],
                )
                try:
                    states = await wait_js(
                        page,
                        "() => Object.keys(window.states).length === 3 && window.states",
                        15,
                        "three states",
                    )
                except AssertionError as exc:
                    raise AssertionError(f"{exc}; the page said {said}") from None
                assert states == {"1": "ready", "2": "ready", "3": "ready"}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_the_embedded_mosquitto_is_started_again_if_it_dies(tmp_path: Path) -> None:
    """kill -9 of the broker while the service runs: it is started again on the same ports, the
    service's MQTT API reconnects to it, and a subscriber gets the fleet's state again."""
    async with broker("mosquitto", tmp_path) as b:
        settings = MqttSettings(
            broker=f"mqtt://127.0.0.1:{b.port}",
            root=b.root,
            username=b.service[0],
            password=SecretStr(b.service[1]),
            reconnect_max_s=1.0,
        )
        api = MqttApi(settings, FakeController(), role_of=Directory(tmp_path / "users").role_of)
        task = asyncio.create_task(api.run())
        try:
            async with asyncio.timeout(15):
                await api.connected.wait()
            mosquitto = b.mosquitto
            assert mosquitto is not None and mosquitto._proc is not None
            os.kill(mosquitto._proc.pid, signal.SIGKILL)
            await poll_until(lambda: mosquitto.restarts == 1, timeout_s=15.0, what="Mosquitto started again")
            await poll_until(lambda: api.connections == 2, timeout_s=15.0, what="the service back on it")
            assert SUB is not None
            code, out = await _run(
                SUB, "-h", "127.0.0.1", "-p", str(b.port), *_login(b.observer),
                "-t", f"{b.root}/nests/2/state", "-C", "1", "-W", "5",
            )  # fmt: skip
            assert code == 0 and json.loads(out)["nest_id"] == 2
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
