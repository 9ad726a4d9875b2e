"""What each PX4 mode flies: the flight tasks and the mission sequencer.

A task turns the vehicle state into a position setpoint and motion limits each tick and says
when it is done; the mission task walks the accepted plan item by item. Tasks report what
PX4 would announce (item reached, mission finished, RTL landing...) as :class:`NavEvent`s,
which the autopilot turns into MAVLink messages and mode changes. No I/O here.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.kinematics import Limits, Setpoint, VehicleState
from sitl.autopilot.mission import MissionItem
from sitl.autopilot.params import Parameters
from sitl.environment import LocalFrame

ALT_ACCEPT_M = 0.8  # PX4 accepts a waypoint's altitude within about a metre
MAX_LANDING_PUSH_M = 3.0  # landing setpoints sit this far below the vehicle


class EventKind(enum.Enum):
    TAKEOFF_DONE = "takeoff_done"
    ITEM_REACHED = "item_reached"
    CURRENT_CHANGED = "current_changed"
    MISSION_FINISHED = "mission_finished"
    MISSION_RTL = "mission_rtl"
    MISSION_LAND = "mission_land"
    RTL_LANDING = "rtl_landing"
    REACHED = "reached"  # a reposition target


@dataclass(frozen=True)
class NavEvent:
    kind: EventKind
    seq: int = -1


def limits_from(params: Parameters, speed_mps: float | None = None) -> Limits:
    max_xy = params["MPC_XY_VEL_MAX"]
    cruise = params["MPC_XY_CRUISE"] if speed_mps is None or speed_mps <= 0 else speed_mps
    return Limits(
        xy_speed_mps=max(0.5, min(cruise, max_xy)),
        up_speed_mps=params["MPC_Z_V_AUTO_UP"],
        down_speed_mps=params["MPC_Z_V_AUTO_DN"],
        acc_hor_mps2=params["MPC_ACC_HOR"],
    )


def landing_speed_mps(params: Parameters, height_m: float) -> float:
    """PX4's descent profile: auto speed above MPC_LAND_ALT1, MPC_LAND_SPEED below MPC_LAND_ALT2."""
    fast, slow = params["MPC_Z_V_AUTO_DN"], params["MPC_LAND_SPEED"]
    alt1, alt2 = params["MPC_LAND_ALT1"], params["MPC_LAND_ALT2"]
    if height_m >= alt1:
        return fast
    if height_m <= alt2:
        return slow
    return slow + (fast - slow) * (height_m - alt2) / max(0.1, alt1 - alt2)


class Task:
    """A flight task. ``landing`` is True while it wants the vehicle on the ground."""

    landing = False

    def __init__(self, params: Parameters) -> None:
        self.params = params
        self.events: list[NavEvent] = []
        self.speed_mps: float | None = None

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        raise NotImplementedError


class Hold(Task):
    def __init__(self, params: Parameters, target: Setpoint) -> None:
        super().__init__(params)
        self.target = target

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        return self.target, limits_from(self.params, self.speed_mps)


class GoTo(Hold):
    """Fly to a point and hold there (DO_REPOSITION)."""

    def __init__(self, params: Parameters, target: Setpoint, speed_mps: float | None = None) -> None:
        super().__init__(params, target)
        self.speed_mps = speed_mps
        self._reported = False

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        if not self._reported and _distance(state, self.target) < 1.0:
            self._reported = True
            self.events.append(NavEvent(EventKind.REACHED))
        return super().step(now_s, state)


class Takeoff(Task):
    def __init__(
        self, params: Parameters, north_m: float, east_m: float, height_m: float, yaw: float
    ) -> None:
        super().__init__(params)
        self.target = Setpoint(north_m, east_m, -height_m, yaw)
        self.done = False

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        limits = replace(limits_from(self.params), up_speed_mps=self.params["MPC_TKO_SPEED"])
        if not self.done and abs(state.down_m - self.target.down_m) < 0.5:
            self.done = True
            self.events.append(NavEvent(EventKind.TAKEOFF_DONE))
        return self.target, limits


class Land(Task):
    landing = True

    def __init__(self, params: Parameters, north_m: float, east_m: float) -> None:
        super().__init__(params)
        self.north_m = north_m
        self.east_m = east_m

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        limits = replace(
            limits_from(self.params), down_speed_mps=landing_speed_mps(self.params, state.height_m)
        )
        return Setpoint(self.north_m, self.east_m, state.down_m + MAX_LANDING_PUSH_M), limits


class Orbit(Task):
    def __init__(
        self,
        params: Parameters,
        center_n: float,
        center_e: float,
        down_m: float,
        radius_m: float,
        speed_mps: float,
    ) -> None:
        super().__init__(params)
        self.center = (center_n, center_e)
        self.down_m = down_m
        self.radius_m = radius_m if abs(radius_m) >= 1.0 else 20.0
        self.speed_mps = abs(speed_mps) if speed_mps else 2.0

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        cn, ce = self.center
        r = abs(self.radius_m)
        angle = math.atan2(state.east_m - ce, state.north_m - cn)
        direction = 1.0 if self.radius_m > 0 else -1.0  # positive radius: clockwise
        lead = max(0.15, min(1.0, 8.0 / r))
        angle += direction * lead
        target = Setpoint(
            cn + r * math.cos(angle),
            ce + r * math.sin(angle),
            self.down_m,
            (math.degrees(math.atan2(ce - state.east_m, cn - state.north_m)) % 360.0),  # face the centre
        )
        return target, limits_from(self.params, self.speed_mps)


class RtlPhase(enum.Enum):
    CLIMB = 1
    RETURN = 2
    DESCEND = 3
    LOITER = 4
    LAND = 5


class ReturnToLaunch(Task):
    """PX4's RTL: climb to RTL_RETURN_ALT, fly home, descend to RTL_DESCEND_ALT, land on the pad."""

    def __init__(self, params: Parameters, state: VehicleState) -> None:
        super().__init__(params)
        self.return_height_m = max(params["RTL_RETURN_ALT"], state.height_m)
        self.phase = RtlPhase.CLIMB
        self._loiter_until_s: float | None = None
        if math.hypot(state.north_m, state.east_m) < 5.0:  # already above home: just come down
            self.return_height_m = state.height_m
            self.phase = RtlPhase.DESCEND
        self._climb_point = (state.north_m, state.east_m)

    @property
    def landing(self) -> bool:  # type: ignore[override]
        return self.phase is RtlPhase.LAND

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        limits = limits_from(self.params, self.speed_mps)
        if self.phase is RtlPhase.CLIMB:
            n, e = self._climb_point
            if state.height_m >= self.return_height_m - 0.5:
                self.phase = RtlPhase.RETURN
            else:
                return Setpoint(n, e, -self.return_height_m), limits
        if self.phase is RtlPhase.RETURN:
            if math.hypot(state.north_m, state.east_m) <= self.params["NAV_ACC_RAD"]:
                self.phase = RtlPhase.DESCEND
            else:
                return Setpoint(0.0, 0.0, -self.return_height_m), limits
        descend_to = min(self.params["RTL_DESCEND_ALT"], self.return_height_m)
        if self.phase is RtlPhase.DESCEND:
            if state.height_m <= descend_to + 0.5:
                self.phase = RtlPhase.LOITER
                self._loiter_until_s = now_s + max(0.0, self.params["RTL_LAND_DELAY"])
            else:
                return Setpoint(0.0, 0.0, -descend_to, None), limits
        if self.phase is RtlPhase.LOITER:
            if self._loiter_until_s is not None and now_s >= self._loiter_until_s:
                self.phase = RtlPhase.LAND
                self.events.append(NavEvent(EventKind.RTL_LANDING))
            else:
                return Setpoint(0.0, 0.0, -descend_to, None), limits
        limits = replace(limits, down_speed_mps=landing_speed_mps(self.params, state.height_m))
        return Setpoint(0.0, 0.0, state.down_m + MAX_LANDING_PUSH_M), limits


class MissionRun(Task):
    """Flies the accepted MISSION plan from an item on, as PX4's navigator does."""

    def __init__(
        self, params: Parameters, items: tuple[MissionItem, ...], start_seq: int, frame: LocalFrame
    ) -> None:
        super().__init__(params)
        self.items = items
        self.frame = frame
        self.seq = max(0, min(start_seq, len(items)))
        self.finished = False
        self._phase_until_s: float | None = None
        self._reached = False
        self._landing = False
        self._hold = Setpoint(0.0, 0.0, 0.0)
        self._last_target: Setpoint | None = None

    @property
    def landing(self) -> bool:  # type: ignore[override]
        return self._landing

    def jump_to(self, seq: int) -> None:
        self.seq = max(0, min(seq, len(self.items) - 1))
        self.finished = False
        self._phase_until_s = None
        self._reached = False
        self._landing = False

    def _target(self, item: MissionItem, state: VehicleState) -> Setpoint:
        if item.x == 0 and item.y == 0:
            north, east = state.north_m, state.east_m
        else:
            north, east, _ = self.frame.to_ned(item.lat_deg, item.lon_deg, self.frame.origin.alt_amsl_m)
        if math.isnan(item.z):
            down = state.down_m
        elif item.frame in (mav.MAV_FRAME_GLOBAL_INT, mav.MAV_FRAME_GLOBAL):
            down = self.frame.origin.alt_amsl_m - item.z
        else:
            down = -item.z
        yaw = (
            None if math.isnan(item.param4) or item.command != mav.MAV_CMD_NAV_WAYPOINT else item.param4 % 360
        )
        return Setpoint(north, east, down, yaw)

    def _advance(self, now_s: float) -> None:
        self.seq += 1
        self._phase_until_s = None
        self._reached = False
        if self.seq >= len(self.items):
            self.finished = True
            self.events.append(NavEvent(EventKind.MISSION_FINISHED))
        else:
            self.events.append(NavEvent(EventKind.CURRENT_CHANGED, self.seq))

    def step(self, now_s: float, state: VehicleState) -> tuple[Setpoint, Limits]:
        for _ in range(len(self.items) + 1):  # non-navigation items complete at once
            if self.finished or self.seq >= len(self.items):
                if not self.finished:
                    self.finished = True
                    self.events.append(NavEvent(EventKind.MISSION_FINISHED))
                hold = self._last_target or Setpoint(state.north_m, state.east_m, state.down_m)
                self._last_target = hold
                return hold, limits_from(self.params, self.speed_mps)
            item = self.items[self.seq]
            result = self._step_item(now_s, state, item)
            if result is not None:
                return result
        hold = Setpoint(state.north_m, state.east_m, state.down_m)
        return hold, limits_from(self.params, self.speed_mps)

    def _step_item(
        self, now_s: float, state: VehicleState, item: MissionItem
    ) -> tuple[Setpoint, Limits] | None:
        cmd = item.command
        limits = limits_from(self.params, self.speed_mps)
        if cmd == mav.MAV_CMD_DO_CHANGE_SPEED:
            if item.param2 > 0:
                self.speed_mps = item.param2
            self._advance(now_s)
            return None
        if cmd == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self.events.append(NavEvent(EventKind.MISSION_RTL, item.seq))
            self.finished = True
            return Setpoint(state.north_m, state.east_m, state.down_m), limits
        if cmd == mav.MAV_CMD_NAV_DELAY:
            if self._phase_until_s is None:
                self._phase_until_s = now_s + max(0.0, item.param1)
            if now_s >= self._phase_until_s:
                self._advance(now_s)
                return None
            return Setpoint(state.north_m, state.east_m, state.down_m), limits
        if cmd == mav.MAV_CMD_NAV_TAKEOFF:
            target = self._target(item, state)
            target = Setpoint(
                state.north_m if self._last_target is None else self._last_target.north_m,
                state.east_m if self._last_target is None else self._last_target.east_m,
                target.down_m,
                None,
            )
            self._last_target = target
            if abs(state.down_m - target.down_m) < ALT_ACCEPT_M:
                self._reach(item)
                self._advance(now_s)
                return None
            return target, replace(limits, up_speed_mps=self.params["MPC_TKO_SPEED"])
        if cmd == mav.MAV_CMD_NAV_LAND:
            target = self._target(item, state)
            if (
                not self._landing
                and math.hypot(state.north_m - target.north_m, state.east_m - target.east_m) > 1.0
            ):
                approach = Setpoint(target.north_m, target.east_m, state.down_m)
                return approach, limits
            if not self._landing:
                self._landing = True
                self.events.append(NavEvent(EventKind.MISSION_LAND, item.seq))
            limits = replace(limits, down_speed_mps=landing_speed_mps(self.params, state.height_m))
            return Setpoint(target.north_m, target.east_m, state.down_m + MAX_LANDING_PUSH_M), limits
        if cmd in (
            mav.MAV_CMD_NAV_WAYPOINT,
            mav.MAV_CMD_NAV_LOITER_UNLIM,
            mav.MAV_CMD_NAV_LOITER_TIME,
            mav.MAV_CMD_NAV_LOITER_TURNS,
            mav.MAV_CMD_NAV_LOITER_TO_ALT,
        ):
            target = self._target(item, state)
            self._last_target = target
            if not self._reached:
                radius = (
                    item.param2
                    if cmd == mav.MAV_CMD_NAV_WAYPOINT and item.param2 > 0
                    else self.params["NAV_ACC_RAD"]
                )
                horizontal = math.hypot(state.north_m - target.north_m, state.east_m - target.east_m)
                if horizontal <= radius and abs(state.down_m - target.down_m) <= ALT_ACCEPT_M:
                    self._reached = True
                    self._reach(item)
                    self._phase_until_s = now_s + self._hold_s(item, limits)
            if self._reached and cmd != mav.MAV_CMD_NAV_LOITER_UNLIM:
                assert self._phase_until_s is not None
                if now_s >= self._phase_until_s and item.autocontinue:
                    self._advance(now_s)
                    return None
            return target, limits
        # any other command (DO_*, camera, gimbal...): nothing to fly
        self._advance(now_s)
        return None

    @staticmethod
    def _hold_s(item: MissionItem, limits: Limits) -> float:
        if item.command == mav.MAV_CMD_NAV_WAYPOINT:
            return max(0.0, item.param1)
        if item.command == mav.MAV_CMD_NAV_LOITER_TIME:
            return max(0.0, item.param1)
        if item.command == mav.MAV_CMD_NAV_LOITER_TURNS:
            radius = abs(item.param3) if item.param3 else 10.0
            return max(0.0, item.param1) * 2 * math.pi * radius / max(1.0, limits.xy_speed_mps)
        return 0.0

    def _reach(self, item: MissionItem) -> None:
        self.events.append(NavEvent(EventKind.ITEM_REACHED, item.seq))


def _distance(state: VehicleState, target: Setpoint) -> float:
    return math.sqrt(
        (state.north_m - target.north_m) ** 2
        + (state.east_m - target.east_m) ** 2
        + (state.down_m - target.down_m) ** 2
    )
