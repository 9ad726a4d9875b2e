"""Time, injected: wall-clock seconds for records, monotonic seconds for durations, and the
calendar the automations act on (their schedules).

The calendar is the wall time, unless the clock was started at a set instant (``dronectl up
--clock-start``, the tests): then it starts there and advances with the clock's monotonic time
(so at the simulator's speed). Records and wire timestamps keep the real wall time: commands
carry their client's ``issued_at`` and deadline, the cameras their capture time, and those are
compared with :meth:`Clock.wall`; only what the time of day decides (patrol schedules, what the
automations will do next) reads :meth:`Clock.calendar`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float:
        """Unix seconds, for what is recorded."""

    def monotonic(self) -> float:
        """Seconds that never go back, for durations and deadlines."""

    def calendar(self) -> float:
        """Unix seconds of the instant the automations act on (the time of day of schedules):
        the wall time, unless the clock was started at a set instant."""


class _Calendar:
    """The calendar of a clock started at ``start`` (Unix seconds): it advances with ``monotonic``."""

    def __init__(self, start: float | None, monotonic: float) -> None:
        self.start = start
        self._m0 = monotonic

    def at(self, wall: float, monotonic: float) -> float:
        return wall if self.start is None else self.start + (monotonic - self._m0)


class SystemClock:
    def __init__(self, calendar_start: float | None = None) -> None:
        self._calendar = _Calendar(calendar_start, time.monotonic())

    @property
    def calendar_start(self) -> float | None:
        return self._calendar.start

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def calendar(self) -> float:
        return self._calendar.at(self.wall(), self.monotonic())


class ScaledClock:
    """Monotonic time running ``speed`` times faster than real time, for a simulator running
    faster than real time: rates the controller measures (battery drain, ground speed) then come
    out in the simulator's seconds. Wall time stays real (records carry the real time). A
    calendar started at ``calendar_start`` runs at the simulator's speed too (a simulated day)."""

    def __init__(self, speed: float, calendar_start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()
        self._calendar = _Calendar(calendar_start, self._t0)

    @property
    def calendar_start(self) -> float | None:
        return self._calendar.start

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return self._t0 + (time.monotonic() - self._t0) * self.speed

    def calendar(self) -> float:
        return self._calendar.at(self.wall(), self.monotonic())


def parse_instant(text: str) -> float:
    """An ISO-8601 instant with its UTC offset (``2026-12-06T14:00:00+08:00``) as Unix seconds.
    Raises ValueError for a malformed one or one without an offset (ambiguous: whose 14:00?)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 instant (e.g. 2026-12-06T14:00:00+08:00)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset: write it as e.g. 2026-12-06T14:00:00+08:00")
    return moment.timestamp()
