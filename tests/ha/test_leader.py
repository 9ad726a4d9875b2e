"""The automations leader (dronectl/app/leader.py): one lease row of its own (key ``AUTOMATIONS``)
in the same table and with the same fencing tokens as the nests'. Two instances against one
PostgreSQL: one leads; when it dies the other takes over after the lease runs out, with a new
token; the old leader stops on its own local deadline, before the new one starts, and the store
refuses whatever it still writes under the old token."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from dronectl.app.leader import lead_automations
from dronectl.audit import AuditStore, CommandOutcome, CommandRecord, MissionRecord, StaleFenceError
from dronectl.audit.leases import LeaseBook
from dronectl.domain.leases import AUTOMATIONS
from dronectl.nest.leases import LeaseKeeper, LeaseSettings

NESTS = [1, 2, 3, 4]
FAST = LeaseSettings(ttl_s=2.0, renew_interval_s=0.3, orphan_grace_s=1.0, safety_margin_s=0.5)
T0 = 1_760_000_000.0


class Pair:
    """Two instances' keepers, both candidates for the automations leader."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keepers: dict[str, LeaseKeeper] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.books: list[LeaseBook] = []
        self.both_leading = 0  # samples where two instances believed they led

    async def start(self, name: str) -> LeaseKeeper:
        book = await LeaseBook.open(self.url)
        self.books.append(book)
        keeper = LeaseKeeper(book, name, NESTS, FAST, lead=True)
        self.keepers[name] = keeper
        self.tasks[name] = asyncio.create_task(keeper.run(), name=f"test.keeper[{name}]")
        return keeper

    def crash(self, name: str) -> None:
        """As kill -9 (or a long pause): the keeper's loop stops, nothing is released."""
        self.tasks.pop(name).cancel()

    async def first_leader(self, timeout_s: float) -> str:
        waits = {asyncio.create_task(k.wait_held(AUTOMATIONS)): n for n, k in self.keepers.items()}
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        assert done, "no instance became the automations leader"
        return waits[next(iter(done))]

    async def watch(self) -> None:
        while True:
            if sum(k.leading() for k in self.keepers.values()) > 1:
                self.both_leading += 1
            await asyncio.sleep(0.02)  # a sampling period, not a wait for state


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[Pair]:
    p = Pair(pg_url)
    watcher = asyncio.create_task(p.watch(), name="test.watch")
    try:
        yield p
    finally:
        watcher.cancel()
        for task in p.tasks.values():
            task.cancel()
        for task in (watcher, *p.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for book in p.books:
            await book.close()


def incident(command_id: str) -> CommandRecord:
    return CommandRecord(
        command_id=command_id,
        at_unix_s=T0,
        actor_id="cc-1",
        actor_role="commander",
        nest_id=None,
        method="incident",
        args={"kind": "accident"},
        outcome=CommandOutcome.ACCEPTED,
        code="received",
        message="received",
    )


async def test_one_leader_taken_over_on_expiry_and_the_old_one_fenced_off(pair: Pair) -> None:
    await pair.start("a")
    await pair.start("b")
    leader = await pair.first_leader(timeout_s=10)
    other = "b" if leader == "a" else "a"
    old = pair.keepers[leader].lead_fence()
    assert old is not None and old.nest_id == AUTOMATIONS
    assert not pair.keepers[other].leading()
    # a few renewals on: still the same leader, the other never leads (sticky, not hashed)
    renewals = pair.keepers[leader].renewals
    await pair.keepers[leader].wait_owned(lambda _: pair.keepers[leader].renewals >= renewals + 3, 5)
    assert pair.keepers[leader].lead_fence() == old and not pair.keepers[other].leading()

    async with await AuditStore.open(pair.url) as store:
        store.lead_for = pair.keepers[leader].lead_fence  # as dronectl up: the automations' writes
        await store.record_command(incident("inc-1"), fence=store.automation_fence())

        pair.crash(leader)
        # the old leader stops on its local deadline (ttl less the margin), before anyone else can
        # take the lease over (its expiry in the database, ttl after the last renewal)
        await pair.keepers[leader].wait_lost(AUTOMATIONS)
        assert not pair.keepers[other].leading()
        with pytest.raises(StaleFenceError, match="not the automations leader"):
            store.automation_fence()

        async with asyncio.timeout(FAST.ttl_s + 3 * FAST.renew_interval_s + 2):
            await pair.keepers[other].wait_held(AUTOMATIONS)
        new = pair.keepers[other].lead_fence()
        assert new is not None and new.owner == other and new.token == old.token + 1

        # the old leader's write still on its way (it woke from a pause with the old token) is refused
        with pytest.raises(StaleFenceError, match="automations lease: lease token"):
            await store.record_command(incident("inc-2"), fence=old)
        with pytest.raises(StaleFenceError, match="automations lease"):
            await store.record_mission(
                MissionRecord("m-1", T0, "black_ice", "s1", "planned", None, "weather", {}), fence=old
            )
        store.lead_for = pair.keepers[other].lead_fence  # the new leader's writes go through
        await store.record_command(incident("inc-2"), fence=store.automation_fence())
        assert await store.command("inc-1") is not None and await store.command("inc-2") is not None
        assert await store.missions() == []
    assert pair.both_leading == 0


class Term:
    """Fake automations for one term: what the leader gate starts and stops, and when."""

    def __init__(self, name: str, log: list[tuple[str, str]], changed: asyncio.Event) -> None:
        self.name, self.log, self.changed = name, log, changed

    async def run(self) -> None:
        self.log.append(("run", self.name))
        self.changed.set()
        await asyncio.Event().wait()  # until cancelled

    async def stop(self) -> None:
        self.log.append(("stop", self.name))
        self.changed.set()


async def test_automations_run_on_the_leader_only_and_move_on_takeover(pair: Pair) -> None:
    log: list[tuple[str, str]] = []
    changed = asyncio.Event()

    async def until(entry: tuple[str, str]) -> None:
        async with asyncio.timeout(10):
            while entry not in log:
                changed.clear()
                await changed.wait()

    def term(name: str) -> Callable[[], Term]:
        return lambda: Term(name, log, changed)

    keepers = {name: await pair.start(name) for name in ("a", "b")}
    gates = {
        name: asyncio.create_task(lead_automations(keeper, term(name)), name=f"test.automations[{name}]")
        for name, keeper in keepers.items()
    }
    try:
        leader = await pair.first_leader(timeout_s=10)
        other = "b" if leader == "a" else "a"
        await until(("run", leader))
        assert ("run", other) not in log

        pair.crash(leader)  # its keeper stops renewing; its gate is still running
        await until(("stop", leader))  # it steps down by itself, on its local deadline
        await until(("run", other))
        assert log == [("run", leader), ("stop", leader), ("run", other)]  # never both at once
    finally:
        for task in gates.values():
            task.cancel()
        for task in gates.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert log[-1] == ("stop", other)
    assert pair.both_leading == 0
