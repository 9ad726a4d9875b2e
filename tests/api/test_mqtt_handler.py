"""The API's handling of the controller's answers, without a broker (publishes are captured)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiomqtt import Message
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dronectl.audit import AuditUnavailableError
from dronectl.domain.roles import Role
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.models import ProgressState
from dronectl.operations.port import Command, CommandUpdate
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.capturing import CapturingMqttApi
from tests.api.fake_controller import FakeController

NOW = datetime(2025, 1, 13, 8, 30, tzinfo=UTC)
TOPIC = "dronectl/v1/nests/1/commands/p"


class CrashingController(FakeController):
    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        self.executed.append(command)
        raise RuntimeError("bug")
        yield  # pragma: no cover - makes this an async generator


class CapturingApi(CapturingMqttApi):
    def __init__(self, controller: FakeController) -> None:
        super().__init__(
            MqttSettings(broker="mqtt://127.0.0.1:1"),
            controller,
            clock=lambda: NOW.timestamp(),
            role_of={"p": Role.PILOT}.get,
        )


def _payload(command_id: str, method: str = "hold") -> bytes:
    return json.dumps(
        {
            "id": command_id,
            "method": method,
            "actor": {"id": "p", "role": "pilot"},
            "issued_at": NOW.isoformat(),
            "ttl_s": 10,
            "reply_to": "dronectl/v1/replies/p/1",
        }
    ).encode()


async def _run(api: CapturingApi, *payloads: bytes) -> None:
    async with asyncio.TaskGroup() as tasks:
        api._tasks = tasks
        for payload in payloads:
            await api._handle(TOPIC, payload, retained=False)
            await asyncio.sleep(0)
            while api._outbox:  # refusals and repeats are published from the outbox
                await api._outbox.popleft()()


async def test_a_crashing_controller_is_answered_internal() -> None:
    api = CapturingApi(CrashingController(clock=lambda: NOW.timestamp()))
    await _run(api, _payload("x"))
    assert api.sent == [
        (
            "dronectl/v1/replies/p/1",
            {
                "kind": "reply",
                "id": "x",
                "ok": False,
                "result": None,
                "repeated": False,
                "error": {
                    "code": "internal",
                    "message": "the controller gave no answer to this command",
                    "reasons": [],
                },
            },
        )
    ]
    await _run(api, _payload("x"))  # a retry gets the same answer and runs nothing
    assert api.sent[-1][1]["repeated"] is True
    assert len(api.controller.executed) == 1  # type: ignore[attr-defined]


async def test_refusal_sends_no_progress_and_success_sends_all() -> None:
    api = CapturingApi(FakeController(clock=lambda: NOW.timestamp()))
    await _run(api, _payload("rtl", "return_home"), _payload("hold"))
    rtl = [p for t, p in api.sent if p.get("id") == "rtl"]
    assert [p["kind"] for p in rtl] == ["reply"] and rtl[0]["error"]["code"] == "refused"
    hold = [(p["kind"], p.get("state")) for t, p in api.sent if p.get("id") == "hold"]
    assert hold == [("reply", None), ("progress", "accepted"), ("progress", "succeeded")]


class SlowToAnswer(FakeController):
    """Gives its first answer only when told to."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answer = asyncio.Event()

    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        self.executed.append(command)
        await self.answer.wait()
        yield CommandUpdate(ProgressState.ACCEPTED)
        yield CommandUpdate(ProgressState.SUCCEEDED)


async def test_copies_of_a_pending_command_are_each_answered_once_it_answers() -> None:
    controller = SlowToAnswer(clock=lambda: NOW.timestamp())
    api = CapturingApi(controller)
    async with asyncio.TaskGroup() as tasks:
        api._tasks = tasks
        for _ in range(3):  # back to back: the first runs, the copies wait for its first outcome
            await api._handle(TOPIC, _payload("slow"), retained=False)
        await asyncio.sleep(0)
        assert api.sent == [] and len(controller.executed) == 1
        controller.answer.set()
    replies = [p for _, p in api.sent if p["kind"] == "reply"]
    assert sorted((r["id"], r["ok"], r["repeated"]) for r in replies) == [
        ("slow", True, False),
        ("slow", True, True),
        ("slow", True, True),
    ]
    assert len(controller.executed) == 1


async def test_a_refusal_the_audit_store_cannot_record_is_still_answered() -> None:
    class FailingStore:
        async def record_command(self, record: object) -> None:
            raise AuditUnavailableError("the database is away")

    api = CapturingApi(FakeController(clock=lambda: NOW.timestamp()))
    api.gateway.outcomes = AuditOutcomes(FailingStore())  # type: ignore[arg-type]
    await _run(api, _payload("forbidden", "maintenance.set"))
    (reply,) = [p for _, p in api.sent if p["kind"] == "reply"]
    assert reply["id"] == "forbidden" and reply["error"]["code"] == "forbidden"


def test_a_message_on_a_topic_not_subscribed_is_dropped_before_anything_else() -> None:
    """A broker that sends more than was asked must not confuse the service: only messages whose
    topic matches a subscription are queued (the MQTT 5 properties taken with them)."""
    api = CapturingApi(FakeController(clock=lambda: NOW.timestamp()))
    api._take_in(Message("dronectl/v1/nests/1/state", _payload("a"), 1, False, 1, None))
    api._take_in(Message("elsewhere/nests/1/commands/p", _payload("b"), 1, False, 2, None))
    assert api.received == 0 and api.backlog.take() is None
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "dronectl/v1/replies/p/c"
    props.CorrelationData = b"\x00\x01"
    props.MessageExpiryInterval = 12
    api._take_in(Message(TOPIC, _payload("c"), 1, False, 3, props))
    item = api.backlog.take()
    assert api.received == 1 and item is not None and item.topic == TOPIC
    assert item.correlation == b"\x00\x01" and item.delivery is not None
    assert (item.delivery.response_topic, item.delivery.expiry_s) == ("dronectl/v1/replies/p/c", 12.0)
