"""Supervised tasks: a crash is reported and the task restarted with back-off; the rest go on.

Used for each nest, so one bad link or one bug in a nest's handling never takes the fleet down.
Cancellation is never swallowed: cancelling the supervisor stops the child and ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from dronectl.domain.clock import Clock

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    stable_s: float = 120.0  # a run this long resets the back-off

    def delay_s(self, failures: int) -> float:
        return float(min(self.max_s, self.first_s * self.factor ** max(0, failures - 1)))


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    clock: Clock,
    backoff: Backoff | None = None,
    on_crash: Callable[[str, BaseException, int], None] | None = None,
) -> None:
    """Run ``run()`` forever: restart it after it crashes or returns, waiting longer each time."""
    backoff = backoff or Backoff()
    failures = 0
    while True:
        started = clock.monotonic()
        try:
            await run()
            log.warning("supervisor.child_returned", task=name)
            error: BaseException | None = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a supervisor's job is to catch what the child did not
            error = exc
        if clock.monotonic() - started >= backoff.stable_s:
            failures = 0
        failures += 1
        delay = backoff.delay_s(failures)
        if error is not None:
            log.error(
                "supervisor.child_crashed", task=name, error=repr(error), restart_in_s=delay, exc_info=error
            )
            if on_crash is not None:
                on_crash(name, error, failures)
        await asyncio.sleep(delay)  # back-off between restarts, not waiting for a state
