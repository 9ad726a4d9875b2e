"""The PX4 parameters clients of a nest touch, and PX4's parameter protocol.

The set: every parameter the recording of real PX4 shows a ground station reading, every one
MAVSDK's plugins read by name (action, telemetry's calibration and HITL checks, follow me,
failure), the ones QGroundControl's PX4 support reads by name (flight modes and RC mapping, safety
and return settings, battery, sensors present, logging, mount and trigger), and the ones the
simulated PX4 itself acts on. Types are PX4's (parameters.xml of PX4 main); a ground station that
asks for one PX4 has and the simulator lacks gets no answer, as PX4 answers an unknown name.

PX4 sends integer parameters *bytewise*: the int32's bits travel in PARAM_VALUE's float field
(AUTOPILOT_VERSION advertises MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE). Values below are
PX4's defaults as recorded, except where a dock deployment must set them otherwise (marked).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import MAVLinkMessage, Outbox

INT32 = mav.MAV_PARAM_TYPE_INT32
REAL32 = mav.MAV_PARAM_TYPE_REAL32


@dataclass(frozen=True)
class ParamDef:
    name: str
    type: int
    default: float


def _defs(system_id: int) -> list[ParamDef]:
    f, i = REAL32, INT32
    return [
        ParamDef("BAT_CRIT_THR", f, 0.15),  # dock: critical at 15 % (PX4 0.07) so RTL has margin
        ParamDef("BAT_EMERGEN_THR", f, 0.07),  # dock (PX4 0.05)
        ParamDef("BAT_LOW_THR", f, 0.25),  # dock (PX4 0.15)
        ParamDef("BAT1_CAPACITY", f, -1.0),
        ParamDef("BAT1_N_CELLS", i, 4),  # SIH quadx airframe
        ParamDef("BAT1_SOURCE", i, 0),
        ParamDef("BAT1_V_CHARGED", f, 4.05),
        ParamDef("BAT1_V_EMPTY", f, 3.6),
        ParamDef("CAL_ACC0_ID", i, 1310988),
        ParamDef("CAL_ACC1_ID", i, 1310996),
        ParamDef("CAL_ACC2_ID", i, 1311004),
        ParamDef("CAL_BARO0_ID", i, 6620172),
        ParamDef("CAL_BARO0_OFF", f, -6.10352),
        ParamDef("CAL_BARO0_PRIO", i, 50),
        ParamDef("CAL_GYRO0_ID", i, 1310988),
        ParamDef("CAL_GYRO1_ID", i, 1310996),
        ParamDef("CAL_GYRO2_ID", i, 1311004),
        ParamDef("CAL_MAG0_ID", i, 197388),
        ParamDef("CAL_MAG0_PRIO", i, 50),
        ParamDef("CAL_MAG1_ID", i, 197644),
        ParamDef("CAL_MAG1_PRIO", i, 50),
        ParamDef("CBRK_FLIGHTTERM", i, 121212),
        ParamDef("CBRK_IO_SAFETY", i, 22027),  # SITL's rc.sitl
        ParamDef("CBRK_SUPPLY_CHK", i, 894281),  # SITL's rc.sitl
        ParamDef("CBRK_USB_CHK", i, 197848),  # SITL's rc.sitl
        ParamDef("COM_ARM_WO_GPS", i, 1),
        ParamDef("COM_DISARM_LAND", f, 2.0),
        ParamDef("COM_DISARM_PRFLT", f, 10.0),
        ParamDef("COM_DL_LOSS_T", i, 10),
        ParamDef("COM_FLIGHT_UUID", i, 0),
        *(ParamDef(f"COM_FLTMODE{n}", i, -1) for n in range(1, 7)),
        ParamDef("COM_LOW_BAT_ACT", i, 3),  # dock: return at critical, land at emergency
        ParamDef("COM_OBL_RC_ACT", i, 0),
        ParamDef("COM_OF_LOSS_T", f, 1.0),
        ParamDef("COM_RC_IN_MODE", i, 1),
        ParamDef("COM_RC_LOSS_T", f, 0.5),
        ParamDef("FLW_TGT_ALT_M", i, 0),
        ParamDef("FLW_TGT_DST", f, 8.0),
        ParamDef("FLW_TGT_FA", f, 180.0),
        ParamDef("FLW_TGT_HT", f, 8.0),
        ParamDef("FLW_TGT_MAX_VEL", f, 5.0),
        ParamDef("FLW_TGT_RS", f, 0.1),
        ParamDef("GF_ACTION", i, 3),  # dock: return (PX4 2 = hold)
        ParamDef("GF_MAX_HOR_DIST", f, 5000.0),  # dock: 5 km from the nest (PX4 0 = off)
        ParamDef("GF_MAX_VER_DIST", f, 120.0),  # dock: 120 m legal ceiling (PX4 0 = off)
        ParamDef("LNDMC_ALT_MAX", f, -1.0),
        ParamDef("MAV_SYS_ID", i, system_id),
        ParamDef("MAV_TYPE", i, 2),  # quadrotor, as the airframe sets it
        ParamDef("MIS_TAKEOFF_ALT", f, 2.5),
        ParamDef("MNT_MODE_IN", i, -1),
        ParamDef("MNT_MODE_OUT", i, 0),
        ParamDef("MPC_ACC_HOR", f, 3.0),
        ParamDef("MPC_ACC_HOR_MAX", f, 5.0),
        ParamDef("MPC_ALT_MODE", i, 0),
        ParamDef("MPC_LAND_ALT1", f, 10.0),
        ParamDef("MPC_LAND_ALT2", f, 5.0),
        ParamDef("MPC_LAND_SPEED", f, 0.7),
        ParamDef("MPC_POS_MODE", i, 4),
        ParamDef("MPC_TKO_SPEED", f, 1.5),
        ParamDef("MPC_XY_CRUISE", f, 5.0),
        ParamDef("MPC_XY_VEL_MAX", f, 15.0),  # police quad (PX4 12)
        ParamDef("MPC_Z_V_AUTO_DN", f, 1.5),
        ParamDef("MPC_Z_V_AUTO_UP", f, 3.0),
        ParamDef("MPC_Z_VEL_MAX_DN", f, 1.5),
        ParamDef("MPC_Z_VEL_MAX_UP", f, 3.0),
        ParamDef("NAV_ACC_RAD", f, 2.0),
        ParamDef("NAV_DLL_ACT", i, 2),  # dock: return on data-link loss (PX4 0 = off)
        ParamDef("NAV_RCL_ACT", i, 2),
        ParamDef("RC_CHAN_CNT", i, 0),
        ParamDef("RC_MAP_FLTMODE", i, 0),
        ParamDef("RC_MAP_PITCH", i, 0),
        ParamDef("RC_MAP_ROLL", i, 0),
        ParamDef("RC_MAP_THROTTLE", i, 0),
        ParamDef("RC_MAP_YAW", i, 0),
        ParamDef("RTL_DESCEND_ALT", f, 10.0),
        ParamDef("RTL_LAND_DELAY", f, 0.0),
        ParamDef("RTL_RETURN_ALT", f, 30.0),
        ParamDef("SENS_BOARD_X_OFF", f, 1e-06),
        ParamDef("SDLOG_MODE", i, 0),
        ParamDef("SDLOG_PROFILE", i, 1),
        ParamDef("SENS_BOARD_ROT", i, 0),
        ParamDef("SENS_DPRES_OFF", f, 0.001),
        ParamDef("SYS_AUTOCONFIG", i, 0),
        ParamDef("SYS_AUTOSTART", i, 10040),
        ParamDef("SYS_FAILURE_EN", i, 0),
        ParamDef("SYS_HAS_BARO", i, 1),
        ParamDef("SYS_HAS_GPS", i, 1),
        ParamDef("SYS_HAS_MAG", i, 1),
        ParamDef("SYS_HAS_NUM_DIST", i, 0),
        ParamDef("SYS_HITL", i, 0),
        ParamDef("SYS_VEHICLE_RESP", f, -0.4),
        ParamDef("TRIG_MODE", i, 0),
    ]


def encode_value(value: float, param_type: int) -> float:
    """The float PARAM_VALUE carries: integers bytewise (their int32 bits), reals as they are."""
    if param_type == REAL32:
        return float(value)
    return float(struct.unpack("<f", struct.pack("<i", int(value)))[0])


def decode_value(wire: float, param_type: int) -> float:
    """Inverse of :func:`encode_value` (PARAM_SET's float to the parameter's value)."""
    if param_type == REAL32:
        return float(wire)
    return float(struct.unpack("<i", struct.pack("<f", wire))[0])


def _name(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    return raw.split("\x00", 1)[0]


class Parameters:
    """The parameter store and its MAVLink protocol (PARAM_REQUEST_LIST/READ, PARAM_SET)."""

    def __init__(
        self, outbox: Outbox, system_id: int, on_change: Callable[[str, float], None] | None = None
    ) -> None:
        self._outbox = outbox
        self._defs = {d.name: d for d in sorted(_defs(system_id), key=lambda d: d.name)}
        self._names = list(self._defs)
        self._values = {d.name: float(d.default) for d in self._defs.values()}
        self._on_change = on_change

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def get_int(self, name: str) -> int:
        return int(self._values[name])

    def set(self, name: str, value: float) -> None:
        """Set a value locally (as the commander or a test would), without a PARAM_VALUE."""
        d = self._defs[name]
        self._values[name] = float(int(value)) if d.type == INT32 else float(value)
        if self._on_change is not None:
            self._on_change(name, self._values[name])

    def on_message(self, msg: MAVLinkMessage) -> bool:
        """Handle a PARAM_* message; True if it was one."""
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_PARAM_REQUEST_LIST:
            for index in range(len(self._names)):
                self._send(index)
        elif msg_id == mav.MAVLINK_MSG_ID_PARAM_REQUEST_READ:
            if msg.param_index >= 0:
                if msg.param_index < len(self._names):
                    self._send(int(msg.param_index))
            else:
                name = _name(msg.param_id)
                if name in self._defs:
                    self._send(self._names.index(name))
        elif msg_id == mav.MAVLINK_MSG_ID_PARAM_SET:
            name = _name(msg.param_id)
            d = self._defs.get(name)
            if d is None:
                self._outbox.statustext(f"[pm] unknown param: {name}", mav.MAV_SEVERITY_ERROR)
                return True
            value = decode_value(msg.param_value, d.type)
            if math.isfinite(value):
                self.set(name, value)
            self._send(self._names.index(name))
        else:
            return False
        return True

    def _send(self, index: int) -> None:
        name = self._names[index]
        d = self._defs[name]
        self._outbox.send(
            mav.MAVLink_param_value_message(
                name.encode(), encode_value(self._values[name], d.type), d.type, len(self._names), index
            )
        )
