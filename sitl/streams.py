"""Message streams at configurable rates, as MAV_CMD_SET_MESSAGE_INTERVAL changes them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Stream:
    default_interval_s: float
    interval_s: float  # <= 0: disabled
    next_due_s: float = 0.0


class StreamScheduler:
    """Which periodic messages are due at a simulated time.

    ``defaults`` maps a MAVLink message id to its default rate in Hz (PX4's ground-link rates);
    ``set_interval`` follows MAV_CMD_SET_MESSAGE_INTERVAL's param2: -1 disables, 0 restores the
    default, a positive value is the interval in microseconds.
    """

    def __init__(self, defaults_hz: dict[int, float]) -> None:
        self._streams = {
            msg_id: _Stream(1.0 / hz if hz > 0 else 0.0, 1.0 / hz if hz > 0 else 0.0)
            for msg_id, hz in defaults_hz.items()
        }

    def knows(self, msg_id: int) -> bool:
        return msg_id in self._streams

    def set_interval(self, msg_id: int, interval_us: float, now_s: float) -> bool:
        """Apply SET_MESSAGE_INTERVAL; False when this component cannot stream ``msg_id``."""
        stream = self._streams.get(msg_id)
        if stream is None:
            return False
        if interval_us < 0:
            stream.interval_s = 0.0
        elif interval_us == 0:
            stream.interval_s = stream.default_interval_s
        else:
            stream.interval_s = interval_us / 1e6
        stream.next_due_s = now_s
        return True

    def interval_us(self, msg_id: int) -> int:
        """Current interval as MESSAGE_INTERVAL reports it (-1 disabled, 0 unknown id)."""
        stream = self._streams.get(msg_id)
        if stream is None:
            return 0
        return int(stream.interval_s * 1e6) if stream.interval_s > 0 else -1

    def due(self, now_s: float) -> list[int]:
        """Message ids to send now; each stream is advanced to its next slot."""
        out: list[int] = []
        for msg_id, stream in self._streams.items():
            if stream.interval_s <= 0 or now_s < stream.next_due_s:
                continue
            out.append(msg_id)
            stream.next_due_s += stream.interval_s
            if stream.next_due_s <= now_s:  # fell behind (slow tick): do not burst
                stream.next_due_s = now_s + stream.interval_s
        return out
