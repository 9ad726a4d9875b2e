"""The parameters ground stations read by name are all there, with PX4's types and values.

The names: every PARAM_VALUE in the recording of real PX4 (summary.txt section 5, with its type and
value), every parameter MAVSDK's plugins read by name, and the ones QGroundControl's PX4 support
reads by name. Each is asked for with PARAM_REQUEST_READ by name, as those clients do.
"""

from __future__ import annotations

import re
import struct

import pytest

from adapters.mavlink import dronectl_v20 as mav

from ..conftest import PX4_REFERENCE
from .px4_harness import Harness, make

# MAVSDK (plugins action, telemetry, follow_me, failure): name -> PX4 type
MAVSDK_READS = {
    "MIS_TAKEOFF_ALT": mav.MAV_PARAM_TYPE_REAL32, "MPC_XY_CRUISE": mav.MAV_PARAM_TYPE_REAL32,
    "RTL_RETURN_ALT": mav.MAV_PARAM_TYPE_REAL32, "SYS_HITL": mav.MAV_PARAM_TYPE_INT32,
    "CAL_GYRO0_ID": mav.MAV_PARAM_TYPE_INT32, "CAL_ACC0_ID": mav.MAV_PARAM_TYPE_INT32,
    "CAL_MAG0_ID": mav.MAV_PARAM_TYPE_INT32, "SENS_BOARD_X_OFF": mav.MAV_PARAM_TYPE_REAL32,
    "SENS_DPRES_OFF": mav.MAV_PARAM_TYPE_REAL32, "FLW_TGT_HT": mav.MAV_PARAM_TYPE_REAL32,
    "FLW_TGT_DST": mav.MAV_PARAM_TYPE_REAL32, "FLW_TGT_FA": mav.MAV_PARAM_TYPE_REAL32,
    "FLW_TGT_RS": mav.MAV_PARAM_TYPE_REAL32, "FLW_TGT_ALT_M": mav.MAV_PARAM_TYPE_INT32,
    "FLW_TGT_MAX_VEL": mav.MAV_PARAM_TYPE_REAL32, "SYS_FAILURE_EN": mav.MAV_PARAM_TYPE_INT32,
}  # fmt: skip
# QGroundControl's PX4 support (FirmwarePlugin/PX4, its setup pages and safety settings)
QGC_READS = {
    "SYS_AUTOSTART": mav.MAV_PARAM_TYPE_INT32, "MAV_SYS_ID": mav.MAV_PARAM_TYPE_INT32,
    "COM_RC_IN_MODE": mav.MAV_PARAM_TYPE_INT32, "RC_MAP_FLTMODE": mav.MAV_PARAM_TYPE_INT32,
    "COM_FLTMODE1": mav.MAV_PARAM_TYPE_INT32, "COM_LOW_BAT_ACT": mav.MAV_PARAM_TYPE_INT32,
    "NAV_DLL_ACT": mav.MAV_PARAM_TYPE_INT32, "NAV_RCL_ACT": mav.MAV_PARAM_TYPE_INT32,
    "COM_RC_LOSS_T": mav.MAV_PARAM_TYPE_REAL32, "COM_DL_LOSS_T": mav.MAV_PARAM_TYPE_INT32,
    "GF_ACTION": mav.MAV_PARAM_TYPE_INT32, "GF_MAX_HOR_DIST": mav.MAV_PARAM_TYPE_REAL32,
    "GF_MAX_VER_DIST": mav.MAV_PARAM_TYPE_REAL32, "RTL_DESCEND_ALT": mav.MAV_PARAM_TYPE_REAL32,
    "RTL_LAND_DELAY": mav.MAV_PARAM_TYPE_REAL32, "BAT_LOW_THR": mav.MAV_PARAM_TYPE_REAL32,
    "BAT_CRIT_THR": mav.MAV_PARAM_TYPE_REAL32, "BAT_EMERGEN_THR": mav.MAV_PARAM_TYPE_REAL32,
    "BAT1_N_CELLS": mav.MAV_PARAM_TYPE_INT32, "BAT1_V_CHARGED": mav.MAV_PARAM_TYPE_REAL32,
    "BAT1_V_EMPTY": mav.MAV_PARAM_TYPE_REAL32, "MPC_XY_VEL_MAX": mav.MAV_PARAM_TYPE_REAL32,
    "MPC_LAND_SPEED": mav.MAV_PARAM_TYPE_REAL32, "MPC_TKO_SPEED": mav.MAV_PARAM_TYPE_REAL32,
    "SDLOG_MODE": mav.MAV_PARAM_TYPE_INT32, "MNT_MODE_IN": mav.MAV_PARAM_TYPE_INT32,
    "TRIG_MODE": mav.MAV_PARAM_TYPE_INT32, "COM_ARM_WO_GPS": mav.MAV_PARAM_TYPE_INT32,
    "CBRK_USB_CHK": mav.MAV_PARAM_TYPE_INT32, "SYS_HAS_MAG": mav.MAV_PARAM_TYPE_INT32,
}  # fmt: skip

_RECORDED = re.compile(r"^  ([A-Z0-9_]+)\s+= (\S+) \(type (\d+) ", re.M)


def recorded_params() -> dict[str, tuple[float, int]]:
    path = PX4_REFERENCE / "summary.txt"
    assert path.exists(), f"the PX4 reference recording is missing: {path}"
    found = {m.group(1): (float(m.group(2)), int(m.group(3))) for m in _RECORDED.finditer(path.read_text())}
    assert len(found) >= 30, found
    return found


def read(h: Harness, name: str) -> tuple[float, int]:
    """PARAM_REQUEST_READ by name; the answer's value decoded as PX4 encodes it, and its type."""
    h.sent.clear()
    h.send(mav.MAVLink_param_request_read_message(1, 1, name.encode(), -1))
    answers = [m for m in h.of_type("PARAM_VALUE") if m.param_id == name]
    assert len(answers) == 1, f"{name}: no PARAM_VALUE answer"
    m = answers[0]
    if m.param_type == mav.MAV_PARAM_TYPE_REAL32:
        return float(m.param_value), int(m.param_type)
    return float(struct.unpack("<i", struct.pack("<f", m.param_value))[0]), int(m.param_type)


# what the dock deployment sets otherwise than PX4's default (params.py says why)
DOCK_OVERRIDES = {"NAV_DLL_ACT"}


def test_recorded_parameters_have_px4s_types_and_values() -> None:
    h = make()
    for name, (value, ptype) in recorded_params().items():
        got_value, got_type = read(h, name)
        assert got_type == ptype, f"{name}: type {got_type}, PX4 {ptype}"
        if name not in DOCK_OVERRIDES:
            assert got_value == pytest.approx(value, rel=1e-5), f"{name}: {got_value}, PX4 {value}"


@pytest.mark.parametrize("reads", [MAVSDK_READS, QGC_READS], ids=["mavsdk", "qgc"])
def test_parameters_clients_read_by_name_are_there(reads: dict[str, int]) -> None:
    h = make()
    for name, ptype in reads.items():
        _, got_type = read(h, name)
        assert got_type == ptype, f"{name}: type {got_type}, PX4 {ptype}"


def test_unknown_parameter_gets_no_answer() -> None:
    h = make()
    h.sent.clear()
    h.send(mav.MAVLink_param_request_read_message(1, 1, b"NO_SUCH_PARAM", -1))
    assert h.of_type("PARAM_VALUE") == []
