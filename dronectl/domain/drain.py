"""The battery drain a nest's drone shows in flight, measured from its battery reports.

The in-flight guard (``dronectl.nest.guard.InFlightGuard``) and the safety checks plan the way
home with it rather than with the model's nominal figure, so a cold or tired battery turns back
in time.
"""

from __future__ import annotations


class DrainMeter:
    """Battery drain measured in flight, %/min over the last few minutes."""

    WINDOW_S = 120.0

    def __init__(self) -> None:
        self._samples: list[tuple[float, float]] = []

    def add(self, mono_s: float, pct: float, flying: bool) -> None:
        if not flying:
            self._samples.clear()
            return
        self._samples.append((mono_s, pct))
        while self._samples and mono_s - self._samples[0][0] > self.WINDOW_S:
            self._samples.pop(0)

    def rate_pct_per_min(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, p0), (t1, p1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 10.0:
            return None
        return max(0.0, (p0 - p1) / (t1 - t0) * 60.0)
