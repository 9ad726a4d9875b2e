"""A value that changes over time, read as an async iterator of its latest values.

Writers call :meth:`Watch.set` (synchronously, from the event loop); each reader iterates
:meth:`Watch.updates` and gets the current value first, then each new value. A slow reader skips
intermediate values rather than queueing them: status and telemetry are about the latest state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Watch(Generic[T]):
    def __init__(self, initial: T | None = None) -> None:
        self._value = initial
        self._version = 0 if initial is None else 1
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def value(self) -> T | None:
        return self._value

    def set(self, value: T) -> None:
        """Publish ``value``; equal consecutive values are published once."""
        if self._version and value == self._value:
            return
        self._value = value
        self._version += 1
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def updates(self) -> AsyncIterator[T]:
        seen = 0
        while True:
            if self._version != seen and self._value is not None:
                seen = self._version
                yield self._value
                continue
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)

    async def wait_for(self, predicate: Callable[[T], bool], timeout_s: float) -> T:
        """The first value (current or future) for which ``predicate`` holds; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            async for value in self.updates():
                if predicate(value):
                    return value
        raise AssertionError("unreachable: updates() never ends")
