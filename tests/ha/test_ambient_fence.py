"""With leases, every write about a nest carries this instance's fencing token without the caller
passing one (``AuditStore.fence_for``): a nest not held, or held under a token that is no longer
the current one, is not written for -- transitions, flights and their track alike."""

from __future__ import annotations

import pytest

from dronectl.audit import AuditStore, Fence, FlightStart, StaleFenceError, TrackSample, TransitionRecord
from dronectl.audit.leases import LeaseBook
from tests.pg import eventually

T0 = 1_760_000_000.0


async def test_writes_about_a_nest_carry_the_lease_of_this_instance(pg_url: str) -> None:
    book = await LeaseBook.open(pg_url)
    try:
        async with await AuditStore.open(pg_url) as store:
            lease = await book.acquire(3, "a", ttl_s=0.5)
            assert lease is not None
            held = {3: Fence(3, "a", lease.token)}
            store.fence_for = held.get

            await store.record_transition(TransitionRecord(3, T0, "ready", "preflight", "held"))
            await store.start_flight(FlightStart("f3", 3, T0))
            assert await store.record_track(TrackSample("f3", T0, 43.9, 125.3, 300.0, 5.0, 90.0))
            with pytest.raises(StaleFenceError, match="does not hold"):
                await store.record_transition(TransitionRecord(4, T0, "ready", "preflight", "not held"))

            async def taken() -> bool:  # a pauses past its lease; b takes nest 3 over
                return await book.acquire(3, "b", ttl_s=5) is not None

            await eventually(taken, timeout_s=5)
            with pytest.raises(StaleFenceError, match="stale"):
                await store.record_track(TrackSample("f3", T0 + 5, 43.9, 125.3, 301.0, 5.0, 89.0))
            with pytest.raises(StaleFenceError, match="stale"):
                await store.record_transition(TransitionRecord(3, T0 + 5, "a", "b", "after the takeover"))
            assert [t["cause"] for t in await store.transitions(3)] == ["held"]
            assert await store.transitions(4) == []
            detail = await store.flight("f3")
            assert detail is not None and len(detail["track"]) == 1
    finally:
        await book.close()
