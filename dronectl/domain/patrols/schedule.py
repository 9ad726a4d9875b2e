"""Patrol time windows from cron expressions (croniter), in the city's timezone (pure).

A :class:`~dronectl.domain.config.CronWindowConfig` opens a window at each time its cron expression
fires and keeps it open for ``duration_min``. Times are timezone-aware datetimes; the cron
fields are read in the timezone of the ``now`` given (the city's, from :func:`city_time`), so
"0 7 * * 1-5" is 07:00 on weekdays in Changchun whatever the server's clock says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from dronectl.domain.config import CronWindowConfig

_MAX_STEPS = 10_000  # fires looked back over for windows longer than the cron's period


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def city_time(unix_s: float, timezone: str) -> datetime:
    """The wall-clock time in the city (config ``timezone``) at ``unix_s``."""
    return datetime.fromtimestamp(unix_s, ZoneInfo(timezone))


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must carry a timezone (the city's): see city_time()")
    return now


def _windows_holding(cron: CronWindowConfig, now: datetime) -> list[Window]:
    """The windows of one cron entry open at ``now``, latest start first."""
    span = timedelta(minutes=cron.duration_min)
    # croniter's get_prev is strictly before its base: start a second later so a window that
    # opens exactly at ``now`` is found.
    it = croniter(cron.cron, now + timedelta(seconds=1))
    found: list[Window] = []
    for _ in range(_MAX_STEPS):
        start = it.get_prev(datetime)
        if start + span <= now:
            break
        if start <= now:
            found.append(Window(start, start + span))
    return found


def active_window(crons: Sequence[CronWindowConfig], now: datetime) -> Window | None:
    """The window open at ``now`` (start inclusive, end exclusive), or None. Windows that
    overlap at ``now`` are one: from the earliest start to the latest end among them."""
    _aware(now)
    open_now = [w for cron in crons for w in _windows_holding(cron, now)]
    if not open_now:
        return None
    return Window(min(w.start for w in open_now), max(w.end for w in open_now))


def next_window(crons: Sequence[CronWindowConfig], now: datetime) -> Window | None:
    """The next window to open strictly after ``now`` (None when there are no crons)."""
    _aware(now)
    starts = [(croniter(c.cron, now).get_next(datetime), c) for c in crons]
    if not starts:
        return None
    start, cron = min(starts, key=lambda sc: sc[0])
    return Window(start, start + timedelta(minutes=cron.duration_min))
