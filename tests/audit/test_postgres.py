"""What only the PostgreSQL backend has: its schema beside SQLite's, its settings, a lost database
(the instance keeps going, records fail with a clear error, it recovers), a password never shown."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from dronectl.audit import (
    SCHEMA_VERSION,
    AuditStore,
    AuditUnavailableError,
    CommandOutcome,
    CommandRecord,
    Durability,
    SchemaError,
    TransitionRecord,
    redact,
)
from dronectl.audit.schema import MIGRATIONS
from dronectl.audit.schema_pg import MIGRATIONS_PG
from tests.pg import query, terminate_connections

T0 = 1_760_000_000.0


def cmd(command_id: str) -> CommandRecord:
    return CommandRecord(command_id, T0, "alice", "pilot", 3, "hold", {}, CommandOutcome.ACCEPTED)


def test_one_schema_version_for_both_backends() -> None:
    assert len(MIGRATIONS_PG) == len(MIGRATIONS) == SCHEMA_VERSION

    def tables(steps: object) -> set[str]:
        return {
            stmt.split("(")[0].split()[-1]
            for step in steps  # type: ignore[attr-defined]
            for stmt in step
            if stmt.lstrip().startswith("CREATE TABLE")
        }

    for version in range(SCHEMA_VERSION):
        assert tables([MIGRATIONS[version]]) == tables([MIGRATIONS_PG[version]]), version


async def test_refuses_newer_schema_and_foreign_database(pg_url: str) -> None:
    async with await AuditStore.open(pg_url):
        pass
    query(pg_url, f"INSERT INTO audit_schema (version) VALUES ({SCHEMA_VERSION + 1})")
    with pytest.raises(SchemaError, match="newer"):
        await AuditStore.open(pg_url)


async def test_refuses_a_database_that_is_not_an_audit_one(pg_url: str) -> None:
    query(pg_url, "CREATE TABLE notes (x TEXT)")
    with pytest.raises(SchemaError, match="not a dronectl audit"):
        await AuditStore.open(pg_url)
    assert query(pg_url, "SELECT to_regclass('commands') IS NULL") == [(True,)]  # nothing created


async def test_instances_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(AuditStore.open(pg_url) for _ in range(4)))
    try:
        assert sorted(s.schema_version_before or 0 for s in stores)[-1] <= SCHEMA_VERSION
        assert query(pg_url, "SELECT version FROM audit_schema ORDER BY version") == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)
        ]
        await stores[0].record_command(cmd("seen-by-all"))
        for s in stores:
            assert await s.command("seen-by-all") is not None
    finally:
        for s in stores:
            await s.close()


@pytest.mark.parametrize(("durability", "expected"), [(Durability.FULL, "on"), (Durability.NORMAL, "off")])
async def test_durability_setting_reaches_the_connection(
    pg_url: str, durability: Durability, expected: str
) -> None:
    async with await AuditStore.open(pg_url, durability=durability) as store:
        level = await store._writer.submit(
            lambda c: c.execute("SHOW synchronous_commit").fetchone()[0], write=False
        )
        assert level == expected


async def test_a_locked_table_does_not_block_the_event_loop(pg_url: str) -> None:
    async with await AuditStore.open(pg_url) as store:
        blocker = psycopg.connect(pg_url, autocommit=True)
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE transitions IN ACCESS EXCLUSIVE MODE")
        try:
            pending = asyncio.create_task(store.record_transition(TransitionRecord(2, T0, "a", "b", "held")))
            turns = 0
            deadline = time.monotonic() + 10
            while turns < 100:  # the loop keeps turning while the write waits for the lock
                turns += 1
                await asyncio.sleep(0.001)
                assert time.monotonic() < deadline
            assert not pending.done() and store.backlog == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await asyncio.wait_for(pending, timeout=10)
        assert [r["cause"] for r in await store.transitions(2)] == ["held"]


async def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    url = "postgresql://pilot:s3cret-pw@127.0.0.1:1/audit"  # nothing listens on port 1
    with pytest.raises(AuditUnavailableError) as info:
        await AuditStore.open(url)
    assert "unreachable" in str(info.value) and "s3cret-pw" not in str(info.value)
    assert redact(url) == "postgresql://pilot:***@127.0.0.1:1/audit"
    assert redact("host=db password=s3cret-pw dbname=a") == "host=db password=*** dbname=a"


async def wait_until_recorded(store: AuditStore, command_id: str, timeout_s: float = 15.0) -> int:
    """Record ``command_id`` again and again until it lands; how many attempts were refused."""
    refused = 0
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await store.record_command(cmd(command_id))
            return refused
        except AuditUnavailableError:
            refused += 1
            assert time.monotonic() < deadline, "the store did not reconnect"
            await asyncio.sleep(0.2)


async def test_losing_the_database_fails_records_clearly_then_recovers(pg_url: str) -> None:
    async with await AuditStore.open(pg_url) as store:
        await store.record_command(cmd("before"))
        assert terminate_connections(pg_url) >= 1  # the server drops the store's session
        with pytest.raises(AuditUnavailableError, match=r"unreachable.*nothing recorded"):
            await store.record_command(cmd("during"))
        # the writer thread is alive: the next batches reconnect and the same record lands
        await wait_until_recorded(store, "during")
        await store.record_command(cmd("after"))
        rows = query(pg_url, "SELECT command_id FROM commands ORDER BY rowid")
        assert rows == [("before",), ("during",), ("after",)]
        assert [o["outcome"] for o in (await store.command("during") or {"outcomes": []})["outcomes"]] == [
            "accepted"
        ]
