"""Time, injected: wall-clock seconds for records, monotonic seconds for durations."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float:
        """Unix seconds, for what is recorded."""

    def monotonic(self) -> float:
        """Seconds that never go back, for durations and deadlines."""


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ScaledClock:
    """Monotonic time running ``speed`` times faster than real time, for a simulator running
    faster than real time: rates the controller measures (battery drain, ground speed) then come
    out in the simulator's seconds. Wall time stays real (records carry the real time)."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return self._t0 + (time.monotonic() - self._t0) * self.speed
