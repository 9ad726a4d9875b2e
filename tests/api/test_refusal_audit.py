"""Refusals in the audit store through the gateway: the first alone, the rest one burst row with
its count; NaN and blobs never reach the store; a failed write is raised, never swallowed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dronectl.audit import AuditStore, AuditUnavailableError, CommandRecord
from dronectl.domain.roles import Channel, Role
from dronectl.operations.audit_outcomes import BURST_METHOD, AuditOutcomes
from dronectl.operations.gateway import CommandGateway, RefusalNotRecordedError
from dronectl.operations.requests import Refuse, Sender
from dronectl.operations.topics import Topics
from tests.api.fake_controller import FakeController

P = Sender("p", Role.PILOT, Channel.MQTT)
TOPIC = "dronectl/v1/nests/1/commands/p"


def _expired(command_id: str, **extra: Any) -> bytes:
    body = {
        "id": command_id,
        "method": "hold",
        "issued_at": (datetime.now(UTC) - timedelta(seconds=60)).isoformat(),
        "ttl_s": 10,
    }
    body.update(extra)
    return json.dumps(body).encode()


async def test_a_flood_of_refusals_is_one_row_alone_and_one_burst(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "audit.db")
    try:
        gateway = CommandGateway(FakeController(), Topics(), outcomes=AuditOutcomes(store))
        decisions = [await gateway.decide(TOPIC, _expired(f"e-{n}"), P) for n in range(300)]
        nan = _expired("nan-1", args={"x": 1.0}).replace(b'"x": 1.0', b'"x": NaN')
        decisions.append(await gateway.decide(TOPIC, nan, P))
        assert all(isinstance(d, Refuse) for d in decisions)
        assert [d.alone for d in decisions if isinstance(d, Refuse)].count(True) == 1
        assert gateway.refusals_pending()
        bursts = await gateway.flush_bursts(everything=True)
        assert not gateway.refusals_pending()
        assert sorted((b.key.code, b.count) for b in bursts) == [("expired", 299), ("malformed", 1)]
        rows = await store.commands(actor_id="p")
        alone = [r for r in rows if r["method"] != BURST_METHOD]
        assert [r["command_id"] for r in alone] == ["e-0"]
        burst_rows = {r["outcomes"][0]["code"]: r for r in rows if r["method"] == BURST_METHOD}
        assert burst_rows["expired"]["args"]["count"] == 299
        assert burst_rows["expired"]["args"]["sample_ids"][:2] == ["e-1", "e-2"]
        assert (
            burst_rows["malformed"]["args"]["count"] == 1 and burst_rows["malformed"]["actor_role"] == "pilot"
        )
    finally:
        await store.close()


class FailingStore:
    async def record_command(self, record: CommandRecord) -> None:
        raise AuditUnavailableError("the database is away")


async def test_a_refusal_that_cannot_be_recorded_raises() -> None:
    outcomes = AuditOutcomes(FailingStore())  # type: ignore[arg-type]
    gateway = CommandGateway(FakeController(), Topics(), outcomes=outcomes)
    with pytest.raises(RefusalNotRecordedError) as raised:
        await gateway.decide(TOPIC, _expired("e-1"), P)
    assert isinstance(raised.value.__cause__, AuditUnavailableError)
    assert raised.value.decision.reply.id == "e-1"  # the sender can still be answered
    await gateway.decide(TOPIC, _expired("e-2"), P)  # counted in the burst: written when it ends
    with pytest.raises(AuditUnavailableError):
        await gateway.flush_bursts(everything=True)
