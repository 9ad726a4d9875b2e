"""Issue 19's flood, against a real Mosquitto with logins and the shipped ACL: 5,000 malformed and
5,000 expired messages (and 200 dated a minute ahead) from one authenticated pilot, then a valid
command and three copies of another.

What is asserted is behaviour, not timing (bench/mqtt_flood.py measures the latency): the valid
command is answered and runs, every copy is answered, nothing dated in the future ever runs, and
the audit store accounts for every refusal (rows recorded alone plus the counts of the burst rows)
and for every command that ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from pydantic import SecretStr

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord, CommandRow
from dronectl.operations.audit_outcomes import BURST_METHOD, AuditOutcomes
from dronectl.operations.port import Command, CommandUpdate
from dronectl.operations.users import Directory
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import CommandCenter, request
from tests.api.fake_controller import FakeController
from tests.identity.test_mqtt_identity import PASSWORDS, Broker, shipped_mosquitto

PILOT = "li.wei"
TARGET = {"target": {"lat": 43.90, "lon": 125.36, "alt_m": 60.0}}
CHUNK = 1000  # published, then waited for until the service has read them (the broker's queue)


class AuditedController(FakeController):
    """The fake controller recording each command it accepts, as FleetOps does."""

    def __init__(self, store: AuditStore) -> None:
        super().__init__(step_s=0.05)
        self.store = store

    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        first = True
        async for update in super().execute(command):
            if first:
                first = False
                record = CommandRecord(
                    command_id=command.id,
                    at_unix_s=command.received_at_unix_s,
                    actor_id=command.actor_id,
                    actor_role=command.actor_role.value,
                    nest_id=command.nest_id,
                    method=command.method.value,
                    args=command.args.model_dump(mode="json"),
                    outcome=CommandOutcome(update.state.value),
                    channel=command.channel.value,
                )
                await self.store.record_command(record)
            yield update


@contextlib.asynccontextmanager
async def flooded_service(broker: Broker, store: AuditStore) -> AsyncIterator[MqttApi]:
    settings = MqttSettings(
        broker=f"mqtt://127.0.0.1:{broker.port}",
        root=broker.root,
        username=broker.service_user,
        password=SecretStr(broker.service_password),
        persistent_session=False,  # a test's session is not kept on the broker
    )
    api = MqttApi(
        settings,
        AuditedController(store),
        outcomes=AuditOutcomes(store),
        role_of=Directory(broker.users_file).role_of,
    )
    task = asyncio.create_task(api.run(), name="test.api")
    try:
        async with asyncio.timeout(15):
            await api.connected.wait()
        yield api
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _malformed(n: int, reply_to: str) -> bytes:
    kind = n % 4
    if kind == 0:
        return b"\xff not json " + str(n).encode()
    body = request("launch", TARGET, reply_to=reply_to, command_id=f"bad-{n}")
    if kind == 1:
        return json.dumps(body).replace('"alt_m": 60.0', '"alt_m": NaN').encode()
    if kind == 2:
        body["args"] = {"blob": "x" * 5000}
    else:
        body["ttl_s"] = "thirty"
    return json.dumps(body).encode()


async def _flood(cc: CommandCenter, api: MqttApi, messages: list[tuple[str, bytes]]) -> None:
    for start in range(0, len(messages), CHUNK):
        chunk = messages[start : start + CHUNK]
        target = api.received + len(chunk)
        infos = [cc.client.publish(topic, data, qos=1) for topic, data in chunk]
        await asyncio.to_thread(infos[-1].wait_for_publish, 30)
        await cc.wait_until(partial(_read, api, target), timeout_s=60, what="flood read")


def _read(api: MqttApi, count: int) -> bool:
    return api.received >= count


async def test_a_flood_costs_no_command(tmp_path: Path) -> None:
    root = f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"
    store = await AuditStore.open(tmp_path / "audit.db")
    try:
        with shipped_mosquitto(tmp_path, root) as broker:
            async with flooded_service(broker, store) as api:
                cc = CommandCenter("127.0.0.1", broker.port, username=PILOT, password=PASSWORDS[PILOT])
                await cc.connect()
                try:
                    await _run_flood(cc, api, store, root)
                finally:
                    cc.close()
    finally:
        await store.close()


async def _run_flood(cc: CommandCenter, api: MqttApi, store: AuditStore, root: str) -> None:
    replies = f"{root}/replies/{PILOT}"
    await cc.subscribe(f"{replies}/#")
    topic = f"{root}/nests/2/commands/{PILOT}"
    started = datetime.now(UTC)
    old = started - timedelta(seconds=60)
    ahead = started + timedelta(seconds=60)
    flood: list[tuple[str, bytes]] = [(topic, _malformed(n, f"{replies}/bad")) for n in range(5000)]
    future_ids = [f"ahead-{n}" for n in range(200)]
    for n in range(5000):
        expired = request("launch", TARGET, reply_to=f"{replies}/old", issued_at=old, ttl_s=10)
        flood.append((topic, json.dumps(expired).encode()))
        if n % 25 == 0:  # dated a minute ahead, valid for two: must never run, however late decided
            body = request(
                "launch",
                TARGET,
                reply_to=f"{replies}/ahead",
                issued_at=ahead,
                ttl_s=120,
                command_id=future_ids[n // 25],
            )
            flood.append((topic, json.dumps(body).encode()))
    await _flood(cc, api, flood)

    valid = request("launch", TARGET, reply_to=f"{replies}/valid")
    await cc.publish(topic, valid)
    reply = await cc.wait_for(f"{replies}/valid", lambda p: p["kind"] == "reply", timeout_s=30)
    assert reply["id"] == valid["id"] and reply["ok"] is True and reply["repeated"] is False

    # three copies of one command back to back: each is answered, the command runs once
    copy = request("launch", TARGET, reply_to=f"{replies}/copies", command_id=f"copy-{uuid.uuid4().hex}")
    copy_topic = f"{root}/nests/3/commands/{PILOT}"
    for info in [cc.client.publish(copy_topic, json.dumps(copy), qos=1) for _ in range(3)]:
        await asyncio.to_thread(info.wait_for_publish, 10)
    await cc.wait_until(
        lambda: len([p for p in cc.payloads(f"{replies}/copies") if p["kind"] == "reply"]) == 3,
        timeout_s=30,
        what="three answers to three copies",
    )
    answers = [p for p in cc.payloads(f"{replies}/copies") if p["kind"] == "reply"]
    assert {a["id"] for a in answers} == {copy["id"]} and all(a["ok"] for a in answers)
    assert sorted(a["repeated"] for a in answers) == [False, True, True]

    executed = [c.id for c in api.controller.executed]  # type: ignore[attr-defined]
    assert executed == [valid["id"], copy["id"]]  # nothing from the flood ran, none dated ahead
    refused = len(flood)
    assert api.received == refused + 1 + 3

    # the audit store accounts for every refusal and every command that ran
    async def accounted() -> tuple[int, list[CommandRow], set[str]]:
        rows = await store.commands(actor_id=PILOT, since_unix_s=started.timestamp() - 120, limit=100_000)
        bursts = [r for r in rows if r["method"] == BURST_METHOD]
        alone = [r for r in rows if r["method"] != BURST_METHOD and r["outcomes"][0]["outcome"] == "refused"]
        counted = len(alone) + sum(int(r["args"]["count"]) for r in bursts)
        ran = {r["command_id"] for r in rows if r["outcomes"][0]["outcome"] == "accepted"}
        return counted, bursts, ran

    # the bursts are written once a quiet second has passed
    await cc.wait_until(lambda: not api.gateway.refusals_pending(), timeout_s=30, what="bursts recorded")
    counted, bursts, ran = await accounted()
    assert counted == refused
    assert ran == {valid["id"], copy["id"]}
    codes = {r["outcomes"][0]["code"] for r in bursts}
    # busy: dropped unread when the sender's backlog was full (the newest kept), refused in bulk too
    assert {"malformed", "expired"} <= codes <= {"malformed", "expired", "busy"}
    # a few rows, not ten thousand: one per burst of a sender and reason
    assert len(bursts) < 50
