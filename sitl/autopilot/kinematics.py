"""How the simulated multicopter moves: a position controller with PX4-like limits, in wind.

Pure arithmetic in the nest's local frame (north, east, down metres from the pad; down is
negative above the pad). The controller flies toward a position setpoint at a bounded speed
with bounded acceleration, decelerating so it stops on the target, and yaws toward its travel.
It knows the wind only through a slow estimate, so gusts push it off its track until the
position loop pulls it back; a headwind stronger than its air-speed margin slows it down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True)
class Limits:
    xy_speed_mps: float = 5.0
    up_speed_mps: float = 3.0
    down_speed_mps: float = 1.5
    acc_hor_mps2: float = 3.0
    acc_ver_mps2: float = 3.0
    max_air_speed_mps: float = 20.0
    yaw_rate_dps: float = 60.0


@dataclass(frozen=True)
class Setpoint:
    """Where to go. ``None`` for a horizontal component holds the current position on that axis."""

    north_m: float
    east_m: float
    down_m: float
    yaw_deg: float | None = None  # None: face the direction of travel


@dataclass
class VehicleState:
    north_m: float = 0.0
    east_m: float = 0.0
    down_m: float = 0.0
    vn_mps: float = 0.0  # ground velocity
    ve_mps: float = 0.0
    vd_mps: float = 0.0
    yaw_deg: float = 0.0  # 0 north, clockwise
    roll_rad: float = 0.0
    pitch_rad: float = 0.0
    yaw_rate_dps: float = 0.0

    @property
    def ground_speed_mps(self) -> float:
        return math.hypot(self.vn_mps, self.ve_mps)

    @property
    def height_m(self) -> float:
        return -self.down_m


def wrap_deg(angle: float) -> float:
    """Into [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def _limit(x: float, y: float, norm_max: float) -> tuple[float, float]:
    n = math.hypot(x, y)
    if n > norm_max > 0:
        return x * norm_max / n, y * norm_max / n
    return x, y


class Multicopter:
    """Motion of one quadrotor. Call :meth:`step` with the setpoint and the wind it flies in."""

    WIND_ESTIMATE_TAU_S = 4.0
    POSITION_GAIN = 0.9  # 1/s: speed commanded per metre of error near the target
    DRAG_PER_S = 0.35  # tilt needed per m/s of air speed (as horizontal acceleration)

    def __init__(self, state: VehicleState | None = None) -> None:
        self.state = state or VehicleState()
        self._cmd_vn = 0.0  # the controller's commanded ground velocity
        self._cmd_ve = 0.0
        self._wind_est_n = 0.0
        self._wind_est_e = 0.0

    def rest(self) -> None:
        """On the ground, motors stopped: no motion, attitude level."""
        s = self.state
        s.vn_mps = s.ve_mps = s.vd_mps = 0.0
        s.roll_rad = s.pitch_rad = 0.0
        s.yaw_rate_dps = 0.0
        s.down_m = min(0.0, s.down_m) if s.down_m < 0 else 0.0
        self._cmd_vn = self._cmd_ve = 0.0

    def fall(self, dt_s: float) -> None:
        """Motors stopped in the air: free fall to the ground."""
        s = self.state
        s.vd_mps += GRAVITY_MPS2 * dt_s
        s.down_m = min(0.0, s.down_m + s.vd_mps * dt_s)
        s.north_m += s.vn_mps * dt_s
        s.east_m += s.ve_mps * dt_s
        if s.down_m >= 0.0:
            self.rest()

    def step(self, dt_s: float, setpoint: Setpoint, limits: Limits, wind_ne_mps: tuple[float, float]) -> None:
        s = self.state
        wind_n, wind_e = wind_ne_mps
        alpha = min(1.0, dt_s / self.WIND_ESTIMATE_TAU_S)
        self._wind_est_n += (wind_n - self._wind_est_n) * alpha
        self._wind_est_e += (wind_e - self._wind_est_e) * alpha

        # horizontal: speed toward the target, limited so the vehicle can stop on it
        err_n = setpoint.north_m - s.north_m
        err_e = setpoint.east_m - s.east_m
        dist = math.hypot(err_n, err_e)
        speed = min(
            limits.xy_speed_mps,
            math.sqrt(2.0 * limits.acc_hor_mps2 * 0.8 * dist),
            self.POSITION_GAIN * dist + 0.0,
        )
        want_n, want_e = (err_n / dist * speed, err_e / dist * speed) if dist > 1e-6 else (0.0, 0.0)
        dvn, dve = _limit(want_n - self._cmd_vn, want_e - self._cmd_ve, limits.acc_hor_mps2 * dt_s)
        prev_n, prev_e = self._cmd_vn, self._cmd_ve
        self._cmd_vn += dvn
        self._cmd_ve += dve
        # what the air allows: the vehicle cannot fly faster through the air than its maximum
        air_n, air_e = _limit(
            self._cmd_vn - self._wind_est_n, self._cmd_ve - self._wind_est_e, limits.max_air_speed_mps
        )
        self._cmd_vn, self._cmd_ve = air_n + self._wind_est_n, air_e + self._wind_est_e
        # the real wind differs from the estimate (gusts): that difference drifts the vehicle
        s.vn_mps = air_n + wind_n
        s.ve_mps = air_e + wind_e

        # vertical
        err_d = setpoint.down_m - s.down_m
        want_vd = max(-limits.up_speed_mps, min(limits.down_speed_mps, 1.2 * err_d))
        dvd = max(-limits.acc_ver_mps2 * dt_s, min(limits.acc_ver_mps2 * dt_s, want_vd - s.vd_mps))
        s.vd_mps += dvd

        s.north_m += s.vn_mps * dt_s
        s.east_m += s.ve_mps * dt_s
        s.down_m = min(0.0, s.down_m + s.vd_mps * dt_s)
        if s.down_m >= 0.0 and s.vd_mps > 0:
            s.vd_mps = 0.0

        # yaw: toward travel when moving, else the commanded or current heading
        if setpoint.yaw_deg is not None:
            yaw_target = setpoint.yaw_deg
        elif speed > 1.0 and dist > 2.0:
            yaw_target = math.degrees(math.atan2(err_e, err_n))
        else:
            yaw_target = s.yaw_deg
        dyaw = wrap_deg(yaw_target - s.yaw_deg)
        max_dyaw = limits.yaw_rate_dps * dt_s
        dyaw = max(-max_dyaw, min(max_dyaw, dyaw))
        s.yaw_deg = wrap_deg(s.yaw_deg + dyaw) % 360.0
        s.yaw_rate_dps = dyaw / dt_s if dt_s > 0 else 0.0

        # attitude: tilt for the acceleration plus the tilt that holds against the air speed
        acc_n = (self._cmd_vn - prev_n) / dt_s if dt_s > 0 else 0.0
        acc_e = (self._cmd_ve - prev_e) / dt_s if dt_s > 0 else 0.0
        force_n = acc_n + self.DRAG_PER_S * air_n
        force_e = acc_e + self.DRAG_PER_S * air_e
        yaw = math.radians(s.yaw_deg)
        forward = force_n * math.cos(yaw) + force_e * math.sin(yaw)
        right = -force_n * math.sin(yaw) + force_e * math.cos(yaw)
        s.pitch_rad = -math.atan2(forward, GRAVITY_MPS2)
        s.roll_rad = math.atan2(right, GRAVITY_MPS2)

    @property
    def air_speed_mps(self) -> float:
        return math.hypot(self.state.vn_mps - self._wind_est_n, self.state.ve_mps - self._wind_est_e)
