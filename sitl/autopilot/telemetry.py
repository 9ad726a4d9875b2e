"""The messages PX4 streams on its links, built from the simulated vehicle's state.

Field values follow the recording of real PX4 (``../shared/px4-reference``): SYS_STATUS sensor
bits, BATTERY_STATUS with the pack voltage in the first cell slot, GPS_RAW_INT accuracies,
AUTOPILOT_VERSION capabilities, the setpoint and estimator messages.

Two stream tables: :data:`DEFAULT_RATES_HZ` is what a nest's main link (the one dronectl uses)
streams, PX4's MAVLINK_MODE_NORMAL defaults, kept as they were so the service's link costs it no
more; :data:`GCS_LINK_RATES_HZ` is what PX4 SITL's GCS link (udp 18570+i -> 14550) streams in
the recording, which a nest's optional GCS link (``sitl.gcs``) sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.battery import Battery
from sitl.autopilot.kinematics import Setpoint, VehicleState
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

# PX4 SITL's GCS link as recorded (summary.txt section 1: px4-rc.mavlink's Normal mode plus the
# 50 Hz streams the rc script adds), Hz. POSITION_TARGET_GLOBAL_INT is sent only while a position
# setpoint exists (in flight), as PX4 does; EVENT, CURRENT_MODE, CURRENT_EVENT_SEQUENCE,
# LINK_NODE_STATUS and TIME_ESTIMATE_TO_TARGET are not in the project's dialect (see
# tests/sitl/test_px4_link_conformance.py for the exceptions).
GCS_LINK_RATES_HZ: dict[int, float] = {
    mav.MAVLINK_MSG_ID_ATTITUDE: 50.0,
    mav.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: 50.0,
    mav.MAVLINK_MSG_ID_ATTITUDE_TARGET: 50.0,
    mav.MAVLINK_MSG_ID_LOCAL_POSITION_NED: 50.0,
    mav.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED: 50.0,
    mav.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW: 50.0,
    mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: 50.0,
    mav.MAVLINK_MSG_ID_GPS_RAW_INT: 5.0,
    mav.MAVLINK_MSG_ID_VFR_HUD: 4.0,
    mav.MAVLINK_MSG_ID_ALTITUDE: 1.0,
    mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: 1.0,
    mav.MAVLINK_MSG_ID_HEARTBEAT: 1.0,
    mav.MAVLINK_MSG_ID_MISSION_CURRENT: 1.0,
    mav.MAVLINK_MSG_ID_OPEN_DRONE_ID_LOCATION: 1.0,
    mav.MAVLINK_MSG_ID_OPEN_DRONE_ID_SYSTEM: 1.0,
    mav.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT: 1.0,
    mav.MAVLINK_MSG_ID_SCALED_PRESSURE: 1.0,
    mav.MAVLINK_MSG_ID_SYS_STATUS: 1.0,
    mav.MAVLINK_MSG_ID_BATTERY_STATUS: 0.5,
    mav.MAVLINK_MSG_ID_DISTANCE_SENSOR: 0.5,
    mav.MAVLINK_MSG_ID_ESTIMATOR_STATUS: 0.5,
    mav.MAVLINK_MSG_ID_HOME_POSITION: 0.5,
    mav.MAVLINK_MSG_ID_PING: 0.1,
    mav.MAVLINK_MSG_ID_VIBRATION: 0.1,
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
    armed: bool = False
    setpoint: Setpoint | None = None  # what the position controller flies to (None: no setpoint)
    ping_seq: int = 0


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


def attitude_target(s: Snapshot) -> MAVLinkMessage:
    st = s.state
    sp = s.setpoint
    yaw = math.radians(sp.yaw_deg) if sp is not None and sp.yaw_deg is not None else _yaw_rad(st)
    q = _quaternion(st.roll_rad, st.pitch_rad, yaw)
    thrust = 0.001 if not s.armed else (0.1 if s.landed_state == mav.MAV_LANDED_STATE_ON_GROUND else 0.55)
    return mav.MAVLink_attitude_target_message(
        time_boot_ms(s.now_s), 0, list(q), 0.0, 0.0, math.radians(st.yaw_rate_dps), thrust
    )


def position_target_local_ned(s: Snapshot) -> MAVLinkMessage:
    st, sp, nan = s.state, s.setpoint, math.nan
    if sp is None:  # as recorded on the ground: no position setpoint, type_mask 63
        return mav.MAVLink_position_target_local_ned_message(
            time_boot_ms(s.now_s), mav.MAV_FRAME_LOCAL_NED, 63, nan, nan, nan, nan, nan, nan,
            0.0, 0.0, 100.0, _yaw_rad(st), 0.0,
        )  # fmt: skip
    yaw = math.radians(sp.yaw_deg) if sp.yaw_deg is not None else _yaw_rad(st)
    return mav.MAVLink_position_target_local_ned_message(
        time_boot_ms(s.now_s), mav.MAV_FRAME_LOCAL_NED, 0, sp.north_m, sp.east_m, sp.down_m,
        st.vn_mps, st.ve_mps, st.vd_mps, 0.0, 0.0, 0.0, yaw, 0.0,
    )  # fmt: skip


def position_target_global_int(s: Snapshot) -> MAVLinkMessage | None:
    sp = s.setpoint
    if sp is None:
        return None  # PX4 sends it only while it has a position setpoint
    h = s.home
    lat = h.lat_deg + math.degrees(sp.north_m / 6378137.0)
    lon = h.lon_deg + math.degrees(sp.east_m / (6378137.0 * math.cos(math.radians(h.lat_deg))))
    yaw = math.radians(sp.yaw_deg) if sp.yaw_deg is not None else _yaw_rad(s.state)
    nan = math.nan
    return mav.MAVLink_position_target_global_int_message(
        time_boot_ms(s.now_s), mav.MAV_FRAME_GLOBAL_INT, 0, round(lat * 1e7), round(lon * 1e7),
        h.alt_amsl_m - sp.down_m, nan, nan, nan, 0.0, 0.0, 100.0, yaw, 0.0,
    )  # fmt: skip


def servo_output_raw(s: Snapshot) -> MAVLinkMessage:
    if not s.armed:
        outputs = [900] * 16  # PX4's disarmed PWM, as recorded
    else:
        motor = 1000 + 10 * s.throttle_pct
        outputs = [motor] * 4 + [900] * 12
    return mav.MAVLink_servo_output_raw_message(int(s.now_s * 1e6) & 0xFFFFFFFF, 0, *outputs)


def scaled_pressure(s: Snapshot) -> MAVLinkMessage:
    alt = s.position.alt_amsl_m
    press_hpa = 1013.25 * (1.0 - 2.25577e-5 * alt) ** 5.25588  # standard atmosphere
    return mav.MAVLink_scaled_pressure_message(time_boot_ms(s.now_s), press_hpa, 0.0, 1182, 0)


def distance_sensor(s: Snapshot) -> MAVLinkMessage:
    height_cm = max(0, min(10000, round((s.position.alt_amsl_m - s.home.alt_amsl_m) * 100)))
    return mav.MAVLink_distance_sensor_message(
        time_boot_ms(s.now_s), 0, 10000, height_cm, mav.MAV_DISTANCE_SENSOR_LASER, 0,
        mav.MAV_SENSOR_ROTATION_PITCH_270, 0, 0.0, 0.0, [0.0] * 4, 0,
    )  # fmt: skip


def estimator_status(s: Snapshot) -> MAVLinkMessage:
    # as recorded before the GPS fusion: attitude, velocity and vertical position (229); with a
    # fix also horizontal position (abs and rel) and prediction flags
    flags = 229 if not s.gps_fix else 0x37F
    return mav.MAVLink_estimator_status_message(
        int(s.now_s * 1e6), flags, 0.01, 0.02, 0.0017, 0.05, 0.0022, math.nan, 0.015, 0.075
    )


def vibration(s: Snapshot) -> MAVLinkMessage:
    level = 0.0 if not s.armed else 0.11
    return mav.MAVLink_vibration_message(int(s.now_s * 1e6), level * 0.1, level * 0.1, level, 0, 0, 0)


def ping(s: Snapshot) -> MAVLinkMessage:
    return mav.MAVLink_ping_message(int(s.now_s * 1e6), s.ping_seq, 0, 0)


def open_drone_id_location(s: Snapshot) -> MAVLinkMessage:
    p, st = s.position, s.state
    direction = round(st.yaw_deg * 100) % 36000
    on_ground = s.landed_state == mav.MAV_LANDED_STATE_ON_GROUND
    status = mav.MAV_ODID_STATUS_GROUND if on_ground else mav.MAV_ODID_STATUS_AIRBORNE
    return mav.MAVLink_open_drone_id_location_message(
        0, 0, [0] * 20, status, direction, min(254, round(st.ground_speed_mps * 4)),
        max(-62, min(62, round(-st.vd_mps * 2))), round(p.lat_deg * 1e7), round(p.lon_deg * 1e7),
        p.alt_amsl_m, p.alt_amsl_m, mav.MAV_ODID_HEIGHT_REF_OVER_TAKEOFF, p.alt_amsl_m - s.home.alt_amsl_m,
        mav.MAV_ODID_HOR_ACC_1_METER, mav.MAV_ODID_VER_ACC_3_METER, 0,
        mav.MAV_ODID_SPEED_ACC_0_3_METERS_PER_SECOND, 0xFFFF, 0,
    )  # fmt: skip


def open_drone_id_system(s: Snapshot) -> MAVLinkMessage:
    h = s.home
    return mav.MAVLink_open_drone_id_system_message(
        0, 0, [0] * 20, 0, 0, round(h.lat_deg * 1e7), round(h.lon_deg * 1e7), 1, 0, -1000.0, -1000.0,
        0, 0, h.alt_amsl_m, int(s.now_s) & 0xFFFFFFFF,
    )  # fmt: skip
