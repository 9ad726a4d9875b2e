"""Several instances (issue 14): a request for a nest another instance holds (or, during a
takeover, no one) is not lost. Each instance keeps it; the one that gains the nest decides it as
if read then: run once and answered if the last holder never took it, refused as expired if its
time has passed, left alone (no second run, no second answer) if the last holder took it (its
outcome is in the shared store). Over the service's real MQTT handler and a real audit store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord
from dronectl.domain.roles import Role
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.requests import Delivery
from dronectl.operations.topics import Topics
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.capturing import CapturingMqttApi
from tests.api.fake_controller import FakeController

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC).timestamp()
TOPIC = "dronectl/v1/nests/1/commands/p"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Instance(CapturingMqttApi):
    """The MQTT API of one instance, publishes captured, holding nest 1 or not."""

    def __init__(
        self, controller: FakeController, gateway: CommandGateway, clock: Callable[[], float]
    ) -> None:
        super().__init__(
            MqttSettings(broker="mqtt://127.0.0.1:1"), controller, gateway=gateway, clock=clock,
            role_of={"p": Role.PILOT}.get,
        )  # fmt: skip

    async def read(self, payload: bytes) -> None:
        """As the reader and the decider do: stamped now, then decided."""
        await self._handle(TOPIC, payload, retained=False, received_at=self.clock())

    async def decide_backlog(self) -> None:
        """What the decide loop does with what waits in the backlog (kept requests put back)."""
        async with asyncio.TaskGroup() as tasks:  # the commands run as the service's tasks
            self._tasks = tasks
            while (item := self.backlog.take()) is not None:
                await self._handle(
                    item.topic, item.payload, retained=item.retained, received_at=item.received_at_unix_s,
                    delivery=item.delivery, correlation=item.correlation, kept=item.kept,
                )  # fmt: skip
        while self._outbox:
            await self._outbox.popleft()()


def request(command_id: str, issued_at: float, ttl_s: float = 30.0) -> bytes:
    body = {
        "id": command_id,
        "method": "hold",
        "issued_at": datetime.fromtimestamp(issued_at, tz=UTC).isoformat(),
        "ttl_s": ttl_s,
        "reply_to": f"dronectl/v1/replies/p/{command_id}",
    }
    return json.dumps(body).encode()


async def test_requests_kept_during_a_takeover_are_decided_by_the_new_owner(tmp_path: Path) -> None:
    clock = Clock()
    held = False
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:  # the shared store
        controller = FakeController((1, 2), step_s=0.0, clock=clock)
        gateway = CommandGateway(controller, Topics(), clock=clock, outcomes=AuditOutcomes(store, clock))
        gateway.holds = lambda nest_id: held
        api = Instance(controller, gateway, clock)

        # nest 1 is another instance's (or, while its lease runs out, no one's): nothing run here
        await api.read(request("fresh", T0))
        await api.read(request("taken", T0))
        await api.read(request("short", T0, ttl_s=5.0))
        assert api.sent == [] and controller.executed == []
        assert await store.command("fresh") is None  # not recorded here: not this instance's

        # the other instance took "taken" before it died: its outcome is in the shared store
        await store.record_command(
            CommandRecord(
                "taken", T0 + 0.1, "p", "pilot", 1, "hold", {}, CommandOutcome.ACCEPTED, channel="mqtt"
            )
        )

        # the takeover: 8 s later this instance holds nest 1
        clock.now = T0 + 8.0
        held = True
        gateway.nest_gained(1)
        await api.decide_backlog()

        answers = {topic.rsplit("/", 1)[-1]: body for topic, body in api.sent if body["kind"] == "reply"}
        assert set(answers) == {"fresh", "short"}  # "taken": no second answer
        assert answers["fresh"]["ok"] is True
        assert answers["short"]["ok"] is False and answers["short"]["error"]["code"] == "expired"
        assert [c.id for c in controller.executed] == ["fresh"]  # run once, here
        short = await store.command("short")  # the refusal recorded here, by the new owner
        assert short is not None and short["outcomes"][0]["code"] == "expired"

        # kept once: gaining the nest again later decides nothing twice
        api.sent.clear()
        gateway.nest_gained(1)
        await api.decide_backlog()
        assert api.sent == [] and [c.id for c in controller.executed] == ["fresh"]


async def test_a_kept_mqtt5_request_keeps_only_what_is_left_of_its_expiry(tmp_path: Path) -> None:
    """The Message Expiry Interval was what was left when the message was read: kept 8 s, a
    10 s expiry has 2 s left when the nest is gained (the deadline), a 5 s one has expired."""
    clock = Clock()
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        controller = FakeController((1,), step_s=0.0, clock=clock)
        gateway = CommandGateway(controller, Topics(), clock=clock, outcomes=AuditOutcomes(store, clock))
        holding = [False]
        gateway.holds = lambda nest_id: holding[0]
        api = Instance(controller, gateway, clock)
        for command_id, expiry_s in (("ten", 10.0), ("five", 5.0)):
            body = json.loads(request(command_id, T0, ttl_s=60.0))
            await api._handle(
                TOPIC, json.dumps(body).encode(), retained=False, received_at=T0,
                delivery=Delivery(expiry_s=expiry_s),
            )  # fmt: skip
        clock.now = T0 + 8.0
        holding[0] = True
        gateway.nest_gained(1)
        await api.decide_backlog()
        answers = {topic.rsplit("/", 1)[-1]: body for topic, body in api.sent if body["kind"] == "reply"}
        assert answers["ten"]["ok"] is True and answers["five"]["error"]["code"] == "expired"
        [command] = controller.executed
        assert command.deadline_unix_s == pytest.approx(T0 + 10.0)


async def test_a_retained_or_too_old_request_is_not_kept(tmp_path: Path) -> None:
    clock = Clock()
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        controller = FakeController((1,), step_s=0.0, clock=clock)
        gateway = CommandGateway(controller, Topics(), clock=clock, outcomes=AuditOutcomes(store, clock))
        holding = [False]
        gateway.holds = lambda nest_id: holding[0]
        api = Instance(controller, gateway, clock)
        await api._handle(TOPIC, request("retained", T0), retained=True, received_at=T0)
        await api._handle(TOPIC, b"{not json", retained=False, received_at=T0)  # no id: never kept
        await api.read(request("old", T0, ttl_s=600.0))
        clock.now = T0 + 700.0  # past the longest ttl (and the clock skew allowed)
        holding[0] = True
        gateway.nest_gained(1)
        await api.decide_backlog()
        assert api.sent == [] and controller.executed == []
