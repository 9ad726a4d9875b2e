"""Simulated time: real time times a speed factor, read from the monotonic clock."""

from __future__ import annotations

import time


class SimClock:
    """Seconds of simulated time since start. ``speed`` 1.0 is real time, 10.0 is ten times faster."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed factor must be positive")
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def real_seconds(self, sim_s: float) -> float:
        return sim_s / self.speed
