"""Takeoff as PX4's navigator does it (takeoff.cpp): never below home + MIS_TAKEOFF_ALT (2.5 m), with
its message; a target that is lower is raised, not flown. In simulated time (no sockets)."""

from __future__ import annotations

import math

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.modes import FlightMode

from .px4_harness import HOME, Harness, make

NAN = math.nan
MIN_TEXT = "Using minimum takeoff altitude: 2.50 m\t"


def take_off(h: Harness, alt_amsl_m: float) -> None:
    h.run(6.0)
    assert h.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert h.command(mav.MAV_CMD_NAV_TAKEOFF, NAN, 0, 0, NAN, NAN, NAN, alt_amsl_m) == mav.MAV_RESULT_ACCEPTED
    h.run_until(lambda: h.ap.mode is FlightMode.LOITER and not h.ap.landed, 60)
    h.run(3.0)


def test_a_target_below_the_minimum_climbs_to_the_minimum_and_says_so() -> None:
    h = make()
    take_off(h, HOME.alt_amsl_m + 0.5)
    assert MIN_TEXT in h.texts()
    assert h.ap.armed and not h.ap.landed  # hovering, not down again
    assert 2.0 <= h.height_m <= 2.8  # the takeoff ends within 0.5 m


def test_no_target_takes_the_minimum() -> None:
    h = make()
    take_off(h, NAN)
    assert MIN_TEXT in h.texts()
    assert h.ap.armed and 2.0 <= h.height_m <= 2.8  # the takeoff ends within 0.5 m


def test_a_target_above_the_minimum_is_flown_without_a_word() -> None:
    h = make()
    take_off(h, HOME.alt_amsl_m + 20.0)
    assert MIN_TEXT not in h.texts()
    assert 19.0 <= h.height_m <= 21.0
