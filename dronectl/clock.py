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
