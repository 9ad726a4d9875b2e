"""``dronectl up``'s shutdown budget: a shutdown cancelled for overrunning it ends the service
normally; any other cancellation still propagates."""

from __future__ import annotations

import asyncio

import pytest

from dronectl.app.up import SHUTDOWN_OVERRUN, _stopped_within_budget


async def _serving(cancel_with: str | None, *, stuck_cleanup: bool) -> int:
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().call_later(0.05, lambda: main.cancel(cancel_with))
    try:
        await asyncio.Event().wait()  # serving
    finally:
        if stuck_cleanup:
            await asyncio.Event().wait()  # a cleanup that never ends (a command to a nest that is gone)
    return 1


async def test_an_overrun_shutdown_is_cut_and_ends_the_service() -> None:
    async with asyncio.timeout(5):
        task = asyncio.create_task(_stopped_within_budget(_serving(None, stuck_cleanup=True)))
        await asyncio.sleep(0.1)  # the first cancel: the stop; the cleanup then hangs
        task.cancel(SHUTDOWN_OVERRUN)
        assert await task == 0


async def test_another_cancellation_still_propagates() -> None:
    with pytest.raises(asyncio.CancelledError):
        await _stopped_within_budget(_serving("something else", stuck_cleanup=False))
