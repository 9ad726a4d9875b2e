"""The messages PX4 streams on its ground link, built from the simulated vehicle's state.

Field values follow the recording of real PX4 (``../shared/px4-reference``): SYS_STATUS sensor
bits, BATTERY_STATUS with the pack voltage in the first cell slot, GPS_RAW_INT accuracies,
AUTOPILOT_VERSION capabilities. Rates are PX4's *normal* ground-link rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.battery import Battery
from sitl.autopilot.kinematics import VehicleState
from sitl.component import MAVLinkMessage
from sitl.environment import GeoPoint

# PX4's MAVLINK_MODE_NORMAL rates (mavlink_main.cpp), Hz
DEFAULT_RATES_HZ: dict[int, float] = {
    mav.MAVLINK_MSG_ID_HEARTBEAT: 1.0,
    mav.MAVLINK_MSG_ID_SYS_STATUS: 1.0,
    mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: 1.0,
    mav.MAVLINK_MSG_ID_BATTERY_STATUS: 0.5,
    mav.MAVLINK_MSG_ID_HOME_POSITION: 0.5,
    mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: 5.0,
    mav.MAVLINK_MSG_ID_ATTITUDE: 15.0,
    mav.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: 10.0,
    mav.MAVLINK_MSG_ID_GPS_RAW_INT: 1.0,
    mav.MAVLINK_MSG_ID_VFR_HUD: 4.0,
    mav.MAVLINK_MSG_ID_MISSION_CURRENT: 1.0,
    mav.MAVLINK_MSG_ID_ALTITUDE: 1.0,
    mav.MAVLINK_MSG_ID_LOCAL_POSITION_NED: 1.0,
}

# SYS_STATUS as recorded: gyro, accel, mag, baro, GPS (0x20) ... ; health without the prearm bit
SENSORS_PRESENT = 50348079
SENSORS_ENABLED = 50413615
SENSORS_HEALTH = 52480063
SENSOR_GPS = mav.MAV_SYS_STATUS_SENSOR_GPS
PREARM_CHECK = mav.MAV_SYS_STATUS_PREARM_CHECK

CAPABILITIES = (
    0xE8FF  # as recorded: MISSION_INT, COMMAND_INT, PARAM_ENCODE_BYTEWISE, FTP, MAVLINK2, FENCE, RALLY...
)


@dataclass(frozen=True)
class Snapshot:
    """What one telemetry tick needs of the autopilot."""

    now_s: float
    state: VehicleState
    position: GeoPoint
    home: GeoPoint
    battery: Battery
    battery_charge_state: int
    battery_power_w: float
    air_speed_mps: float
    throttle_pct: int
    gps_fix: bool
    prearm_ok: bool
    landed_state: int


def time_boot_ms(now_s: float) -> int:
    return int(now_s * 1000) & 0xFFFFFFFF


def _quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


def _yaw_rad(state: VehicleState) -> float:
    return math.radians(((state.yaw_deg + 180.0) % 360.0) - 180.0)


def sys_status(s: Snapshot) -> MAVLinkMessage:
    present, enabled, health = SENSORS_PRESENT, SENSORS_ENABLED, SENSORS_HEALTH
    if not s.gps_fix:
        health &= ~SENSOR_GPS
    if s.prearm_ok:
        health |= PREARM_CHECK
    b = s.battery
    return mav.MAVLink_sys_status_message(
        present, enabled, health, 100,
        int(b.voltage_v * 1000), int(b.current_a * 100), round(b.remaining_pct),
        0, 0, 0, 0, 0, 0, 0, 0, 1,
    )  # fmt: skip


def battery_status(s: Snapshot) -> MAVLinkMessage:
    b = s.battery
    voltages = [min(65534, int(b.voltage_v * 1000))] + [65535] * 9
    time_remaining = 0 if b.charging else int(b.time_remaining_s(max(s.battery_power_w, 50.0)))
    fault = mav.MAV_BATTERY_FAULT_CELL_FAIL if b.failed else 0
    return mav.MAVLink_battery_status_message(
        0, mav.MAV_BATTERY_FUNCTION_ALL, mav.MAV_BATTERY_TYPE_LIPO, 32767, voltages,
        int(b.current_a * 100), int(b.consumed_mah), -1, round(b.remaining_pct),
        time_remaining, s.battery_charge_state, [0, 0, 0, 0], 0, fault,
    )  # fmt: skip


def global_position_int(s: Snapshot) -> MAVLinkMessage:
    p, st = s.position, s.state
    return mav.MAVLink_global_position_int_message(
        time_boot_ms(s.now_s), round(p.lat_deg * 1e7), round(p.lon_deg * 1e7),
        round(p.alt_amsl_m * 1000), round((p.alt_amsl_m - s.home.alt_amsl_m) * 1000),
        round(st.vn_mps * 100), round(st.ve_mps * 100), round(st.vd_mps * 100),
        round(st.yaw_deg * 100) % 36000,
    )  # fmt: skip


def attitude(s: Snapshot) -> MAVLinkMessage:
    st = s.state
    return mav.MAVLink_attitude_message(
        time_boot_ms(s.now_s),
        st.roll_rad,
        st.pitch_rad,
        _yaw_rad(st),
        0.0,
        0.0,
        math.radians(st.yaw_rate_dps),
    )


def attitude_quaternion(s: Snapshot) -> MAVLinkMessage:
    st = s.state
    q = _quaternion(st.roll_rad, st.pitch_rad, _yaw_rad(st))
    return mav.MAVLink_attitude_quaternion_message(
        time_boot_ms(s.now_s), q[0], q[1], q[2], q[3], 0.0, 0.0, math.radians(st.yaw_rate_dps), [0.0] * 4
    )


def gps_raw_int(s: Snapshot) -> MAVLinkMessage:
    p, st = s.position, s.state
    if not s.gps_fix:
        return mav.MAVLink_gps_raw_int_message(
            int(s.now_s * 1e6),
            mav.GPS_FIX_TYPE_NO_FIX,
            0,
            0,
            0,
            65535,
            65535,
            65535,
            65535,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        )
    cog = int(math.degrees(math.atan2(st.ve_mps, st.vn_mps)) * 100) % 36000
    alt_mm = round(p.alt_amsl_m * 1000)
    return mav.MAVLink_gps_raw_int_message(
        int(s.now_s * 1e6), mav.GPS_FIX_TYPE_3D_FIX, round(p.lat_deg * 1e7), round(p.lon_deg * 1e7),
        alt_mm, 70, 110, int(st.ground_speed_mps * 100), cog, 16, alt_mm, 900, 1780, 400, 0, 0,
    )  # fmt: skip


def home_position(s: Snapshot) -> MAVLinkMessage:
    h = s.home
    return mav.MAVLink_home_position_message(
        round(h.lat_deg * 1e7), round(h.lon_deg * 1e7), round(h.alt_amsl_m * 1000),
        0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0, int(s.now_s * 1e6),
    )  # fmt: skip


def extended_sys_state(s: Snapshot) -> MAVLinkMessage:
    return mav.MAVLink_extended_sys_state_message(mav.MAV_VTOL_STATE_UNDEFINED, s.landed_state)


def vfr_hud(s: Snapshot) -> MAVLinkMessage:
    st = s.state
    return mav.MAVLink_vfr_hud_message(
        s.air_speed_mps,
        st.ground_speed_mps,
        int(st.yaw_deg) % 360,
        s.throttle_pct,
        s.position.alt_amsl_m,
        -st.vd_mps,
    )


def altitude(s: Snapshot) -> MAVLinkMessage:
    rel = s.position.alt_amsl_m - s.home.alt_amsl_m
    return mav.MAVLink_altitude_message(
        int(s.now_s * 1e6), s.position.alt_amsl_m, s.position.alt_amsl_m, rel, rel, float("nan"), float("nan")
    )


def local_position_ned(s: Snapshot) -> MAVLinkMessage:
    st = s.state
    return mav.MAVLink_local_position_ned_message(
        time_boot_ms(s.now_s), st.north_m, st.east_m, st.down_m, st.vn_mps, st.ve_mps, st.vd_mps
    )


def autopilot_version(system_id: int) -> MAVLinkMessage:
    return mav.MAVLink_autopilot_version_message(
        CAPABILITIES, 0xFF, 0xFF, 0x06122CFF, 1,
        [0, 0, 0, 111, 59, 62, 231, 2], [0, 0, 0, 111, 59, 62, 231, 2], [0] * 8,
        0, 0, 5283920058631409231 + system_id, [0] * 18,
    )  # fmt: skip
