"""Nest leases in PostgreSQL (dronectl/audit/leases.py) and fenced audit writes: tokens only grow,
an expired lease is taken over with a new token, and the store refuses a write under a stale one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from dronectl.audit import AuditStore, Fence, StaleFenceError, TransitionRecord
from dronectl.audit.leases import LeaseBook
from tests.pg import eventually, query

T0 = 1_760_000_000.0


@pytest.fixture
async def book(pg_url: str) -> AsyncIterator[LeaseBook]:
    b = await LeaseBook.open(pg_url)
    try:
        yield b
    finally:
        await b.close()


async def test_acquire_renew_expire_takeover(book: LeaseBook) -> None:
    first = await book.acquire(3, "a", ttl_s=0.5)
    assert first is not None and first.token == 1 and first.owner == "a"
    assert await book.acquire(3, "b", ttl_s=0.5) is None  # held
    again = await book.acquire(3, "a", ttl_s=0.5)  # our own, still valid: same token
    assert again is not None and again.token == 1
    renewed = await book.renew(first, ttl_s=0.5)
    assert renewed is not None and renewed.expires_at_unix_s >= first.expires_at_unix_s

    async def expired() -> bool:
        snap = await book.snapshot()
        return not snap.leases[3].valid_at(snap.now_unix_s)

    await eventually(expired, timeout_s=5)
    taken = await book.acquire(3, "b", ttl_s=5)
    assert taken is not None and taken.owner == "b" and taken.token == 2
    assert await book.renew(first, ttl_s=5) is None  # a's lease is gone for good
    await book.release(taken)
    back = await book.acquire(3, "a", ttl_s=5)
    assert back is not None and back.token == 3  # released: free at once, with a new token


async def test_tokens_never_go_down_and_rows_are_never_deleted(book: LeaseBook, pg_url: str) -> None:
    await book.acquire(5, "a", ttl_s=5)
    with pytest.raises(psycopg.errors.RaiseException, match="only grows"):
        query(pg_url, "UPDATE nest_leases SET token = 0 WHERE nest_id = 5")
    with pytest.raises(psycopg.errors.RaiseException, match="never deleted"):
        query(pg_url, "DELETE FROM nest_leases")
    assert query(pg_url, "SELECT token FROM nest_leases WHERE nest_id = 5") == [(1,)]


async def test_two_instances_racing_for_a_free_nest_one_wins(book: LeaseBook, pg_url: str) -> None:
    other = await LeaseBook.open(pg_url)
    try:
        results = await asyncio.gather(*(b.acquire(7, name, 5) for b, name in ((book, "a"), (other, "b"))))
    finally:
        await other.close()
    assert sum(r is not None for r in results) == 1


async def test_the_store_refuses_a_write_under_a_stale_fence(book: LeaseBook, pg_url: str) -> None:
    async with await AuditStore.open(pg_url) as store:
        lease = await book.acquire(3, "a", ttl_s=0.3)
        assert lease is not None
        fence = Fence(3, "a", lease.token)
        await store.record_transition(TransitionRecord(3, T0, "ready", "preflight", "by a"), fence=fence)

        # a pauses; its lease runs out; b takes the nest over
        async def take() -> bool:
            return await book.acquire(3, "b", ttl_s=5) is not None

        await eventually(take, timeout_s=5)
        with pytest.raises(StaleFenceError, match="stale"):
            await store.record_transition(TransitionRecord(3, T0 + 1, "a", "b", "a woke up"), fence=fence)
        await store.record_transition(TransitionRecord(3, T0 + 2, "x", "y", "by b"), fence=Fence(3, "b", 2))
        assert [t["cause"] for t in await store.transitions(3)] == ["by a", "by b"]
        with pytest.raises(StaleFenceError, match="no lease"):
            await store.record_transition(
                TransitionRecord(9, T0, "a", "b", "never leased"), fence=Fence(9, "a", 1)
            )
