"""The API's handling of the controller's answers, without a broker (publishes are captured)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from dronectl.api.controller import Command, CommandUpdate
from dronectl.api.mqtt import MqttApi
from dronectl.api.settings import MqttSettings
from tests.api.fake_controller import FakeController

NOW = datetime(2025, 1, 13, 8, 30, tzinfo=UTC)
TOPIC = "dronectl/v1/nests/1/commands"


class CrashingController(FakeController):
    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        self.executed.append(command)
        raise RuntimeError("bug")
        yield  # pragma: no cover - makes this an async generator


class CapturingApi(MqttApi):
    def __init__(self, controller: FakeController) -> None:
        super().__init__(MqttSettings(broker="mqtt://127.0.0.1:1"), controller, clock=lambda: NOW.timestamp())
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def _publish(self, topic: str, model: BaseModel, *, qos: int, retain: bool = False) -> bool:
        self.sent.append((topic, json.loads(model.model_dump_json())))
        return True


def _payload(command_id: str, method: str = "hold") -> bytes:
    return json.dumps(
        {
            "id": command_id,
            "method": method,
            "actor": {"id": "p", "role": "pilot"},
            "issued_at": NOW.isoformat(),
            "ttl_s": 10,
            "reply_to": "r/1",
        }
    ).encode()


async def _run(api: CapturingApi, *payloads: bytes) -> None:
    async with asyncio.TaskGroup() as tasks:
        api._tasks = tasks
        for payload in payloads:
            await api._handle(TOPIC, payload, retained=False)
            await asyncio.sleep(0)


async def test_a_crashing_controller_is_answered_internal() -> None:
    api = CapturingApi(CrashingController(clock=lambda: NOW.timestamp()))
    await _run(api, _payload("x"))
    assert api.sent == [
        (
            "r/1",
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
