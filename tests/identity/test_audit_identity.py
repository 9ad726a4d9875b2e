"""The audit names who sent a command (the authenticated user, never the claim) and its channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dronectl.audit import AuditStore
from dronectl.domain.roles import Channel, Role
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.requests import Execute, Refuse, Sender
from dronectl.operations.topics import Topics
from tests.api.fake_controller import FakeController


def _payload(command_id: str, **extra: object) -> bytes:
    body = {"id": command_id, "method": "hold", "issued_at": datetime.now(UTC).isoformat(), "ttl_s": 30}
    body["reply_to"] = f"dronectl/v1/replies/li.wei/{command_id}"
    return json.dumps({**body, **extra}).encode()


async def test_refusals_are_recorded_under_the_sender_and_its_channel(tmp_path: Path) -> None:
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        gateway = CommandGateway(FakeController(), Topics(), outcomes=AuditOutcomes(store))
        li = Sender("li.wei", Role.PILOT, Channel.MQTT)
        forged = _payload("f-1", actor={"id": "zhao", "role": "commander"})
        decision = await gateway.decide("dronectl/v1/nests/1/commands/li.wei", forged, li)
        assert isinstance(decision, Refuse)
        row = await store.command("f-1")
        assert row is not None
        assert (row["actor_id"], row["actor_role"], row["channel"]) == ("li.wei", "pilot", "mqtt")
        assert row["outcomes"][0]["code"] == "identity"

        # a user the roles file does not know: recorded as such
        stranger = await gateway.decide("dronectl/v1/nests/1/commands/mallory", _payload("s-1"), None)
        assert isinstance(stranger, Refuse)
        row = await store.command("s-1")
        assert row is not None and (row["actor_id"], row["actor_role"]) == ("mallory", "unknown")

        over_http = Sender("wang", Role.OBSERVER, Channel.HTTP)
        refused = await gateway.decide("dronectl/v1/nests/1/commands/wang", _payload("h-1"), over_http)
        assert isinstance(refused, Refuse)
        row = await store.command("h-1")
        assert row is not None and (row["actor_id"], row["channel"]) == ("wang", "http")

        ok = await gateway.decide("dronectl/v1/nests/1/commands/li.wei", _payload("ok-1"), li)
        assert isinstance(ok, Execute) and ok.command.channel is Channel.MQTT

        # the console says so: recorded as channel console, the user still the broker's
        console = await gateway.decide(
            "dronectl/v1/nests/1/commands/li.wei", _payload("c-1", client="console"), li
        )
        assert isinstance(console, Execute) and console.command.channel is Channel.CONSOLE
        assert (console.command.actor_id, console.command.actor_role) == ("li.wei", Role.PILOT)
        forged = _payload("c-2", client="console", actor={"id": "zhao", "role": "commander"})
        refused = await gateway.decide("dronectl/v1/nests/1/commands/li.wei", forged, li)
        assert isinstance(refused, Refuse)
        row = await store.command("c-2")
        assert row is not None and (row["actor_id"], row["channel"]) == ("li.wei", "console")
        # over HTTP the word "console" changes nothing: the channel is how it came (another
        # observer: wang's second refusal for the same reason would join its burst, counted, not alone)
        zhou = Sender("zhou", Role.OBSERVER, Channel.HTTP)
        via_http = await gateway.decide(
            "dronectl/v1/nests/1/commands/zhou", _payload("h-2", client="console"), zhou
        )
        assert isinstance(via_http, Refuse)
        row = await store.command("h-2")
        assert row is not None and row["channel"] == "http"
        # any other client name is malformed (the field is a closed list)
        odd = await gateway.decide("dronectl/v1/nests/1/commands/li.wei", _payload("o-1", client="x"), li)
        assert isinstance(odd, Refuse) and odd.reply.error is not None
        assert odd.reply.error.code.value == "malformed"
