"""Heartbeat watchdog of one remote component: connected while heartbeats keep coming.

A component counts as lost ``timeout_s`` after its last HEARTBEAT and as connected again at the
next one, with nothing to do by hand. The expiry is a loop timer re-armed by each heartbeat, so the
loss is reported at once, not at the next poll.
"""

from __future__ import annotations

import asyncio

import structlog

from adapters.errors import LinkLost
from adapters.mavlink.watch import Watch
from adapters.protocols import CommandResult, LinkState

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_S = 2.5  # with 1 Hz heartbeats: one may be lost, and a cut is reported within 3 s


class HeartbeatWatchdog:
    def __init__(self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.name = name
        self.timeout_s = timeout_s
        self.state = Watch(LinkState(connected=False, silent_s=None))
        self._last_beat: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost_waiters: set[asyncio.Future[None]] = set()

    @property
    def connected(self) -> bool:
        state = self.state.value
        return state is not None and state.connected

    def silent_s(self) -> float | None:
        if self._last_beat is None:
            return None
        return asyncio.get_running_loop().time() - self._last_beat

    def beat(self) -> None:
        """A HEARTBEAT from the component arrived."""
        loop = asyncio.get_running_loop()
        self._last_beat = loop.time()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self.timeout_s, self._expire)
        if not self.connected:
            log.info("adapters.link.up", component=self.name)
            self.state.set(LinkState(connected=True, silent_s=0.0))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def ensure_connected(self) -> None:
        """Raise ``LinkLost`` unless the component is heard now."""
        if not self.connected:
            raise LinkLost(self.name, self.silent_s())

    def unavailable_result(self) -> CommandResult:
        return CommandResult.NO_SYSTEM if self._last_beat is None else CommandResult.LINK_LOST

    def lost_future(self) -> asyncio.Future[None]:
        """A future that completes when the link is (or is already) lost. Cancel it when done."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.connected:
            fut.set_result(None)
        else:
            self._lost_waiters.add(fut)
            fut.add_done_callback(self._lost_waiters.discard)
        return fut

    def _expire(self) -> None:
        self._timer = None
        silent = self.silent_s()
        log.warning("adapters.link.lost", component=self.name, silent_s=silent)
        self.state.set(LinkState(connected=False, silent_s=silent))
        waiters, self._lost_waiters = self._lost_waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
