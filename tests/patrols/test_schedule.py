"""Cron windows in the city's timezone: rush hours on weekdays, winter mornings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dronectl.domain.config import CronWindowConfig, load_config
from dronectl.domain.patrols.schedule import Window, active_window, city_time, next_window

CN = ZoneInfo("Asia/Shanghai")
RUSH = [
    CronWindowConfig(cron="0 7 * * 1-5", duration_min=120),
    CronWindowConfig(cron="0 17 * * 1-5", duration_min=120),
]


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=CN)  # 14 Dec 2026 is a Monday


def test_inside_the_morning_rush() -> None:
    assert active_window(RUSH, at(14, 8, 30)) == Window(at(14, 7), at(14, 9))


def test_start_is_inclusive_end_exclusive() -> None:
    assert active_window(RUSH, at(14, 7, 0)) == Window(at(14, 7), at(14, 9))
    assert active_window(RUSH, at(14, 6, 59, 59)) is None
    assert active_window(RUSH, at(14, 8, 59, 59)) is not None
    assert active_window(RUSH, at(14, 9, 0)) is None
    assert at(14, 7) in Window(at(14, 7), at(14, 9))
    assert at(14, 9) not in Window(at(14, 7), at(14, 9))


def test_evening_rush_and_not_at_weekends() -> None:
    assert active_window(RUSH, at(18, 18, 15)) == Window(at(18, 17), at(18, 19))  # Friday
    assert active_window(RUSH, at(19, 8, 0)) is None  # Saturday
    assert active_window(RUSH, at(20, 17, 30)) is None  # Sunday


def test_the_city_clock_not_the_servers() -> None:
    # 00:30 UTC on Monday is 08:30 in Changchun: rush hour
    now_utc = datetime(2026, 12, 14, 0, 30, tzinfo=UTC)
    assert active_window(RUSH, now_utc.astimezone(CN)) == Window(at(14, 7), at(14, 9))
    assert active_window(RUSH, city_time(now_utc.timestamp(), "Asia/Shanghai")) is not None
    # the same cron read in UTC would not be open at 00:30 UTC
    assert active_window(RUSH, now_utc) is None
    assert city_time(now_utc.timestamp(), "Asia/Shanghai").hour == 8


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        active_window(RUSH, datetime(2026, 12, 14, 8, 0))
    with pytest.raises(ValueError, match="timezone"):
        next_window(RUSH, datetime(2026, 12, 14, 8, 0))


def test_overlapping_windows_are_one() -> None:
    crons = [
        CronWindowConfig(cron="0 7 * * *", duration_min=120),
        CronWindowConfig(cron="30 8 * * *", duration_min=60),
    ]
    assert active_window(crons, at(14, 8, 45)) == Window(at(14, 7), at(14, 9, 30))
    assert active_window(crons, at(14, 9, 15)) == Window(at(14, 8, 30), at(14, 9, 30))


def test_a_window_longer_than_its_period() -> None:
    hourly_for_two = [CronWindowConfig(cron="0 * * * *", duration_min=120)]
    assert active_window(hourly_for_two, at(14, 10, 10)) == Window(at(14, 9), at(14, 12))


def test_a_window_across_midnight() -> None:
    late = [CronWindowConfig(cron="0 23 * * *", duration_min=180)]
    assert active_window(late, at(15, 1, 0)) == Window(at(14, 23), at(15, 2))


def test_next_window() -> None:
    assert next_window(RUSH, at(14, 8, 30)) == Window(at(14, 17), at(14, 19))
    assert next_window(RUSH, at(18, 20, 0)) == Window(at(21, 7), at(21, 9))  # Friday night -> Monday
    assert next_window([], at(14, 8)) is None
    assert active_window([], at(14, 8)) is None


def test_shipped_black_ice_watch_is_winter_early_mornings() -> None:
    config = load_config()
    schedule = config.patrols.black_ice.schedule
    tz = ZoneInfo(config.timezone)
    dec = datetime(2026, 12, 13, 6, 0, tzinfo=tz)
    window = active_window(schedule, dec)
    assert window is not None and window.start.hour == 5
    assert window.duration_s == timedelta(minutes=schedule[0].duration_min).total_seconds()
    assert active_window(schedule, datetime(2027, 2, 10, 5, 30, tzinfo=tz)) is not None
    assert active_window(schedule, datetime(2026, 11, 29, 6, 0, tzinfo=tz)) is None  # not yet winter
    assert active_window(schedule, datetime(2026, 3, 2, 6, 0, tzinfo=tz)) is None
    assert active_window(schedule, datetime(2026, 12, 13, 12, 0, tzinfo=tz)) is None  # midday
