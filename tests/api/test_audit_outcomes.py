"""A command id recorded in the audit store (e.g. before a restart) is answered, not executed again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord
from dronectl.domain.roles import Channel, Role
from dronectl.operations.audit_outcomes import AuditOutcomes, reply_from_outcome
from dronectl.operations.models import ErrorCode
from dronectl.operations.requests import Dispatcher, Execute, Repeat, Sender
from dronectl.operations.topics import Topics

NOW = datetime(2025, 1, 13, 8, 30, tzinfo=UTC)
TOPIC = "dronectl/v1/nests/3/commands/p"
P = Sender("p", Role.PILOT, Channel.MQTT)


def _payload(command_id: str) -> bytes:
    return json.dumps(
        {
            "id": command_id,
            "method": "hold",
            "actor": {"id": "p", "role": "pilot"},
            "issued_at": NOW.isoformat(),
            "ttl_s": 10,
            "reply_to": "dronectl/v1/replies/p/1",
        }
    ).encode()


def test_reply_from_outcome() -> None:
    assert reply_from_outcome("a", "accepted", None, None).ok
    refused = reply_from_outcome("a", "refused", "refused", "wind too strong")
    assert refused.error is not None and refused.error.code is ErrorCode.REFUSED
    assert refused.error.message == "wind too strong"
    odd = reply_from_outcome("a", "failed", "no_such_code", None)
    assert odd.error is not None and odd.error.code is ErrorCode.FAILED


async def test_recorded_command_is_a_repeat(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "audit.db")
    try:
        record = CommandRecord(
            command_id="before-restart",
            at_unix_s=NOW.timestamp(),
            actor_id="p",
            actor_role="pilot",
            nest_id=3,
            method="hold",
            args={},
            outcome=CommandOutcome.ACCEPTED,
        )
        await store.record_command(record)
        outcomes = AuditOutcomes(store)
        dispatcher = Dispatcher(Topics(), [3], lambda: NOW.timestamp())
        for command_id in ("before-restart", "new-one"):
            first = await outcomes.first_outcome(command_id)
            if first is not None:
                dispatcher.remember(command_id, first)
        repeat = dispatcher.decide(TOPIC, _payload("before-restart"), P)
        assert isinstance(repeat, Repeat) and repeat.reply.ok and repeat.reply.repeated
        assert isinstance(dispatcher.decide(TOPIC, _payload("new-one"), P), Execute)
    finally:
        await store.close()
