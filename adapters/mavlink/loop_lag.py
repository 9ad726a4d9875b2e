"""How late the event loop runs: a timer that re-arms itself; how late it fires is the lag.

A starved service (a loaded machine, a long callback) runs its timers late and reads its sockets
late. The heartbeat watchdog must not read that as a silent nest: it asks ``recent_lag_s`` how late
the loop has been lately. The monitor also logs, at most once per ``warn_every_s``, when the lag
passes ``warn_s``: the service itself is starved.
"""

from __future__ import annotations

import asyncio
import weakref

import structlog

log = structlog.get_logger(__name__)

INTERVAL_S = 0.1
WARN_S = 0.2  # a loop this late is starved
WARN_EVERY_S = 10.0
WINDOW = 30  # ticks the recent lag is the maximum of (3 s at INTERVAL_S)

_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLagMonitor] = weakref.WeakKeyDictionary()


class LoopLagMonitor:
    def __init__(
        self,
        interval_s: float = INTERVAL_S,
        warn_s: float = WARN_S,
        warn_every_s: float = WARN_EVERY_S,
        window: int = WINDOW,
    ) -> None:
        self.interval_s = interval_s
        self.warn_s = warn_s
        self.warn_every_s = warn_every_s
        self._window = window
        self._lags: list[float] = []
        self.lag_s = 0.0  # the last tick's
        self.max_lag_s = 0.0  # since the start
        self.starved_ticks = 0
        self._users = 0
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._last_warning: float | None = None

    def recent_lag_s(self) -> float:
        """The largest lag of the last ticks (0 when not running)."""
        return max(self._lags, default=0.0)

    def start(self) -> None:
        """One more user; the first one starts the timer."""
        self._users += 1
        if self._timer is None:
            self._arm(asyncio.get_running_loop())

    def stop(self) -> None:
        """One user fewer; the last one stops the timer."""
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._lags.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + self.interval_s
        self._timer = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self.record(now - self._due, now)
        self._arm(loop)

    def record(self, lag_s: float, now_s: float) -> None:
        """One measured lag (also for tests)."""
        lag_s = max(0.0, lag_s)
        self.lag_s = lag_s
        self.max_lag_s = max(self.max_lag_s, lag_s)
        self._lags.append(lag_s)
        del self._lags[: -self._window]
        if lag_s > self.warn_s:
            self.starved_ticks += 1
            if self._last_warning is None or now_s - self._last_warning >= self.warn_every_s:
                self._last_warning = now_s
                log.warning(
                    "adapters.loop.starved",
                    lag_s=round(lag_s, 3),
                    starved_ticks=self.starved_ticks,
                    hint="the service gets too little CPU: timers and sockets are read late",
                )


def monitor(loop: asyncio.AbstractEventLoop | None = None) -> LoopLagMonitor:
    """The loop's one monitor (created on first use; ``start``/``stop`` it around its use)."""
    loop = loop or asyncio.get_running_loop()
    found = _monitors.get(loop)
    if found is None:
        found = _monitors[loop] = LoopLagMonitor()
    return found
