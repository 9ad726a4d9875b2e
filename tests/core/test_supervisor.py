from __future__ import annotations

import asyncio

import pytest

from dronectl.domain.clock import SystemClock
from dronectl.nest.supervisor import Backoff, supervise

FAST = Backoff(first_s=0.01, factor=2.0, max_s=0.05, stable_s=10.0)


async def test_crashing_child_is_restarted_and_reported_while_others_go_on() -> None:
    runs = 0
    crashes: list[tuple[str, int]] = []
    healthy_ticks = 0
    third_run = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs >= 3:
            third_run.set()
            await asyncio.Event().wait()
        raise RuntimeError(f"boom {runs}")

    async def healthy() -> None:
        nonlocal healthy_ticks
        while True:
            healthy_ticks += 1
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(
            supervise("nest[01]", flaky, SystemClock(), FAST, lambda n, e, f: crashes.append((str(e), f)))
        )
        b = tg.create_task(supervise("nest[02]", healthy, SystemClock(), FAST))
        await asyncio.wait_for(third_run.wait(), 5)
        a.cancel()
        b.cancel()
    assert crashes == [("boom 1", 1), ("boom 2", 2)]
    assert healthy_ticks > 0


def test_backoff_grows_to_its_cap() -> None:
    b = Backoff(first_s=1, factor=2, max_s=10)
    assert [b.delay_s(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def child() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise("x", child, SystemClock(), FAST))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
