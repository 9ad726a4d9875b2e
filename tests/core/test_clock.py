"""The service's clocks: the calendar the automations read starts where it is told and advances."""

from __future__ import annotations

import time

import pytest

from dronectl.domain.clock import ScaledClock, SystemClock, parse_instant

QUIET = "2026-12-06T14:00:00+08:00"  # a Sunday afternoon in Changchun


def test_parse_instant_needs_an_offset() -> None:
    assert parse_instant(QUIET) == parse_instant("2026-12-06T06:00:00Z") == 1796536800.0
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_instant("2026-12-06T14:00:00")
    with pytest.raises(ValueError, match="not an ISO-8601 instant"):
        parse_instant("Sunday 2pm")


def test_calendar_is_the_wall_time_unless_started() -> None:
    clock = SystemClock()
    assert abs(clock.calendar() - time.time()) < 1.0 and clock.calendar_start is None


def test_started_calendar_advances_while_records_keep_the_real_time() -> None:
    start = parse_instant(QUIET)
    clock = SystemClock(calendar_start=start)
    first = clock.calendar()
    assert start <= first < start + 1.0
    assert abs(clock.wall() - time.time()) < 1.0  # records: the real time
    m0 = clock.monotonic()
    while clock.monotonic() - m0 < 0.02:  # busy for a moment (no sleep: a state of the clock)
        pass
    assert clock.calendar() - first >= 0.02


def test_scaled_calendar_runs_at_the_simulator_speed() -> None:
    start = parse_instant(QUIET)
    clock = ScaledClock(10.0, calendar_start=start)
    # each calendar reading is bracketed by two monotonic ones, so a preemption between the calls
    # (scaled ten times) widens the bracket instead of failing the test
    m0_before, c0, m0_after = clock.monotonic(), clock.calendar(), clock.monotonic()
    while clock.monotonic() - m0_before < 0.5:
        pass
    m1_before, c1, m1_after = clock.monotonic(), clock.calendar(), clock.monotonic()
    assert m1_before - m0_after - 1e-6 <= c1 - c0 <= m1_after - m0_before + 1e-6
    assert abs(clock.wall() - time.time()) < 1.0
    assert ScaledClock(10.0).calendar() == pytest.approx(time.time(), abs=1.0)
