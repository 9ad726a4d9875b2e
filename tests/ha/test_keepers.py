"""LeaseKeepers of several instances against one PostgreSQL: the nests spread by rendezvous
hashing, never held by two at once, taken over when an instance dies, rebalanced when one joins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from dronectl.audit.leases import LeaseBook
from dronectl.domain.leases import assignment
from dronectl.nest.leases import LeaseKeeper, LeaseSettings

NESTS = list(range(1, 17))
FAST = LeaseSettings(ttl_s=2.0, renew_interval_s=0.3, orphan_grace_s=1.0, safety_margin_s=0.5)


class Cluster:
    def __init__(self, url: str) -> None:
        self.url = url
        self.keepers: dict[str, LeaseKeeper] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.books: list[LeaseBook] = []
        self.overlaps: list[tuple[int, list[str]]] = []

    async def start(self, name: str) -> LeaseKeeper:
        book = await LeaseBook.open(self.url)
        self.books.append(book)
        keeper = LeaseKeeper(book, name, NESTS, FAST)
        self.keepers[name] = keeper
        self.tasks[name] = asyncio.create_task(keeper.run(), name=f"test.keeper[{name}]")
        return keeper

    async def crash(self, name: str) -> None:
        """As kill -9: the loop stops, nothing is released."""
        self.tasks.pop(name).cancel()
        self.keepers.pop(name)

    def owners(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for name, keeper in self.keepers.items():
            for nest in keeper.owned():
                out.setdefault(nest, []).append(name)
        return out

    async def watch(self) -> None:
        """Sample ownership all along: a nest held by two live instances at once is a failure."""
        while True:
            self.overlaps += [(n, names) for n, names in self.owners().items() if len(names) > 1]
            await asyncio.sleep(0.02)

    async def until(self, condition: Callable[[dict[int, list[str]]], bool], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                if condition(self.owners()):
                    return
                await asyncio.sleep(0.05)


@pytest.fixture
async def cluster(pg_url: str) -> AsyncIterator[Cluster]:
    c = Cluster(pg_url)
    watcher = asyncio.create_task(c.watch(), name="test.watch")
    try:
        yield c
    finally:
        watcher.cancel()
        for task in c.tasks.values():
            task.cancel()
        for task in (watcher, *c.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for book in c.books:
            await book.close()


def spread_is(instances: list[str]) -> Callable[[dict[int, list[str]]], bool]:
    want = assignment(NESTS, instances)
    return lambda owners: owners == {n: [i] for i, nests in want.items() for n in nests}


async def test_spread_takeover_and_rebalance(cluster: Cluster) -> None:
    for name in ("a", "b", "c"):
        await cluster.start(name)
    await cluster.until(spread_is(["a", "b", "c"]), timeout_s=10)
    moved = assignment(NESTS, ["a", "b", "c"])["c"]
    before = {n: cluster.keepers["c"].fence(n) for n in moved}
    takeovers_before = cluster.keepers["a"].takeovers + cluster.keepers["b"].takeovers

    # c dies: its nests are owned again within the takeover time (ttl + grace + a tick or two)
    await cluster.crash("c")
    takeover_bound_s = FAST.ttl_s + FAST.orphan_grace_s + 3 * FAST.renew_interval_s + 1.0
    await cluster.until(lambda owners: set(owners) == set(NESTS), timeout_s=takeover_bound_s + 5)
    survivors = cluster.keepers["a"].takeovers + cluster.keepers["b"].takeovers
    assert survivors - takeovers_before == len(moved)
    for nest in moved:
        [owner] = cluster.owners()[nest]
        fence, old = cluster.keepers[owner].fence(nest), before[nest]
        assert fence is not None and old is not None
        assert fence.token == old.token + 1  # a new token: c's writes are refused from now on

    # d joins: the nests move to where rendezvous hashing puts them, never held twice on the way
    await cluster.start("d")
    await cluster.until(spread_is(["a", "b", "d"]), timeout_s=15)
    assert cluster.overlaps == []
