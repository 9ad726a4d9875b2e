"""The mode PX4 is in after it disarms: the last one chosen that does not prevent arming.

Real PX4 (commander's ``UserModeIntention::onDisarm``) leaves Return, Land, Orbit ... once it
disarms, for the last mode selected that arming allows (not a failsafe's): the PX4 reference
recording goes from AUTO.RTL to AUTO.LOITER (system_status STANDBY) right after "Disarmed by
landing". Selected on the ground, Return stays until changed, and arming in it is refused.
"""

from __future__ import annotations

import math

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.modes import FlightMode
from sitl.environment import FaultKind

from .px4_harness import Harness, make
from .test_px4_failsafes import airborne, lands_in_dock

NAN = math.nan


def heartbeat_status(h: Harness) -> int:
    return int(h.ap.heartbeat().system_status)


def test_after_an_rtl_landing_the_drone_is_in_hold_and_arms_again() -> None:
    h = make()
    airborne(h, north_m=100.0)
    assert h.command(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH) == mav.MAV_RESULT_ACCEPTED
    assert h.ap.mode is FlightMode.RTL
    lands_in_dock(h)
    assert [r.data["reason"] for r in h.ctx.recorder.all("disarmed")] == ["landing"]
    assert h.ap.mode is FlightMode.LOITER
    assert heartbeat_status(h) == mav.MAV_STATE_STANDBY
    assert h.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED


def test_a_failsafe_mode_is_not_the_one_returned_to() -> None:
    h = make()
    airborne(h, north_m=30.0)
    h.ctx.faults.inject(FaultKind.BATTERY_FAILURE, h.now_s)
    h.run(1.0)
    assert h.ap.mode is FlightMode.LAND
    h.run_until(lambda: not h.ap.armed, 120)
    assert h.ap.mode is FlightMode.LOITER  # where the reposition left it, not the failsafe's Land


def test_return_selected_on_the_ground_stays_and_arming_in_it_is_refused() -> None:
    h = make()
    h.run(6.0)
    assert h.command(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH) == mav.MAV_RESULT_ACCEPTED
    h.run(2.0)
    assert h.ap.mode is FlightMode.RTL
    assert heartbeat_status(h) == mav.MAV_STATE_UNINIT
    assert h.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_TEMPORARILY_REJECTED
    assert "Arming denied: Return mode not armable\t" in h.texts()
    assert h.command(mav.MAV_CMD_DO_SET_MODE, 1, 4, 3) == mav.MAV_RESULT_ACCEPTED
    assert h.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
