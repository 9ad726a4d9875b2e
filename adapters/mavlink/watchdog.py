"""Heartbeat watchdog of one remote component: connected while its frames keep coming.

A component counts as lost ``timeout_s`` after the last frame that arrived from it (any message,
timed when its datagram was read) and as connected again at the next HEARTBEAT, with nothing to do
by hand. The expiry is a loop timer, so the loss is reported at once, not at the next poll.

Silence is judged against the loop's own lag (``silence_check``): a loop that runs late fires the
timer late and reads the socket late, so a nest that kept sending looks quiet. When the timer
fired late, or the loop has lagged lately (``loop_lag``), by more than a fraction of the timeout,
the verdict waits for the loop to read what arrived meanwhile; a real cut is still reported, at
the latest ``MAX_EXCUSE`` timeouts after the last frame.
"""

from __future__ import annotations

import asyncio

import structlog

from adapters.errors import LinkLost
from adapters.mavlink import loop_lag
from adapters.mavlink.watch import Watch
from adapters.protocols import CommandResult, LinkState

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_S = 2.5  # with 1 Hz heartbeats: one may be lost, and a cut is reported within 3 s
LAG_FRACTION = 0.1  # a loop later than this fraction of the timeout may hide frames that arrived
MAX_EXCUSE = 2.0  # however late the loop, silence this many timeouts long is a loss


def silence_check(last_arrival_s: float, now_s: float, timeout_s: float, lag_s: float) -> float | None:
    """None: the component is lost; else how long to wait before judging again.

    ``lag_s``: how late the loop has been running (this timer's lateness, or recent ticks of the
    loop-lag monitor). Frames that came while the loop was late may still wait unread: give it
    that long to read them, unless the silence already passed ``MAX_EXCUSE`` timeouts.
    """
    silent = now_s - last_arrival_s
    if silent < timeout_s:
        return timeout_s - silent
    if lag_s > LAG_FRACTION * timeout_s and silent < MAX_EXCUSE * timeout_s:
        return min(lag_s, MAX_EXCUSE * timeout_s - silent)
    return None


class HeartbeatWatchdog:
    def __init__(self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.name = name
        self.timeout_s = timeout_s
        self.state = Watch(LinkState(connected=False, silent_s=None))
        self._last_beat: float | None = None
        self._last_frame: float | None = None  # loop time the last frame from it was read
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._lost_waiters: set[asyncio.Future[None]] = set()

    @property
    def connected(self) -> bool:
        state = self.state.value
        return state is not None and state.connected

    def silent_s(self) -> float | None:
        if self._last_frame is None:
            return None
        return asyncio.get_running_loop().time() - self._last_frame

    def heard(self) -> None:
        """A frame (any message) from the component was read now."""
        if self._last_frame is not None or self._last_beat is not None:
            self._last_frame = asyncio.get_running_loop().time()

    def beat(self) -> None:
        """A HEARTBEAT from the component arrived."""
        loop = asyncio.get_running_loop()
        self._last_beat = self._last_frame = loop.time()
        if self._timer is None:
            self._arm(loop, self.timeout_s)
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

    def _arm(self, loop: asyncio.AbstractEventLoop, delay_s: float) -> None:
        self._due = loop.time() + delay_s
        self._timer = loop.call_at(self._due, self._expire)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._timer = None
        assert self._last_frame is not None
        lag = max(now - self._due, loop_lag.monitor(loop).recent_lag_s())
        wait = silence_check(self._last_frame, now, self.timeout_s, lag)
        if wait is not None:
            if now - self._last_frame >= self.timeout_s:
                log.info("adapters.link.late_loop", component=self.name, lag_s=round(lag, 3))
            self._arm(loop, wait)
            return
        silent = self.silent_s()
        log.warning("adapters.link.lost", component=self.name, silent_s=silent)
        self.state.set(LinkState(connected=False, silent_s=silent))
        waiters, self._lost_waiters = self._lost_waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
