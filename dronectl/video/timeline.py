"""Presentation times for a run of access units: the camera's 90 kHz clock, re-based to 0.

The camera's RTP timestamps wrap at 2^32 and start anew (random base) when it restarts a stream;
a step that is not a plausible frame interval is replaced by the arrival-time difference.
"""

from __future__ import annotations

from adapters.protocols import AccessUnit

CLOCK_RATE_HZ = 90_000
MAX_STEP_TICKS = 5 * CLOCK_RATE_HZ


class Timeline:
    def __init__(self) -> None:
        self.pts = 0
        self._last: AccessUnit | None = None

    def next_pts(self, unit: AccessUnit) -> int:
        last, self._last = self._last, unit
        if last is None:
            return self.pts
        step = (unit.rtp_timestamp - last.rtp_timestamp) & 0xFFFFFFFF
        if step == 0 or step > MAX_STEP_TICKS:
            wall_us = unit.received_time_us - last.received_time_us
            step = max(1, wall_us * CLOCK_RATE_HZ // 1_000_000)
        self.pts += step
        return self.pts
