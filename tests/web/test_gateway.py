"""The command path both transports share (dronectl.operations.gateway): events to every transport,
first outcomes loaded once, a crashing controller answered."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from dronectl.domain.roles import Channel, Role
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import ErrorCode, Event, EventKind, Progress, Reply, Request
from dronectl.operations.port import Command, CommandUpdate
from dronectl.operations.requests import Execute, Repeat, Sender
from dronectl.operations.topics import Topics
from tests.api.fake_controller import FakeController
from tests.web.conftest import envelope

TOPIC = "dronectl/v1/nests/1/commands/p"
P = Sender("p", Role.PILOT, Channel.MQTT)


class Outcomes:
    def __init__(self) -> None:
        self.recent_calls = 0

    async def first_outcome(self, command_id: str) -> Reply | None:
        return None

    async def recent(self, since_unix_s: float) -> list[tuple[str, Reply]]:
        self.recent_calls += 1
        return [("old-1", Reply(id="old-1", ok=True, result={"state": "accepted"}))]

    async def record_refusal(
        self, request: Request, user: str, role: str, channel: str, nest_id: int | None, reply: Reply
    ) -> None:
        raise AssertionError("nothing is refused here")


class Crashing(FakeController):
    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        raise RuntimeError("bug")
        yield  # pragma: no cover - makes this an async generator


def _payload(command_id: str) -> bytes:
    body = {**envelope(command_id, "hold"), "actor": {"id": "p", "role": "pilot"}}
    return json.dumps({**body, "reply_to": f"dronectl/v1/replies/p/{command_id}"}).encode()


async def test_events_reach_every_transport_even_if_one_fails() -> None:
    gateway = CommandGateway(FakeController(), Topics())
    got: list[str] = []

    async def broken(event: Event) -> None:
        raise ConnectionError("gone")

    async def working(event: Event) -> None:
        got.append(event.message)

    gateway.event_sinks += [broken, working]
    await gateway.announce(Event(kind=EventKind.COMMAND_REJECTED, at=datetime.now(tz=UTC), message="no"))
    assert got == ["no"]


async def test_recent_outcomes_are_loaded_once_for_both_transports() -> None:
    outcomes = Outcomes()
    gateway = CommandGateway(FakeController(), Topics(), outcomes=outcomes)
    await gateway.load_recent()
    await gateway.load_recent()
    assert outcomes.recent_calls == 1
    decision = await gateway.decide(TOPIC, _payload("old-1"), P)
    assert isinstance(decision, Repeat) and decision.reply.repeated


async def test_a_crashing_controller_is_answered_and_remembered() -> None:
    gateway = CommandGateway(Crashing(clock=time.time), Topics())
    decision = await gateway.decide(TOPIC, _payload("c-1"), P)
    assert isinstance(decision, Execute)
    replies: list[Reply] = []
    progress: list[Progress] = []

    async def on_reply(reply: Reply) -> None:
        replies.append(reply)

    async def on_progress(update: Progress) -> None:
        progress.append(update)

    await gateway.execute(decision.command, on_reply, on_progress)
    assert [(r.ok, r.error.code if r.error else None) for r in replies] == [(False, ErrorCode.INTERNAL)]
    assert progress == []
    again = await gateway.decide(TOPIC, _payload("c-1"), P)
    assert isinstance(again, Repeat) and again.reply.error is not None
