"""Refused logins folded into bursts (domain.login_failures) and written to the audit store
(operations.login_audit): a brute force leaves a row per window, with every attempt counted."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from dronectl.audit import AuditStore
from dronectl.domain.login_failures import ANY, FailureBursts
from dronectl.operations.login_audit import LoginAudit


def test_first_failure_is_written_at_once_the_rest_of_the_window_counted() -> None:
    bursts = FailureBursts(window_s=60.0)
    first = bursts.failed("mqtt", "li.wei", "10.0.0.9", "wrong password", 100.0)
    assert first is not None and first.attempts == 1 and first.first_at_s == first.last_at_s == 100.0
    for i in range(999):
        assert bursts.failed("mqtt", "li.wei", "10.0.0.9", "wrong password", 101.0 + i * 0.01) is None
    assert bursts.due(159.0) == []  # the window is not over
    (burst,) = bursts.due(160.0)
    assert (burst.user_name, burst.attempts, burst.first_at_s) == ("li.wei", 999, 101.0)
    assert burst.last_at_s == 101.0 + 998 * 0.01
    assert bursts.due(500.0) == []  # nothing counted since: the key is forgotten
    again = bursts.failed("mqtt", "li.wei", "10.0.0.9", "wrong password", 501.0)
    assert again is not None and again.attempts == 1


def test_keys_are_apart_by_channel_user_and_address() -> None:
    bursts = FailureBursts(window_s=60.0)
    written = [
        bursts.failed(channel, user, addr, "wrong password", 0.0)
        for channel, user, addr in [
            ("mqtt", "a", "10.0.0.1"),
            ("http", "a", "10.0.0.1"),
            ("mqtt", "b", "10.0.0.1"),
            ("mqtt", "a", "10.0.0.2"),
            ("mqtt", "a", "10.0.0.1"),  # the same key again: counted
        ]
    ]
    assert [w is not None for w in written] == [True, True, True, True, False]


def test_a_failure_after_the_window_carries_the_count_of_the_burst() -> None:
    bursts = FailureBursts(window_s=60.0)
    bursts.failed("http", "x", "a", "wrong password", 0.0)
    bursts.failed("http", "x", "a", "wrong password", 10.0)
    bursts.failed("http", "x", "a", "too many failed logins", 20.0)
    row = bursts.failed("http", "x", "a", "wrong password", 61.0)  # before any due(): the three
    assert row is not None and (row.attempts, row.first_at_s, row.last_at_s) == (3, 10.0, 61.0)


def test_many_user_names_from_one_address_fold_under_any() -> None:
    bursts = FailureBursts(window_s=60.0, names_per_address=3)
    written = [bursts.failed("mqtt", f"guess{i}", "10.6.6.6", "unknown user", i * 0.1) for i in range(100)]
    rows = [w for w in written if w is not None]
    assert [r.user_name for r in rows] == ["guess0", "guess1", "guess2", ANY]
    (folded,) = [b for b in bursts.due(200.0) if b.user_name == ANY]
    assert folded.attempts == 100 - 4 and folded.remote_addr == "10.6.6.6"
    # another address is not folded with the guesser's
    assert bursts.failed("mqtt", "li.wei", "10.0.0.1", "wrong password", 201.0) is not None


def test_memory_is_bounded_under_many_addresses() -> None:
    bursts = FailureBursts(window_s=60.0, max_keys=50)
    for i in range(10_000):
        bursts.failed("mqtt", f"u{i}", f"10.{i // 256 % 256}.{i % 256}.1", "unknown user", 0.0)
    rows = bursts.drain()
    assert sum(r.attempts for r in rows) == 10_000 - 51  # 50 keys and the (*, *) row written at once
    assert rows[-1].user_name == rows[-1].remote_addr == ANY


async def test_login_audit_writes_bursts_to_the_store(tmp_path: Path) -> None:
    now = [1000.0]
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        audit = LoginAudit(store.record_login_failure, window_s=60.0, clock=lambda: now[0])
        for _ in range(50):
            await audit.failed("mqtt", "li.wei", "10.0.0.9", "wrong password")
            now[0] += 0.1
        rows = await store.login_failures()
        assert [(r["channel"], r["user_name"], r["remote_addr"], r["attempts"]) for r in rows] == [
            ("mqtt", "li.wei", "10.0.0.9", 1)
        ]
        now[0] = 1060.0
        await audit.flush()
        rows = await store.login_failures()
        assert [r["attempts"] for r in rows] == [1, 49]
        assert rows[1]["reason"] == "wrong password"


async def test_login_audit_writes_the_rest_at_shutdown(tmp_path: Path) -> None:
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        audit = LoginAudit(store.record_login_failure, window_s=3600.0)
        task = asyncio.create_task(audit.run())
        for _ in range(3):
            await audit.failed("http", "x", "127.0.0.1", "wrong password")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert [r["attempts"] for r in await store.login_failures()] == [1, 2]
