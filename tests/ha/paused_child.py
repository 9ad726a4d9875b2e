"""An instance for test_paused.py: keeps the lease of nest 1 and records a transition under it
every 50 ms while ``fence(1)`` allows; once it finds the nest lost, it tries one write with its
last (now stale) fence and says what the store answered. JSON lines on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import structlog

from dronectl.audit import AuditStore, StaleFenceError, TransitionRecord
from dronectl.audit.leases import LeaseBook
from dronectl.nest.leases import LeaseKeeper, LeaseSettings

SETTINGS = LeaseSettings(ttl_s=2.0, renew_interval_s=0.3, orphan_grace_s=1.0, safety_margin_s=0.5)


def say(**line: object) -> None:
    os.write(sys.stdout.fileno(), (json.dumps(line) + "\n").encode())


async def main(url: str) -> None:
    book = await LeaseBook.open(url)
    store = await AuditStore.open(url)
    keeper = LeaseKeeper(book, "paused", [1], SETTINGS)
    runner = asyncio.create_task(keeper.run(), name="child.keeper")
    await keeper.wait_owned(lambda owned: owned == [1], timeout_s=10)
    last = keeper.fence(1)
    say(owned=True, token=None if last is None else last.token)
    i = 0
    while True:
        fence = keeper.fence(1)
        if fence is None:
            break
        last = fence
        await store.record_transition(TransitionRecord(1, float(i), "a", "b", f"child {i}"), fence=fence)
        say(wrote=i)
        i += 1
        await asyncio.sleep(0.05)
    assert last is not None
    try:
        await store.record_transition(TransitionRecord(1, float(i), "a", "b", "child stale"), fence=last)
        say(stale_write="accepted")
    except StaleFenceError as exc:
        say(stale_write="refused", error=str(exc))
    runner.cancel()
    await store.close()
    await book.close()


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is ours
    asyncio.run(main(sys.argv[1]))
