"""/metrics, /healthz and /readyz (transports/web/health.py) against a real audit store (SQLite and
PostgreSQL), the real Mosquitto on 127.0.0.1:1883, and a database that goes away and comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord, OutcomeRecord
from dronectl.transports.web.health import Health, Probes
from tests.pg import allow_connections, fresh_database, terminate_connections

MOSQUITTO = ("127.0.0.1", 1883)
NOTHING = ("127.0.0.1", 1)  # nothing listens there


@asynccontextmanager
async def serving(store: AuditStore, broker: tuple[str, int]) -> AsyncIterator[tuple[TestClient, Health]]:
    health = Health(
        Probes(
            instance_id="test-1",
            nest_ids=[3, 7],
            link_up=lambda nest: nest == 3,
            owned=lambda: [3, 7],
            store_ping=store.ping,
            broker=broker,
            lease_counts=lambda: (41, 2),
            leading=lambda: False,
        )
    )
    store.command_observers.append(health.observe_command)
    app = web.Application()
    health.mount(app, lambda request, action: None)  # type: ignore[arg-type,return-value]
    async with TestClient(TestServer(app)) as client:
        yield client, health


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditStore]:
    if request.param == "sqlite":
        async with await AuditStore.open(tmp_path / "audit.db") as s:
            yield s
    else:
        with fresh_database() as url:
            async with await AuditStore.open(url) as s:
                yield s


async def test_alive_ready_and_the_metrics(store: AuditStore) -> None:
    async with serving(store, MOSQUITTO) as (client, _):
        alive = await client.get("/healthz")
        assert alive.status == 200 and (await alive.json())["alive"] is True
        ready = await client.get("/readyz")
        assert ready.status == 200 and (await ready.json()) == {
            "ready": True,
            "instance": "test-1",
            "reasons": [],
        }

        launch = CommandRecord("c1", 0.0, "officer-7", "pilot", 3, "launch", {}, CommandOutcome.ACCEPTED)
        await store.record_command(launch)
        await store.record_outcome(OutcomeRecord("c1", 1.0, CommandOutcome.SUCCEEDED))
        text = await (await client.get("/metrics")).text()
    assert metric(text, 'dronectl_commands_total{method="launch",outcome="accepted"}') == 1
    assert metric(text, 'dronectl_commands_total{method="launch",outcome="succeeded"}') == 1
    assert metric(text, 'dronectl_command_duration_seconds_count{method="launch"}') == 1
    assert metric(text, "dronectl_nests_owned") == 2
    assert metric(text, 'dronectl_nest_link_up{nest="3"}') == 1
    assert metric(text, 'dronectl_nest_link_up{nest="7"}') == 0
    assert metric(text, "dronectl_lease_takeovers_total") == 2
    assert metric(text, "dronectl_automations_leader") == 0  # another instance leads
    assert metric(text, "dronectl_store_up") == 1 and metric(text, "dronectl_broker_up") == 1
    assert metric(text, "dronectl_event_loop_lag_seconds") >= 0


async def test_not_ready_without_a_broker(store: AuditStore) -> None:
    async with serving(store, NOTHING) as (client, _):
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503 and body["ready"] is False
        assert body["reasons"] == ["the MQTT broker 127.0.0.1:1 does not accept a connection"]
        assert (await client.get("/healthz")).status == 200  # alive all the same


async def wait_status(client: TestClient, path: str, status: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get(path)).status != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}"
        await asyncio.sleep(0.2)


async def test_not_ready_while_postgresql_is_away_then_ready_again() -> None:
    with fresh_database() as url:
        async with await AuditStore.open(url) as s, serving(s, MOSQUITTO) as (client, _):
            await wait_status(client, "/readyz", 200)
            allow_connections(url, False)
            terminate_connections(url)
            try:
                ready = await client.get("/readyz")
                assert ready.status == 503
                assert (await ready.json())["reasons"] == ["the audit store does not answer"]
                assert metric(await (await client.get("/metrics")).text(), "dronectl_store_up") == 0
            finally:
                allow_connections(url, True)
            await wait_status(client, "/readyz", 200)
