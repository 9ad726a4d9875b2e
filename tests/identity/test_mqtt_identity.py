"""Issue 12's acceptance over MQTT: the broker authenticates, the topic carries the identity.

Run against a real Mosquitto started from the shipped docker/mosquitto.conf (its users file and
ACL paths and its listener rewritten for the test) and against the embedded amqtt broker, with
paho-mqtt as the independent client and the MQTT API (its own service account) in front of a fake
controller:

- anonymous and wrong-password connections are refused by the broker;
- a pilot can launch; an observer cannot (the service, from the roles file);
- a pilot publishing under the commander's topic is dropped by the broker (never reaches anyone);
- a forged ``actor``, a ``reply_to`` under another user's prefix: refused by the service;
- incidents only from roles that may report them; nobody reads another user's replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dronectl.audit import AuditStore
from dronectl.domain.roles import Channel, Role
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.roles import acl_file
from dronectl.operations.users import Directory, add_user, bootstrap
from dronectl.transports.mqtt.broker import EmbeddedBroker
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import CommandCenter, ConnectRefused, request
from tests.api.conftest import _listening, free_tcp_port, mosquitto_binary
from tests.api.fake_controller import FakeController

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = REPO_ROOT / "docker" / "mosquitto.conf"
TARGET = {"target": {"lat": 43.90, "lon": 125.36, "alt_m": 60.0}}
PASSWORDS = {"li.wei": "pilot-password", "wang": "observer-password", "zhao": "commander-password"}
PASSWORDS["desk-1"] = "reporter-password"
ROLES = {"li.wei": Role.PILOT, "wang": Role.OBSERVER, "zhao": Role.COMMANDER, "desk-1": Role.REPORTER}


@dataclass
class Broker:
    port: int
    users_file: Path
    root: str
    service_user: str
    service_password: str
    protocol: str = "5"  # the embedded broker (amqtt) speaks MQTT 3.1.1 only


def _users(tmp_path: Path) -> tuple[Path, str, str]:
    users_file = tmp_path / "users"
    for name, role in ROLES.items():
        add_user(users_file, name, role, PASSWORDS[name])
    account = bootstrap(users_file)
    return users_file, account.service_user, account.service_password


def mosquitto_conf(users_file: Path, acl: Path, port: int) -> str:
    """docker/mosquitto.conf with this test's files and a loopback listener (no websockets)."""
    out = []
    for line in SHIPPED_CONF.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            break  # the shipped listeners come last
        if key == "password_file":
            line = f"password_file {users_file}"
        elif key == "acl_file":
            line = f"acl_file {acl}"
        elif key == "log_dest":
            line = "log_dest stderr"
        out.append(line)
    assert any(line.startswith("allow_anonymous false") for line in out)
    if os.geteuid() == 0:  # as root Mosquitto would become "mosquitto", who cannot read 0600 files
        out.append("user root")
    out.append(f"listener {port} 127.0.0.1")
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def shipped_mosquitto(tmp_path: Path, root: str) -> Iterator[Broker]:
    binary = mosquitto_binary()
    assert binary is not None, "no mosquitto binary: scripts/system-deps.sh installs it"
    users_file, service_user, service_password = _users(tmp_path)
    acl = tmp_path / "acl"
    acl.write_text(acl_file(root), encoding="utf-8")
    port = free_tcp_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(mosquitto_conf(users_file, acl, port), encoding="utf-8")
    log = (tmp_path / "mosquitto.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        for _ in range(500):
            if _listening(port) or process.poll() is not None:
                break
            time.sleep(0.02)  # polling for the port, bounded
        if process.poll() is not None or not _listening(port):
            raise RuntimeError(f"mosquitto did not start: {(tmp_path / 'mosquitto.log').read_text()}")
        yield Broker(port, users_file, root, service_user, service_password)
    finally:
        process.kill()
        process.wait(10)
        log.close()


@contextlib.asynccontextmanager
async def embedded(tmp_path: Path, root: str) -> AsyncIterator[Broker]:
    users_file, service_user, service_password = _users(tmp_path)
    port = free_tcp_port()
    async with EmbeddedBroker("127.0.0.1", port, users_file=users_file, root=root):
        yield Broker(port, users_file, root, service_user, service_password, protocol="3.1.1")


@contextlib.asynccontextmanager
async def broker_of(kind: str, tmp_path: Path) -> AsyncIterator[Broker]:
    root = f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"
    if kind == "mosquitto":
        with shipped_mosquitto(tmp_path, root) as broker:
            yield broker
    else:
        async with embedded(tmp_path, root) as broker:
            yield broker


@contextlib.asynccontextmanager
async def service(broker: Broker) -> AsyncIterator[FakeController]:
    """The MQTT API as the service runs it: its own account, roles from the roles file."""
    controller = FakeController(step_s=0.05)
    settings = MqttSettings(
        broker=f"mqtt://127.0.0.1:{broker.port}",
        root=broker.root,
        username=broker.service_user,
        password=SecretStr(broker.service_password),
        protocol=broker.protocol,
    )
    api = MqttApi(settings, controller, role_of=Directory(broker.users_file).role_of)
    task = asyncio.create_task(api.run(), name="test.api")
    try:
        async with asyncio.timeout(15):
            await api.connected.wait()
        yield controller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def client(
    broker: Broker, user: str | None, password: str | None = None
) -> AsyncIterator[CommandCenter]:
    cc = CommandCenter("127.0.0.1", broker.port, username=user, password=password)
    await cc.connect()
    try:
        yield cc
    finally:
        cc.close()


def as_user(user: str, method: str, args: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A request of ``user`` claiming no actor (the service knows who sent it)."""
    return request(method, args, user=user, **extra)


BROKERS = ["mosquitto", "embedded"]


@pytest.mark.parametrize("kind", BROKERS)
async def test_anonymous_and_wrong_passwords_are_refused(kind: str, tmp_path: Path) -> None:
    async with broker_of(kind, tmp_path) as broker:
        with pytest.raises(ConnectRefused):
            async with client(broker, None):
                pass
        with pytest.raises(ConnectRefused):
            async with client(broker, "li.wei", "not-the-password"):
                pass
        with pytest.raises(ConnectRefused):
            async with client(broker, "nobody", "pilot-password"):
                pass
        async with client(broker, "li.wei", PASSWORDS["li.wei"]):
            pass  # the right password gets in


@pytest.mark.parametrize("kind", BROKERS)
async def test_who_may_do_what_is_the_brokers_and_the_services_not_the_messages(
    kind: str, tmp_path: Path
) -> None:
    async with (
        broker_of(kind, tmp_path) as broker,
        service(broker) as controller,
        client(broker, "li.wei", PASSWORDS["li.wei"]) as pilot,
        client(broker, "wang", PASSWORDS["wang"]) as observer,
        client(broker, broker.service_user, broker.service_password) as spy,
    ):
        root = broker.root
        await spy.subscribe(f"{root}/#")  # the service's account reads everything
        await pilot.subscribe(f"{root}/replies/li.wei/#")
        await pilot.subscribe(f"{root}/nests/#")  # wide: it gets what it may read, nothing more
        await observer.subscribe(f"{root}/replies/wang/#")

        # a pilot can launch: the command runs as li.wei, a pilot, by MQTT
        launch = as_user("li.wei", "launch", TARGET, reply_to=f"{root}/replies/li.wei/1")
        await pilot.publish(f"{root}/nests/2/commands/li.wei", launch)
        reply = await pilot.wait_for(f"{root}/replies/li.wei/1", lambda p: p["kind"] == "reply")
        assert reply["ok"] is True, reply
        (command,) = controller.executed
        assert (command.actor_id, command.actor_role, command.channel) == ("li.wei", Role.PILOT, Channel.MQTT)

        # an observer cannot, whatever it claims
        watch = as_user("wang", "launch", TARGET, reply_to=f"{root}/replies/wang/1")
        await observer.publish(f"{root}/nests/3/commands/wang", watch)
        refused = await observer.wait_for(f"{root}/replies/wang/1")
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
        assert "wang: role observer may not call launch" in refused["error"]["message"]
        await pilot.wait_for(f"{root}/nests/3/state")  # the retained state reaches the wide subscription
        assert pilot.messages(f"{root}/nests/3/commands/wang") == []  # another user's command does not

        # the pilot writing under the commander's name: the broker drops it. The pilot's next
        # message (same connection, same QoS: delivered in order) shows it was never passed on.
        forged_topic = f"{root}/nests/3/commands/zhao"
        stolen = as_user("zhao", "maintenance.set", {"on": True}, reply_to=f"{root}/replies/li.wei/2")
        await pilot.publish(forged_topic, stolen)
        marker = as_user("li.wei", "hold", reply_to=f"{root}/replies/li.wei/3")
        await pilot.publish(f"{root}/nests/1/commands/li.wei", marker)
        await spy.wait_for(f"{root}/nests/1/commands/li.wei")
        await pilot.wait_for(f"{root}/replies/li.wei/3")
        assert spy.messages(forged_topic) == []
        assert stolen["id"] not in {c.id for c in controller.executed}
        assert pilot.messages(f"{root}/replies/li.wei/2") == []

        # a forged actor on one's own topic: refused by the service, with the reason
        forged = request("control.take", role="commander", user="zhao", reply_to=f"{root}/replies/li.wei/4")
        await pilot.publish(f"{root}/nests/2/commands/li.wei", forged)
        answer = await pilot.wait_for(f"{root}/replies/li.wei/4")
        assert answer["error"]["code"] == "identity"
        assert "you are li.wei (pilot)" in answer["error"]["message"]
        assert forged["id"] not in {c.id for c in controller.executed}

        # reply_to under someone else's prefix: refused, and answered under one's own
        nosy = as_user("li.wei", "hold", reply_to=f"{root}/nests/2/state")
        await pilot.publish(f"{root}/nests/2/commands/li.wei", nosy)
        own = await pilot.wait_for(f"{root}/replies/li.wei", lambda p: p["id"] == nosy["id"])
        assert own["error"]["code"] == "identity" and "reply prefix" in own["error"]["message"]
        assert not [m for m in spy.messages(f"{root}/nests/2/state") if b'"kind"' in m.payload]


@pytest.mark.parametrize("kind", BROKERS)
async def test_incidents_need_a_reporting_role_and_replies_stay_private(kind: str, tmp_path: Path) -> None:
    async with (
        broker_of(kind, tmp_path) as broker,
        service(broker) as controller,
        client(broker, "li.wei", PASSWORDS["li.wei"]) as pilot,
        client(broker, "desk-1", PASSWORDS["desk-1"]) as desk,
        client(broker, "zhao", PASSWORDS["zhao"]) as commander,
    ):
        root = broker.root
        await pilot.subscribe(f"{root}/events")
        await pilot.subscribe(f"{root}/replies/zhao/#")  # someone else's replies: never delivered
        await commander.subscribe(f"{root}/replies/zhao/#")

        def incident(user: str, role: str) -> dict[str, Any]:
            return {
                "id": f"inc-{uuid.uuid4().hex[:8]}",
                "kind": "traffic_accident",
                "position": {"lat": 43.88, "lon": 125.33},
                "priority": 1,
                "reported_at": "2026-01-13T08:30:00Z",
                "actor": {"id": user, "role": role},
            }

        by_pilot = incident("li.wei", "pilot")
        await pilot.publish(f"{root}/incidents/li.wei", by_pilot)
        rejected = await pilot.wait_for(f"{root}/events", lambda e: e["kind"] == "command_rejected")
        assert rejected["data"]["code"] == "forbidden" and "may not report incidents" in rejected["message"]

        by_desk = incident("desk-1", "reporter")
        await desk.publish(f"{root}/incidents/desk-1", by_desk)
        await pilot.wait_until(
            lambda: [i.id for i in controller.incidents] == [by_desk["id"]], what="incident"
        )

        order = as_user("zhao", "return_all", reply_to=f"{root}/replies/zhao/1")
        await commander.publish(f"{root}/commands/zhao", order)
        done = await commander.wait_for(f"{root}/replies/zhao/1", lambda p: p["kind"] == "reply")
        assert done["ok"] is True
        assert pilot.messages(f"{root}/replies/zhao/1") == []


async def test_the_embedded_broker_throttles_password_guessing(tmp_path: Path) -> None:
    async with broker_of("embedded", tmp_path) as broker:
        for _ in range(5):
            with pytest.raises(ConnectRefused):
                async with client(broker, "li.wei", "a-guess"):
                    pass
        with pytest.raises(ConnectRefused):  # the right password now waits its turn too
            async with client(broker, "li.wei", PASSWORDS["li.wei"]):
                pass
        async with client(broker, "zhao", PASSWORDS["zhao"]):
            pass  # other users are not locked out


async def test_the_embedded_broker_audits_refused_logins_folded(tmp_path: Path) -> None:
    users_file, _, _ = _users(tmp_path)
    port = free_tcp_port()
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        login_audit = LoginAudit(store.record_login_failure, window_s=3600.0)
        broker = Broker(port, users_file, "dronectl/v1", "", "")
        async with EmbeddedBroker("127.0.0.1", port, users_file=users_file, login_audit=login_audit):
            for password in ["guess-1", "guess-2", "guess-3", "guess-4", "guess-5", "guess-6"]:
                with pytest.raises(ConnectRefused):
                    async with client(broker, "li.wei", password):
                        pass
            with pytest.raises(ConnectRefused):
                async with client(broker, None):
                    pass
            async with client(broker, "zhao", PASSWORDS["zhao"]):
                pass  # a good login leaves no row
            rows = await store.login_failures()
            assert [(r["channel"], r["user_name"], r["remote_addr"], r["attempts"]) for r in rows] == [
                ("mqtt", "li.wei", "127.0.0.1", 1),  # the first at once; the next five counted
                ("mqtt", "", "127.0.0.1", 1),
            ]
            assert rows[0]["reason"] == "unknown user or wrong password"
            await login_audit.flush()  # the window (an hour) is not over: nothing more yet
            assert len(await store.login_failures()) == 2
            (burst,) = login_audit.bursts.drain()
            assert (burst.user_name, burst.attempts) == ("li.wei", 5)
            assert burst.reason == "too many failed logins; wait a minute"  # the sixth: throttled
        assert not _files_hold(tmp_path, "audit.sqlite3*", b"guess-")  # never a password


def _files_hold(directory: Path, pattern: str, text: bytes) -> list[Path]:
    return [path for path in directory.glob(pattern) if text in path.read_bytes()]
