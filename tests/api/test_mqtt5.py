"""MQTT 5 natively, tried with the tools people already have: Mosquitto's own ``mosquitto_pub``
and ``mosquitto_sub`` (``-V mqttv5`` and ``-V mqttv311``) against a real Mosquitto and the
service's MQTT API (over the fake controller).

- A request with the standard Response Topic and Correlation Data properties (and no
  ``reply_to`` in its payload) is answered on its Response Topic, every answer carrying its
  Correlation Data; the Message Expiry Interval stands in for ``ttl_s``.
- A request nobody can be answered on (no ``reply_to``, no Response Topic) is refused with an
  event and never runs; one whose Response Topic is not the sender's own is refused, the answer
  going to the sender's own reply prefix.
- Retained state reaches MQTT 5 and MQTT 3.1.1 subscribers alike.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import CommandCenter, request
from tests.api.conftest import command_center, running_api
from tests.api.fake_controller import FakeController

PUB = shutil.which("mosquitto_pub")
SUB = shutil.which("mosquitto_sub")
STDBUF = shutil.which("stdbuf")  # coreutils: mosquitto_sub's lines as they come, not at exit
assert PUB and SUB and STDBUF, "mosquitto-clients is not installed: scripts/system-deps.sh installs it"
TARGET = {"target": {"lat": 43.90, "lon": 125.36, "alt_m": 60.0}}


class Subscriber:
    """``mosquitto_sub`` printing topic, correlation data and payload of each message, one line each."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[tuple[str, str, Any]] = []

    async def next(self, timeout_s: float = 10.0) -> tuple[str, str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                raw = (await self.proc.stdout.readline()).decode()
                if not raw:
                    raise AssertionError(f"mosquitto_sub ended: {await self._stderr()}")
                if raw.startswith("MSG\t"):
                    _, topic, correlation, payload = raw.rstrip("\n").split("\t", 3)
                    line = (topic, correlation, json.loads(payload))
                    self.lines.append(line)
                    return line

    async def _stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()


@asynccontextmanager
async def subscribed(port: int, topic: str, version: str = "mqttv5") -> AsyncIterator[Subscriber]:
    """A ``mosquitto_sub`` subscribed (its SUBACK seen) to ``topic``."""
    assert SUB is not None and STDBUF is not None
    proc = await asyncio.create_subprocess_exec(
        STDBUF, "-oL", SUB, "-V", version, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-d",
        "-F", "MSG\t%t\t%D\t%p",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(10):
            while b"SUBACK" not in (line := await proc.stdout.readline()):
                assert line, "mosquitto_sub ended before it subscribed"
        yield Subscriber(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def pub(port: int, topic: str, payload: dict[str, Any], *props: tuple[str, str]) -> None:
    """``mosquitto_pub -V mqttv5`` with the PUBLISH properties ``props`` (-D publish NAME VALUE)."""
    assert PUB is not None
    args = [PUB, "-V", "mqttv5", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic]
    for name, value in props:
        args += ["-D", "publish", name, value]
    proc = await asyncio.create_subprocess_exec(
        *args, "-m", json.dumps(payload), stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


def _settings(port: int, root: str) -> MqttSettings:
    return MqttSettings(broker=f"mqtt://127.0.0.1:{port}", root=root)  # MQTT 5 by default


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


async def test_a_request_is_answered_on_its_response_topic_with_its_correlation_data(
    mosquitto_port: int, root: str
) -> None:
    controller = FakeController(step_s=0.02)
    response_topic = f"{root}/replies/cc/desk-7"
    correlation = uuid.uuid4().hex
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        subscribed(mosquitto_port, f"{response_topic}/#") as sub,
    ):
        launch = _without(request("launch", TARGET), "reply_to", "ttl_s")
        await pub(
            mosquitto_port,
            f"{root}/nests/2/commands/cc",
            launch,
            ("response-topic", f"{response_topic}/launch"),
            ("correlation-data", correlation),
            ("message-expiry-interval", "30"),
        )
        topic, got_correlation, reply = await sub.next()
        assert topic == f"{response_topic}/launch" and got_correlation == correlation
        assert reply["kind"] == "reply" and reply["id"] == launch["id"] and reply["ok"] is True
        while True:  # every progress message carries it too, to the end
            topic, got_correlation, progress = await sub.next()
            assert (topic, got_correlation, progress["kind"]) == (
                f"{response_topic}/launch",
                correlation,
                "progress",
            )
            if progress["state"] == "succeeded":
                break
        [command] = controller.executed
        # the message's expiry stood in for ttl_s: the deadline 30 s after it was read
        assert command.deadline_unix_s == pytest.approx(command.received_at_unix_s + 30.0, abs=0.5)


async def test_a_request_nobody_can_be_answered_on_is_refused_with_an_event(
    mosquitto_port: int, root: str
) -> None:
    controller = FakeController(step_s=0.02)
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        subscribed(mosquitto_port, f"{root}/events") as events,
    ):
        hold = _without(request("hold"), "reply_to")
        await pub(mosquitto_port, f"{root}/nests/1/commands/cc", hold)
        _, _, event = await events.next()
        assert event["kind"] == "command_rejected" and event["command_id"] == hold["id"]
        assert event["data"]["code"] == "no_reply_address" and "reply_to" in event["message"]
        assert controller.executed == []


async def test_a_response_topic_not_the_senders_own_is_refused_to_its_own_prefix(
    mosquitto_port: int, root: str
) -> None:
    controller = FakeController(step_s=0.02)
    correlation = "c-0042"
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        subscribed(mosquitto_port, f"{root}/replies/#") as sub,
    ):
        hold = _without(request("hold"), "reply_to")
        await pub(
            mosquitto_port,
            f"{root}/nests/1/commands/cc",
            hold,
            ("response-topic", f"{root}/replies/cmd/stolen"),  # another user's replies
            ("correlation-data", correlation),
        )
        topic, got_correlation, reply = await sub.next()
        assert topic == f"{root}/replies/cc" and got_correlation == correlation
        assert reply["ok"] is False and reply["error"]["code"] == "identity"
        assert controller.executed == []


async def test_without_ttl_or_message_expiry_a_request_is_refused_and_said_why(
    mosquitto_port: int, root: str
) -> None:
    controller = FakeController(step_s=0.02)
    response_topic = f"{root}/replies/cc/t"
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        subscribed(mosquitto_port, response_topic) as sub,
    ):
        hold = _without(request("hold"), "reply_to", "ttl_s")
        await pub(mosquitto_port, f"{root}/nests/1/commands/cc", hold, ("response-topic", response_topic))
        _, _, reply = await sub.next()
        assert reply["ok"] is False and reply["error"]["code"] == "malformed"
        assert any("Message Expiry Interval" in r for r in reply["error"]["reasons"])
        assert controller.executed == []


@pytest.mark.parametrize("version", ["mqttv5", "mqttv311"])
async def test_retained_state_reaches_mqtt5_and_mqtt311_subscribers(
    mosquitto_port: int, root: str, version: str
) -> None:
    async with (
        running_api(_settings(mosquitto_port, root), FakeController()),
        subscribed(mosquitto_port, f"{root}/nests/3/state", version) as sub,
    ):
        topic, _, state = await sub.next()
        assert topic == f"{root}/nests/3/state" and state["nest_id"] == 3 and state["phase"] == "ready"


async def test_the_mqtt_3_1_1_envelope_still_works_beside(mosquitto_port: int, root: str) -> None:
    """reply_to and id in the payload, as a 3.1.1 client sends them (the service speaks 5)."""
    controller = FakeController(step_s=0.02)
    cc: CommandCenter
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        command_center(mosquitto_port, root) as cc,
    ):
        reply_to = f"{root}/replies/cc/v311"
        hold = request("hold", reply_to=reply_to, issued_at=datetime.now(UTC))
        await cc.publish(f"{root}/nests/1/commands/cc", hold)
        reply = await cc.wait_for(reply_to, lambda p: p["kind"] == "reply")
        assert reply["ok"] is True and reply["id"] == hold["id"]
