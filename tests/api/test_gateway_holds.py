"""Several instances: the gateway leaves a request for a nest another instance holds to that
instance (not run, not recorded, not answered here); its own nests' requests go on as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dronectl.audit import AuditStore
from dronectl.domain.roles import Channel, Role
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.requests import Execute, Ignore, Sender
from dronectl.operations.topics import Topics
from tests.api.command_center import request
from tests.api.fake_controller import FakeController

CC = Sender("cc", Role.PILOT, Channel.MQTT)
LONG_AGO = datetime.now(UTC) - timedelta(minutes=10)  # past any ttl


async def test_requests_for_nests_held_elsewhere_are_ignored_and_not_recorded(tmp_path: Path) -> None:
    async with await AuditStore.open(tmp_path / "audit.db") as store:
        gateway = CommandGateway(FakeController((1, 2, 3)), Topics(), outcomes=AuditOutcomes(store))
        gateway.holds = lambda nest_id: nest_id != 3
        topics = Topics()

        elsewhere = request(
            "hold", command_id="held-elsewhere", issued_at=LONG_AGO
        )  # expired: would be refused
        decision = await gateway.decide(topics.nest_commands(3, "cc"), json.dumps(elsewhere).encode(), CC)
        assert isinstance(decision, Ignore) and "another dronectl instance" in decision.reason
        assert await store.command("held-elsewhere") is None  # its owner records it, not us

        here = request("hold", command_id="held-here", reply_to="dronectl/v1/replies/cc/1")
        assert isinstance(
            await gateway.decide(topics.nest_commands(2, "cc"), json.dumps(here).encode(), CC), Execute
        )
        expired = request("hold", command_id="expired-here", issued_at=LONG_AGO)
        decision = await gateway.decide(topics.nest_commands(2, "cc"), json.dumps(expired).encode(), CC)
        assert not isinstance(decision, Ignore)
        assert await store.command("expired-here") is not None  # refused and recorded, as before


REPLY_TO = "dronectl/v1/replies/cc/1"


async def test_automation_requests_are_left_to_the_automations_leader(tmp_path: Path) -> None:
    commander = Sender("cc", Role.COMMANDER, Channel.MQTT)
    async with await AuditStore.open(tmp_path / "audit.db") as store:
        gateway = CommandGateway(FakeController((1, 2, 3)), Topics(), outcomes=AuditOutcomes(store))
        leading = False
        gateway.leads = lambda: leading
        topic = Topics().commands("cc")

        for method, args in (("patrol.list", {}), ("incident.confirm", {"incident_id": "inc-1"})):
            body = json.dumps(request(method, args, command_id=f"{method}-1", reply_to=REPLY_TO)).encode()
            decision = await gateway.decide(topic, body, commander)
            assert isinstance(decision, Ignore) and "automations leader" in decision.reason
            assert await store.command(f"{method}-1") is None  # the leader records and answers it
        body = json.dumps(request("return_all", command_id="return-all-1", reply_to=REPLY_TO)).encode()
        assert isinstance(await gateway.decide(topic, body, commander), Execute)  # not an automation's

        leading = True
        body = json.dumps(request("patrol.list", command_id="patrol.list-2", reply_to=REPLY_TO)).encode()
        assert isinstance(await gateway.decide(topic, body, commander), Execute)
