"""The simulated PX4 autopilot of a nest: a quadrotor sitting in its dock.

It answers a MAVLink client as PX4 main does (recorded in ``../shared/px4-reference``): the
HEARTBEAT encoding and system_status, the readiness timeline after boot, every command's
COMMAND_ACK and STATUSTEXTs, the parameter protocol, and the telemetry streams at PX4's normal
ground-link rates. It flies: takeoff, hold, reposition, orbit, missions (via the MissionServer),
RTL onto the pad, landing with auto-disarm; its battery drains with flight and charges in the
dock; PX4's failsafes (battery, data link, geofence, GPS) act as configured by parameters.

Commands and the mode logic live here; what each mode flies is in ``navigator``, the motion in
``kinematics``, the messages in ``telemetry``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot import telemetry
from sitl.autopilot.battery import (
    AVIONICS_POWER_W,
    IDLE_ARMED_POWER_W,
    Battery,
    flight_power_w,
)
from sitl.autopilot.fence import fence_violation
from sitl.autopilot.kinematics import Multicopter, Setpoint, VehicleState
from sitl.autopilot.mission import FENCE, MISSION, MissionServer
from sitl.autopilot.modes import FlightMode, UnsupportedMode, base_mode, mode_from_custom
from sitl.autopilot.navigator import (
    EventKind,
    GoTo,
    Hold,
    Land,
    MissionRun,
    Orbit,
    ReturnToLaunch,
    Takeoff,
    Task,
)
from sitl.autopilot.params import Parameters
from sitl.component import AUTOPILOT_COMPID, MAVLinkMessage, Outbox
from sitl.environment import DockView, GeoPoint, NestContext
from sitl.streams import StreamScheduler

GPS_FIX_AFTER_S = 0.45
HOME_AFTER_S = 2.0
PREARM_OK_AFTER_S = 5.3
ARM_DENIED_TEXT_DELAY_S = 1.5
FORCE_MAGIC = 21196.0
PAD_RADIUS_M = 1.0
COVER_CEILING_M = 0.35  # inside a closed dock the drone cannot rise higher than this
DOCK_ROOF_M = 0.8  # a closed cover is a roof this high above the pad
TAKEOFF_DETECT_M = 0.6
OBSTRUCTED_ABORT_S = 3.0
LANDED_DETECT_S = 0.7
GCS_GAP_RECORDED_S = 1.5  # a ground station silent longer than this is recorded when heard again
REACHED_REPEAT_S = 10.0  # PX4 repeats MISSION_ITEM_REACHED at ~1 Hz for about 10 s

_POSITIONAL_COMMANDS = frozenset(
    {mav.MAV_CMD_DO_REPOSITION, mav.MAV_CMD_DO_ORBIT, mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_LAND}
)


@dataclass(frozen=True)
class Command:
    command: int
    params: tuple[float, float, float, float, float, float, float]
    is_int: bool
    frame: int
    x: int
    y: int
    source_system: int
    source_component: int
    target_component: int

    def p(self, index: int) -> float:
        return self.params[index - 1]

    def location(self) -> tuple[float, float, float]:
        """(lat, lon, alt AMSL) from params 5-7; NaN where unset."""
        if self.is_int:
            lat = self.x * 1e-7 if self.x not in (0, 0x7FFFFFFF) else math.nan
            lon = self.y * 1e-7 if self.y not in (0, 0x7FFFFFFF) else math.nan
            return lat, lon, self.p(7)
        lat, lon = self.p(5), self.p(6)
        if lat == 0.0 and lon == 0.0:
            lat = lon = math.nan
        return lat, lon, self.p(7)

    @classmethod
    def from_message(cls, msg: MAVLinkMessage) -> Command | None:
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_COMMAND_LONG:
            params = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
            is_int, frame, x, y = False, 0, 0, 0
        elif msg_id == mav.MAVLINK_MSG_ID_COMMAND_INT:
            params = (msg.param1, msg.param2, msg.param3, msg.param4, float(msg.x), float(msg.y), msg.z)
            is_int, frame, x, y = True, int(msg.frame), int(msg.x), int(msg.y)
        else:
            return None
        return cls(
            int(msg.command),
            tuple(float(v) for v in params),  # type: ignore[arg-type]  # always 7
            is_int, frame, x, y,
            msg.get_srcSystem(), msg.get_srcComponent(), int(msg.target_component),
        )  # fmt: skip


class Px4Autopilot:
    """SimComponent (autopilot, component 1) and DroneView of a nest."""

    component_id = AUTOPILOT_COMPID

    def __init__(self, ctx: NestContext, outbox: Outbox, dock: DockView) -> None:
        self.ctx = ctx
        self.outbox = outbox
        self.dock = dock
        self.params = Parameters(outbox, ctx.system_id)
        self.mission = MissionServer(outbox, ctx.recorder, "autopilot")
        self.mission.on_plan_changed = self._plan_changed
        self.vehicle = Multicopter(VehicleState())
        self.battery = Battery()
        self.streams = StreamScheduler(telemetry.DEFAULT_RATES_HZ)
        # the nest's optional PX4-style GCS link (sitl.gcs): its own outbox and stream rates
        self.gcs_outbox: Outbox | None = None
        self.gcs_streams: StreamScheduler | None = None
        self.from_gcs_link = False  # while a message that came in on the GCS link is handled
        self._setpoint: Setpoint | None = None
        self._ping_seq = 0
        self.mode = FlightMode.LOITER
        # PX4's UserModeIntention._nav_state_after_disarming: the last mode selected (not by a
        # failsafe) that does not prevent arming; the mode PX4 returns to when it disarms
        self._mode_after_disarm = FlightMode.LOITER
        self._armed = False
        self._landed = True
        self._task: Task | None = None
        self._now_s = 0.0
        self._power_w = AVIONICS_POWER_W
        self._texts: list[tuple[float, int, str]] = []  # (due_s, severity, text) sent later
        self._text_id = 0
        self._armed_at_s = 0.0
        self._touchdown_s: float | None = None
        self._disarm_at_s: float | None = None
        self._obstructed_since_s: float | None = None
        self._speed_mps: float | None = None  # DO_CHANGE_SPEED for the auto modes
        self._takeoff_target_amsl: float | None = None
        self._mission_after_takeoff = False
        self._mission_state = mav.MISSION_STATE_NOT_STARTED
        self._reached: tuple[int, float, float] | None = None  # (seq, until_s, next_s)
        self._gcs_heartbeat_s: float | None = None
        self._link_lost = False
        self._battery_level = 0  # 0 ok, 1 low, 2 critical, 3 emergency
        self._battery_failure_handled = False
        self._fence_breached = False
        self._gps_lost_handled = False
        self._inside_dock = True
        self._home_sent = False

    def attach_gcs_link(self, outbox: Outbox) -> None:
        """Stream PX4 SITL's GCS-link message set, at its recorded rates, through ``outbox``."""
        self.gcs_outbox = outbox
        self.gcs_streams = StreamScheduler(telemetry.GCS_LINK_RATES_HZ)

    def _link(self) -> tuple[StreamScheduler, Outbox]:
        """The streams and outbox of the link the message being handled came in on."""
        if self.from_gcs_link and self.gcs_streams is not None and self.gcs_outbox is not None:
            return self.gcs_streams, self.gcs_outbox
        return self.streams, self.outbox

    # read-only state the rest of the sim uses ----------------------------------------------
    @property
    def position(self) -> GeoPoint:
        s = self.vehicle.state
        return self.ctx.frame.to_geo(s.north_m, s.east_m, s.down_m)

    @property
    def heading_deg(self) -> float:
        return self.vehicle.state.yaw_deg % 360.0

    @property
    def battery_pct(self) -> float:
        return self.battery.remaining_pct

    @property
    def armed(self) -> bool:
        return self._armed

    @property
    def landed(self) -> bool:
        return self._landed

    def position_ned_m(self) -> tuple[float, float, float]:
        s = self.vehicle.state
        return s.north_m, s.east_m, s.down_m

    # DroneView ---------------------------------------------------------------------------
    def on_pad(self) -> bool:
        s = self.vehicle.state
        return self._landed and math.hypot(s.north_m, s.east_m) <= PAD_RADIUS_M and s.height_m < 0.2

    def airborne(self) -> bool:
        return not self._landed

    # readiness -----------------------------------------------------------------------------
    def gps_fix(self) -> bool:
        return self._now_s >= GPS_FIX_AFTER_S and not self.ctx.faults.gps_lost(self._now_s)

    def _preflight_failures(self) -> list[str]:
        out: list[str] = []
        if self._now_s < PREARM_OK_AFTER_S:
            out.append("Preflight Fail: heading estimate not stable")
        if not self.gps_fix() and self._now_s >= PREARM_OK_AFTER_S:
            out.append("Preflight Fail: GPS fix too low\t")
        if self.battery.failed:
            out.append("Preflight Fail: Battery unhealthy\t")
        elif self.battery.soc <= self.params["BAT_LOW_THR"]:
            out.append("Preflight Fail: low battery\t")
        return out

    def prearm_ok(self) -> bool:
        return not self._preflight_failures()

    def _mode_armable(self, mode: FlightMode) -> bool:
        if mode in (FlightMode.LOITER, FlightMode.TAKEOFF):
            return True
        if mode is FlightMode.MISSION:
            return bool(self.mission.items(MISSION))
        return False

    # SimComponent --------------------------------------------------------------------------
    def on_message(self, msg: MAVLinkMessage) -> None:
        if msg.get_srcSystem() == self.ctx.system_id:
            return  # our own components (PX4's own COMMAND_LONGs to its camera/gimbal)
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_HEARTBEAT:
            if msg.type == mav.MAV_TYPE_GCS:
                last = self._gcs_heartbeat_s
                if last is not None and self._now_s - last > GCS_GAP_RECORDED_S:
                    # how long the ground station was silent (a restart of it, a blackout)
                    self._record("gcs.heard_again", silent_s=round(self._now_s - last, 2))
                self._gcs_heartbeat_s = self._now_s
            return
        if msg_id in (mav.MAVLINK_MSG_ID_COMMAND_LONG, mav.MAVLINK_MSG_ID_COMMAND_INT):
            if int(msg.target_system) not in (0, self.ctx.system_id):
                return
            if int(msg.target_component) not in (0, self.component_id):
                return
            cmd = Command.from_message(msg)
            if cmd is not None:
                self._command(cmd)
            return
        if msg_id == mav.MAVLINK_MSG_ID_TIMESYNC:
            if msg.tc1 == 0:
                self.outbox.send(mav.MAVLink_timesync_message(int(self._now_s * 1e9), msg.ts1))
            return
        if self.mission.on_message(msg, self._now_s):
            return
        if msg_id in (mav.MAVLINK_MSG_ID_PARAM_SET, mav.MAVLINK_MSG_ID_PARAM_REQUEST_READ) and (
            int(msg.target_system) != self.ctx.system_id
            or int(msg.target_component) not in (0, self.component_id)
        ):
            return
        if msg_id == mav.MAVLINK_MSG_ID_PARAM_REQUEST_LIST and int(msg.target_component) not in (
            0,
            self.component_id,
        ):
            return
        self.params.on_message(msg)

    def step(self, now_s: float, dt_s: float) -> None:
        self._now_s = now_s
        self._flush_texts()
        self._check_failsafes()
        self._fly(dt_s)
        self._handle_nav_events()
        self._detect_land(now_s)
        self._step_battery(dt_s)
        self.mission.step(now_s)
        self._send_streams()

    # commands ------------------------------------------------------------------------------
    def _command(self, cmd: Command) -> None:
        handler = {
            mav.MAV_CMD_COMPONENT_ARM_DISARM: self._cmd_arm_disarm,
            mav.MAV_CMD_NAV_TAKEOFF: self._cmd_takeoff,
            mav.MAV_CMD_NAV_LAND: self._cmd_land,
            mav.MAV_CMD_NAV_RETURN_TO_LAUNCH: self._cmd_rtl,
            mav.MAV_CMD_DO_REPOSITION: self._cmd_reposition,
            mav.MAV_CMD_DO_ORBIT: self._cmd_orbit,
            mav.MAV_CMD_DO_SET_MODE: self._cmd_set_mode,
            mav.MAV_CMD_MISSION_START: self._cmd_mission_start,
            mav.MAV_CMD_DO_CHANGE_SPEED: self._cmd_change_speed,
            mav.MAV_CMD_DO_PAUSE_CONTINUE: self._cmd_pause_continue,
            mav.MAV_CMD_DO_FLIGHTTERMINATION: self._cmd_termination,
            mav.MAV_CMD_REQUEST_MESSAGE: self._cmd_request_message,
            mav.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES: self._cmd_request_capabilities,
            mav.MAV_CMD_SET_MESSAGE_INTERVAL: self._cmd_set_interval,
            mav.MAV_CMD_GET_MESSAGE_INTERVAL: self._cmd_get_interval,
        }.get(cmd.command)
        if handler is None:
            if cmd.target_component == 0:
                return  # a broadcast for another component of the nest (dock, payload)
            self._ack(cmd, mav.MAV_RESULT_UNSUPPORTED)
            return
        if cmd.is_int and cmd.frame != mav.MAV_FRAME_GLOBAL_INT and cmd.command in _POSITIONAL_COMMANDS:
            self._ack(cmd, mav.MAV_RESULT_COMMAND_UNSUPPORTED_MAV_FRAME)
            return
        handler(cmd)

    def _ack(self, cmd: Command, result: int) -> None:
        self.outbox.command_ack(cmd.command, result, cmd.source_system, cmd.source_component)

    def _cmd_arm_disarm(self, cmd: Command) -> None:
        forced = cmd.p(2) == FORCE_MAGIC
        if cmd.p(1) >= 0.5:
            if self._armed:
                self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
                return
            failures = self._preflight_failures()
            if not forced and failures:
                self._ack(cmd, mav.MAV_RESULT_TEMPORARILY_REJECTED)
                due = self._now_s + ARM_DENIED_TEXT_DELAY_S
                self._texts.append(
                    (due, mav.MAV_SEVERITY_CRITICAL, "Arming denied: Resolve system health failures first\t")
                )
                for text in failures:
                    self._texts.append((due, mav.MAV_SEVERITY_CRITICAL, text))
                self._record("arm.denied", reasons=[f.strip() for f in failures])
                return
            if not forced and not self._mode_armable(self.mode):
                self._ack(cmd, mav.MAV_RESULT_TEMPORARILY_REJECTED)
                self._text(f"Arming denied: {self.mode.label} mode not armable\t", mav.MAV_SEVERITY_CRITICAL)
                return
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self._arm()
            return
        if not self._armed:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            return
        if not self._landed and not forced:
            self._ack(cmd, mav.MAV_RESULT_TEMPORARILY_REJECTED)
            self._text("Disarming denied: not landed\t", mav.MAV_SEVERITY_CRITICAL)
            return
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self._disarm("Disarmed by external command\t", "command")

    def _cmd_takeoff(self, cmd: Command) -> None:
        target = cmd.p(7)
        self._takeoff_target_amsl = target if math.isfinite(target) else None  # the minimum: _takeoff_task
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self._set_mode(FlightMode.TAKEOFF)

    def _cmd_land(self, cmd: Command) -> None:
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self._text("Landing at current position\t")
        self._set_mode(FlightMode.LAND)

    def _cmd_rtl(self, cmd: Command) -> None:
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self._text("Returning to launch\t")
        self._set_mode(FlightMode.RTL)

    def _cmd_reposition(self, cmd: Command) -> None:
        lat, lon, alt = cmd.location()
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        s = self.vehicle.state
        if math.isfinite(lat) and math.isfinite(lon):
            north, east, _ = self.ctx.frame.to_ned(lat, lon, 0.0)
        else:
            north, east = s.north_m, s.east_m
        down = self.ctx.home.alt_amsl_m - alt if math.isfinite(alt) else s.down_m
        yaw = cmd.p(4) % 360.0 if math.isfinite(cmd.p(4)) else None
        speed = cmd.p(1) if cmd.p(1) > 0 else None
        self._set_mode(FlightMode.LOITER, task=None)
        if self._armed and not self._landed:
            self._task = GoTo(
                self.params, Setpoint(north, east, min(-0.5, down), yaw), speed or self._speed_mps
            )
            self._record("reposition", lat=lat, lon=lon, alt_amsl_m=alt)

    def _cmd_orbit(self, cmd: Command) -> None:
        lat, lon, alt = cmd.location()
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        s = self.vehicle.state
        if math.isfinite(lat) and math.isfinite(lon):
            north, east, _ = self.ctx.frame.to_ned(lat, lon, 0.0)
        else:
            north, east = s.north_m, s.east_m
        down = self.ctx.home.alt_amsl_m - alt if math.isfinite(alt) else s.down_m
        radius = cmd.p(1) if math.isfinite(cmd.p(1)) else 20.0
        speed = cmd.p(2) if math.isfinite(cmd.p(2)) else 2.0
        self._set_mode(FlightMode.ORBIT, task=None)
        if self._armed and not self._landed:
            self._task = Orbit(self.params, north, east, min(-0.5, down), radius, speed)

    def _cmd_set_mode(self, cmd: Command) -> None:
        if not int(cmd.p(1)) & mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            return
        try:
            mode = mode_from_custom(int(cmd.p(2)), int(cmd.p(3)) if math.isfinite(cmd.p(3)) else 0)
        except UnsupportedMode:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self._text("Unsupported main mode\t", mav.MAV_SEVERITY_CRITICAL)
            return
        if self._armed and not self._mode_can_run(mode):
            self._ack(cmd, mav.MAV_RESULT_TEMPORARILY_REJECTED)
            self._text(f"Switching to {mode.label} is currently not available\t", mav.MAV_SEVERITY_CRITICAL)
            return
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        if mode is FlightMode.TAKEOFF:
            self._takeoff_target_amsl = None
        if mode is FlightMode.RTL and mode is not self.mode:
            self._text("Returning to launch\t")
        self._set_mode(mode)

    def _mode_can_run(self, mode: FlightMode) -> bool:
        """Whether an armed vehicle may switch to ``mode`` (PX4's mode requirements)."""
        if mode is FlightMode.MISSION:
            return bool(self.mission.items(MISSION))
        if mode.needs_manual_control or mode is FlightMode.OFFBOARD:
            return False  # no RC or joystick, no offboard setpoints in this sim
        return not (not self.gps_fix() and mode is not FlightMode.LAND)

    def _cmd_mission_start(self, cmd: Command) -> None:
        items = self.mission.items(MISSION)
        if not items:
            self._ack(cmd, mav.MAV_RESULT_DENIED)
            self._text("Mission start denied! No valid mission\t", mav.MAV_SEVERITY_CRITICAL)
            return
        first = cmd.p(1)
        if math.isfinite(first) and 0 <= int(first) < len(items):
            self.mission.current_seq = int(first)
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self._set_mode(FlightMode.MISSION)

    def _cmd_change_speed(self, cmd: Command) -> None:
        speed = cmd.p(2)
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        if math.isfinite(speed) and speed > 0:
            self._speed_mps = min(speed, self.params["MPC_XY_VEL_MAX"])
            if self._task is not None:
                self._task.speed_mps = self._speed_mps
            self._record("speed", speed_mps=self._speed_mps)

    def _cmd_pause_continue(self, cmd: Command) -> None:
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        if cmd.p(1) == 0:
            self._set_mode(FlightMode.LOITER)
        elif self.mission.items(MISSION):
            self._set_mode(FlightMode.MISSION)

    def _cmd_termination(self, cmd: Command) -> None:
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        if cmd.p(1) >= 0.5 and self._armed:
            self._disarm("Flight termination active\t", "termination")

    def _cmd_request_message(self, cmd: Command) -> None:
        msg = self._message_for(int(cmd.p(1)))
        if msg is None:
            self._ack(cmd, mav.MAV_RESULT_DENIED)
            return
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self._link()[1].send_here(msg)

    def _cmd_request_capabilities(self, cmd: Command) -> None:
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self.outbox.send(telemetry.autopilot_version(self.ctx.system_id))

    def _cmd_set_interval(self, cmd: Command) -> None:
        ok = self._link()[0].set_interval(int(cmd.p(1)), cmd.p(2), self._now_s)
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED if ok else mav.MAV_RESULT_DENIED)

    def _cmd_get_interval(self, cmd: Command) -> None:
        msg_id = int(cmd.p(1))
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        streams, outbox = self._link()
        outbox.send_here(mav.MAVLink_message_interval_message(msg_id, streams.interval_us(msg_id)))

    # modes and tasks -----------------------------------------------------------------------
    def _set_mode(self, mode: FlightMode, task: Task | bool | None = True, failsafe: bool = False) -> None:
        """Switch mode; with ``task`` True start what the mode flies (when armed). A failsafe's
        mode is not the user's intention: PX4 does not return to it after disarming."""
        if not failsafe and not mode.prevents_arming:
            self._mode_after_disarm = mode
        if mode is not self.mode:
            self._record("mode", mode=mode.name, previous=self.mode.name)
        previous = self.mode
        self.mode = mode
        if task is True:
            self._task = self._task_for(mode, previous)
        elif task is None or task is False:
            self._task = self._hold_here() if self._armed and not self._landed else None

    def _hold_here(self) -> Task:
        s = self.vehicle.state
        return Hold(self.params, Setpoint(s.north_m, s.east_m, s.down_m))

    def _task_for(self, mode: FlightMode, previous: FlightMode) -> Task | None:
        if not self._armed:
            if mode is FlightMode.MISSION:
                self._mission_state = mav.MISSION_STATE_NOT_STARTED
            return None
        s = self.vehicle.state
        if mode is FlightMode.TAKEOFF:
            return self._takeoff_task()
        if mode is FlightMode.MISSION:
            self._text("Executing Mission\t")
            self._record("mission.start", seq=self.mission.current_seq)
            self._mission_state = mav.MISSION_STATE_ACTIVE
            if self._landed:
                self._mission_after_takeoff = True
                return self._takeoff_task()
            return self._mission_task()
        if self._landed:
            return None
        if mode is FlightMode.RTL:
            task = ReturnToLaunch(self.params, s)
            task.speed_mps = self._speed_mps
            home = self.ctx.home.alt_amsl_m
            alt = home + task.return_height_m
            self._text(f"RTL: start return at {alt:.0f} m ({task.return_height_m:.0f} m above destination)\t")
            self._record("rtl", return_height_m=task.return_height_m)
            return task
        if mode is FlightMode.LAND:
            self._record("land")
            return Land(self.params, s.north_m, s.east_m)
        return self._hold_here()

    def _takeoff_task(self) -> Task:
        s = self.vehicle.state
        home = self.ctx.home.alt_amsl_m
        min_alt_m = self.params["MIS_TAKEOFF_ALT"]
        lowest = home + min_alt_m  # PX4's navigator (takeoff.cpp): home + the minimum takeoff altitude
        target = self._takeoff_target_amsl
        if target is None or not math.isfinite(target):
            # no altitude asked for: the minimum, said as info (airborne: the minimum above where it is)
            target = home + s.height_m + min_alt_m if not self._landed else lowest
            if self._landed:
                self._text(f"Using minimum takeoff altitude: {min_alt_m:.2f} m\t")
        elif target < lowest:
            # raised to the minimum; PX4 complains only when more than 10 cm are missing
            if target < lowest - 0.1:
                self._text(f"Using minimum takeoff altitude: {min_alt_m:.2f} m\t", mav.MAV_SEVERITY_CRITICAL)
            target = lowest
        if self._mission_after_takeoff:
            target = max(target, lowest)
        if not self._landed:
            target = max(target, home + s.height_m)  # already higher: PX4 does not go down
        height = max(0.0, target - home)
        self._record("takeoff", target_alt_amsl_m=target)
        return Takeoff(self.params, s.north_m, s.east_m, height, s.yaw_deg)

    def _mission_task(self) -> Task:
        items = self.mission.items(MISSION)
        seq = self.mission.current_seq if self.mission.current_seq < len(items) else 0
        task = MissionRun(self.params, items, seq, self.ctx.frame)
        task.speed_mps = self._speed_mps
        return task

    def _plan_changed(self, mission_type: int) -> None:
        if mission_type in (MISSION, mav.MAV_MISSION_TYPE_ALL) and self.mode is FlightMode.MISSION:
            if self._armed and not self._landed:
                self._task = self._mission_task() if self.mission.items(MISSION) else self._hold_here()
            self._mission_state = mav.MISSION_STATE_NOT_STARTED

    # arming --------------------------------------------------------------------------------
    def _arm(self) -> None:
        self._armed = True
        self._armed_at_s = self._now_s
        self._disarm_at_s = None
        self._battery_level = 0
        self._battery_failure_handled = False
        self._fence_breached = False
        self._text("Armed by external command\t")
        self._record("armed")
        if self.mode is FlightMode.TAKEOFF:
            self._task = self._takeoff_task()
        elif self.mode is FlightMode.MISSION:
            self._set_mode(FlightMode.MISSION)

    def _disarm(self, text: str, reason: str) -> None:
        self._armed = False
        self._task = None
        self._disarm_at_s = None
        self._obstructed_since_s = None
        self._mission_after_takeoff = False
        self._text(text)
        self._record("disarmed", reason=reason)
        if self.mode is not self._mode_after_disarm:
            # as PX4's UserModeIntention::onDisarm: out of Return/Land into an armable mode
            self._set_mode(self._mode_after_disarm, task=False)

    # flight --------------------------------------------------------------------------------
    def _floor_and_ceiling(self) -> tuple[float, float]:
        """Heights the drone cannot go below / above here (the dock's cover)."""
        s = self.vehicle.state
        over_pad = math.hypot(s.north_m, s.east_m) <= PAD_RADIUS_M * 1.5
        if not over_pad or self.dock.cover_open():
            self._inside_dock = over_pad and s.height_m < COVER_CEILING_M + 0.1
            return 0.0, math.inf
        if self._inside_dock:
            return 0.0, COVER_CEILING_M
        return DOCK_ROOF_M if s.height_m >= DOCK_ROOF_M - 0.05 else 0.0, math.inf

    def _fly(self, dt_s: float) -> None:
        vehicle, s = self.vehicle, self.vehicle.state
        floor, ceiling = self._floor_and_ceiling()
        self._setpoint = None
        if not self._armed:
            if s.height_m > floor + 0.01:
                vehicle.fall(dt_s)
                if s.height_m < floor:
                    s.down_m = -floor
                    vehicle.rest()
            else:
                vehicle.rest()
                s.down_m = -floor
            return
        task = self._task
        if task is None:
            if self._landed:
                vehicle.rest()
                s.down_m = -floor
                return
            task = self._task = self._hold_here()
        setpoint, limits = task.step(self._now_s, s)
        if self.ctx.faults.gps_lost(self._now_s):
            # no position estimate: the vehicle holds its attitude and drifts with the wind
            setpoint = Setpoint(s.north_m, s.east_m, setpoint.down_m, setpoint.yaw_deg)
        self._setpoint = setpoint
        if self._landed and -setpoint.down_m < floor + 0.3:
            vehicle.rest()
            s.down_m = -floor
            return
        wind = self.ctx.weather.wind_ned_mps(self.ctx.faults.extra_gust_mps(self._now_s))
        if self._landed:
            wind = (0.0, 0.0)  # sheltered on the ground / in the dock
        vehicle.step(dt_s, setpoint, limits, wind)
        if s.height_m > ceiling:
            s.down_m = -ceiling
            s.vd_mps = max(0.0, s.vd_mps)
            s.vn_mps = s.ve_mps = 0.0
        if s.height_m < floor:
            s.down_m = -floor
            s.vd_mps = min(0.0, s.vd_mps)
        self._check_obstructed(ceiling, setpoint)

    def _check_obstructed(self, ceiling: float, setpoint: Setpoint) -> None:
        s = self.vehicle.state
        blocked = math.isfinite(ceiling) and -setpoint.down_m > ceiling and s.height_m >= ceiling - 0.02
        if not blocked:
            self._obstructed_since_s = None
            return
        if self._obstructed_since_s is None:
            self._obstructed_since_s = self._now_s
        elif self._now_s - self._obstructed_since_s >= OBSTRUCTED_ABORT_S:
            self._obstructed_since_s = None
            self._text("Takeoff aborted: dock cover closed\t", mav.MAV_SEVERITY_CRITICAL)
            self._record("takeoff.obstructed", reason="dock cover closed")
            self._mission_after_takeoff = False
            self._set_mode(FlightMode.LAND, task=False)
            if self._landed:  # never got off the pad: settle back and disarm as after a landing
                self._task = None
                self._disarm_at_s = self._now_s + max(0.5, self.params["COM_DISARM_LAND"])
            else:
                self._task = Land(self.params, s.north_m, s.east_m)

    def _handle_nav_events(self) -> None:
        task = self._task
        if task is None or not task.events:
            return
        events, task.events = task.events, []
        for event in events:
            if event.kind is EventKind.TAKEOFF_DONE:
                self._record("takeoff.done", height_m=round(self.vehicle.state.height_m, 2))
                if self._mission_after_takeoff:
                    self._mission_after_takeoff = False
                    self._task = self._mission_task()
                elif self.mode is FlightMode.TAKEOFF:
                    self._set_mode(FlightMode.LOITER, task=None)
            elif event.kind is EventKind.ITEM_REACHED:
                self._item_reached(event.seq)
            elif event.kind is EventKind.CURRENT_CHANGED:
                self.mission.navigator_set_current(event.seq, self._mission_state)
            elif event.kind is EventKind.MISSION_FINISHED:
                self._mission_state = mav.MISSION_STATE_COMPLETE
                self._text("Mission finished, loitering\t")
                self._record("mission.finished")
            elif event.kind is EventKind.MISSION_RTL:
                self._mission_state = mav.MISSION_STATE_COMPLETE
                self._item_reached(event.seq)
                self._text("Returning to launch\t")
                self._set_mode(FlightMode.RTL)
            elif event.kind is EventKind.MISSION_LAND:
                self._item_reached(event.seq)
            elif event.kind is EventKind.RTL_LANDING:
                self._text("RTL: land at destination\t")
                self._record("rtl.landing")

    def _item_reached(self, seq: int) -> None:
        self.outbox.send(mav.MAVLink_mission_item_reached_message(seq))
        self._reached = (seq, self._now_s + REACHED_REPEAT_S, self._now_s + 1.0)
        self._record("mission.reached", seq=seq)

    def _detect_land(self, now_s: float) -> None:
        s = self.vehicle.state
        floor, _ = self._floor_and_ceiling()
        on_ground = s.height_m - floor < 0.05
        if self._landed:
            if self._armed and s.height_m - floor > TAKEOFF_DETECT_M:
                self._landed = False
                self._touchdown_s = None
                self._text("Takeoff detected\t")
                self._record("takeoff.detected")
            elif (
                (self._armed and self._disarm_at_s is None and self._task is None)
                or (self._armed and isinstance(self._task, Takeoff) and self._task.target.down_m > -0.3)
            ) and now_s - self._armed_at_s > self.params["COM_DISARM_PRFLT"] > 0:
                self._disarm("Disarmed by auto preflight disarming\t", "preflight timeout")
            if self._disarm_at_s is not None and now_s >= self._disarm_at_s and self._armed:
                self._disarm("Disarmed by landing\t", "landing")
            return
        if on_ground and abs(s.vd_mps) < 0.3:
            if self._touchdown_s is None:
                self._touchdown_s = now_s
            elif now_s - self._touchdown_s >= LANDED_DETECT_S:
                self._landed = True
                self._touchdown_s = None
                self._text("Landing detected\t")
                self._record("landed", on_pad=self.on_pad())
                if self._armed:
                    self._task = None
                    delay = self.params["COM_DISARM_LAND"]
                    self._disarm_at_s = now_s + delay if delay > 0 else None
                    self._armed_at_s = now_s
        else:
            self._touchdown_s = None

    def landed_state(self) -> int:
        if self._landed:
            return mav.MAV_LANDED_STATE_ON_GROUND
        task = self._task
        if task is not None and task.landing:
            return mav.MAV_LANDED_STATE_LANDING
        if isinstance(task, Takeoff) and not task.done:
            return mav.MAV_LANDED_STATE_TAKEOFF
        return mav.MAV_LANDED_STATE_IN_AIR

    # failsafes -----------------------------------------------------------------------------
    def _check_failsafes(self) -> None:
        now = self._now_s
        self._check_link(now)
        if not self._armed or self._landed:
            return
        self._check_battery()
        self._check_gps(now)
        self._check_fence()

    def _failsafe(self, action: str, why: str) -> None:
        mode = {"hold": FlightMode.LOITER, "rtl": FlightMode.RTL, "land": FlightMode.LAND}.get(action)
        self._record("failsafe", action=action, reason=why)
        if action == "terminate":
            self._disarm("Flight termination active\t", f"failsafe: {why}")
            return
        if mode is None or mode is self.mode:
            return
        self._text(f"Failsafe activated: {mode.label} ({why})\t", mav.MAV_SEVERITY_CRITICAL)
        self._set_mode(mode, failsafe=True)

    def _check_link(self, now: float) -> None:
        last = self._gcs_heartbeat_s
        if last is None:
            return
        lost = now - last > self.params["COM_DL_LOSS_T"]
        if lost and not self._link_lost:
            self._link_lost = True
            self._text("Connection to ground station lost\t", mav.MAV_SEVERITY_CRITICAL)
            self._record("link.lost")
            if self._armed and not self._landed:
                action = {1: "hold", 2: "rtl", 3: "land", 5: "terminate"}.get(
                    self.params.get_int("NAV_DLL_ACT")
                )
                if action is not None:
                    self._failsafe(action, "data link lost")
        elif not lost and self._link_lost:
            self._link_lost = False
            self._text("Data link regained\t")
            self._record("link.regained")

    def _check_battery(self) -> None:
        if self.battery.failed and not self._battery_failure_handled:
            self._battery_failure_handled = True
            self._text("Battery failure detected\t", mav.MAV_SEVERITY_EMERGENCY)
            self._failsafe("land", "battery failure")
            return
        soc = self.battery.soc
        level = 0
        if soc <= self.params["BAT_EMERGEN_THR"]:
            level = 3
        elif soc <= self.params["BAT_CRIT_THR"]:
            level = 2
        elif soc <= self.params["BAT_LOW_THR"]:
            level = 1
        if level <= self._battery_level:
            return
        self._battery_level = level
        act = self.params.get_int("COM_LOW_BAT_ACT")
        if level == 1:
            self._text("Low battery level, return advised\t", mav.MAV_SEVERITY_WARNING)
        elif level == 2:
            self._text("Critical battery level\t", mav.MAV_SEVERITY_CRITICAL)
            if act == 3:
                self._failsafe("rtl", "critical battery")
            elif act == 2:
                self._failsafe("land", "critical battery")
        else:
            self._text("Emergency battery level\t", mav.MAV_SEVERITY_EMERGENCY)
            if act in (2, 3):
                self._failsafe("land", "emergency battery")

    def _check_gps(self, now: float) -> None:
        lost = self.ctx.faults.gps_lost(now)
        if lost and not self._gps_lost_handled:
            self._gps_lost_handled = True
            self._text("GPS fix lost: no global position\t", mav.MAV_SEVERITY_CRITICAL)
            self._failsafe("land", "no global position")
        elif not lost:
            self._gps_lost_handled = False

    def _check_fence(self) -> None:
        p = self.position
        why = fence_violation(
            self.mission.items(FENCE), p.lat_deg, p.lon_deg, p.alt_amsl_m, self.ctx.home,
            max_hor_dist_m=self.params["GF_MAX_HOR_DIST"], max_ver_dist_m=self.params["GF_MAX_VER_DIST"],
        )  # fmt: skip
        if why is None:
            self._fence_breached = False
            return
        if self._fence_breached:
            return
        self._fence_breached = True
        self._text(f"Geofence breached: {why}\t", mav.MAV_SEVERITY_CRITICAL)
        action = {1: "warn", 2: "hold", 3: "rtl", 4: "terminate", 5: "land"}.get(
            self.params.get_int("GF_ACTION")
        )
        if action is not None and action != "warn":
            self._failsafe(action, "geofence")
        else:
            self._record("geofence", reason=why)

    # battery -------------------------------------------------------------------------------
    def _step_battery(self, dt_s: float) -> None:
        b = self.battery
        b.failed = self.ctx.faults.battery_failed
        s = self.vehicle.state
        if self._armed and not self._landed:
            self._power_w = flight_power_w(self.vehicle.air_speed_mps, -s.vd_mps)
        elif self._armed:
            self._power_w = IDLE_ARMED_POWER_W
        else:
            self._power_w = AVIONICS_POWER_W
        if not self._armed and self.on_pad() and self.dock.charging():
            b.charge(dt_s)
        else:
            b.drain(self._power_w, dt_s, self.ctx.faults.battery_drain_factor)

    def _charge_state(self) -> int:
        b = self.battery
        if b.failed:
            return mav.MAV_BATTERY_CHARGE_STATE_FAILED
        if b.charging:
            return mav.MAV_BATTERY_CHARGE_STATE_CHARGING
        soc = b.soc
        if soc <= self.params["BAT_EMERGEN_THR"]:
            return mav.MAV_BATTERY_CHARGE_STATE_EMERGENCY
        if soc <= self.params["BAT_CRIT_THR"]:
            return mav.MAV_BATTERY_CHARGE_STATE_CRITICAL
        if soc <= self.params["BAT_LOW_THR"]:
            return mav.MAV_BATTERY_CHARGE_STATE_LOW
        return mav.MAV_BATTERY_CHARGE_STATE_OK

    # telemetry -----------------------------------------------------------------------------
    def _snapshot(self) -> telemetry.Snapshot:
        throttle = 0 if not self._armed else (15 if self._landed else 55)
        return telemetry.Snapshot(
            now_s=self._now_s,
            state=self.vehicle.state,
            position=self.position,
            home=self.ctx.home,
            battery=self.battery,
            battery_charge_state=self._charge_state(),
            battery_power_w=self._power_w,
            air_speed_mps=self.vehicle.air_speed_mps if not self._landed else 0.0,
            throttle_pct=throttle,
            gps_fix=self.gps_fix(),
            prearm_ok=self.prearm_ok(),
            landed_state=self.landed_state(),
            armed=self._armed,
            setpoint=self._setpoint,
            ping_seq=self._ping_seq,
        )

    def heartbeat(self) -> MAVLinkMessage:
        if self._armed:
            status = mav.MAV_STATE_ACTIVE
        elif self.prearm_ok() and self._mode_armable(self.mode):
            status = mav.MAV_STATE_STANDBY
        else:
            status = mav.MAV_STATE_UNINIT
        return mav.MAVLink_heartbeat_message(
            mav.MAV_TYPE_QUADROTOR,
            mav.MAV_AUTOPILOT_PX4,
            base_mode(self.mode, self._armed),
            self.mode.custom_mode,
            status,
            3,
        )

    def _mission_current(self) -> MAVLinkMessage:
        in_mission = self.mode is FlightMode.MISSION
        state = self._mission_state if self.mission.items(MISSION) else None
        return self.mission.mission_current(state, 1 if in_mission else 2)

    def _message_for(self, msg_id: int) -> MAVLinkMessage | None:
        if msg_id == mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            return telemetry.autopilot_version(self.ctx.system_id)
        if msg_id == mav.MAVLINK_MSG_ID_HEARTBEAT:
            return self.heartbeat()
        if msg_id == mav.MAVLINK_MSG_ID_MISSION_CURRENT:
            return self._mission_current()
        if msg_id == mav.MAVLINK_MSG_ID_HOME_POSITION and self._now_s < HOME_AFTER_S:
            return None
        builder = _BUILDERS.get(msg_id)
        return builder(self._snapshot()) if builder is not None else None

    def _send_streams(self) -> None:
        self._send_due(self.streams, self.outbox)
        if self.gcs_streams is not None and self.gcs_outbox is not None:
            self._send_due(self.gcs_streams, self.gcs_outbox)
        if self._reached is not None:
            seq, until, next_s = self._reached
            if self._now_s >= until:
                self._reached = None
            elif self._now_s >= next_s:
                self.outbox.send(mav.MAVLink_mission_item_reached_message(seq))
                self._reached = (seq, until, next_s + 1.0)

    def _send_due(self, streams: StreamScheduler, outbox: Outbox) -> None:
        """One link's streams that are due now, on that link only."""
        due = streams.due(self._now_s)
        if not due:
            return
        snap: telemetry.Snapshot | None = None
        for msg_id in due:
            if msg_id == mav.MAVLINK_MSG_ID_HEARTBEAT:
                outbox.send_here(self.heartbeat())
            elif msg_id == mav.MAVLINK_MSG_ID_MISSION_CURRENT:
                outbox.send_here(self._mission_current())
            elif (msg_id == mav.MAVLINK_MSG_ID_HOME_POSITION and self._now_s < HOME_AFTER_S) or (
                msg_id in (mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, mav.MAVLINK_MSG_ID_GPS_RAW_INT)
                and (self._now_s < GPS_FIX_AFTER_S)
            ):
                continue
            else:
                builder = _BUILDERS.get(msg_id)
                if builder is not None:
                    snap = snap or self._snapshot()
                    msg = builder(snap)
                    if msg is not None:
                        outbox.send_here(msg)
                    if msg_id == mav.MAVLINK_MSG_ID_PING:
                        self._ping_seq += 1

    # statustext ----------------------------------------------------------------------------
    def _text(self, text: str, severity: int = mav.MAV_SEVERITY_INFO) -> None:
        """STATUSTEXT as PX4 sends it: 50-byte chunks with an id when longer."""
        data = text.encode()
        if len(data) <= 50:
            self.outbox.send(mav.MAVLink_statustext_message(severity, data, 0, 0))
            return
        self._text_id = self._text_id % 65535 + 1
        for chunk_seq, start in enumerate(range(0, len(data), 50)):
            self.outbox.send(
                mav.MAVLink_statustext_message(severity, data[start : start + 50], self._text_id, chunk_seq)
            )

    def _flush_texts(self) -> None:
        if not self._texts:
            return
        due = [t for t in self._texts if t[0] <= self._now_s]
        self._texts = [t for t in self._texts if t[0] > self._now_s]
        for _, severity, text in due:
            self._text(text, severity)

    def _record(self, kind: str, **data: object) -> None:
        self.ctx.recorder.add(self._now_s, "autopilot", kind, **data)


_BUILDERS: dict[int, Callable[[telemetry.Snapshot], MAVLinkMessage | None]] = {
    mav.MAVLINK_MSG_ID_SYS_STATUS: telemetry.sys_status,
    mav.MAVLINK_MSG_ID_BATTERY_STATUS: telemetry.battery_status,
    mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: telemetry.global_position_int,
    mav.MAVLINK_MSG_ID_ATTITUDE: telemetry.attitude,
    mav.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: telemetry.attitude_quaternion,
    mav.MAVLINK_MSG_ID_GPS_RAW_INT: telemetry.gps_raw_int,
    mav.MAVLINK_MSG_ID_HOME_POSITION: telemetry.home_position,
    mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: telemetry.extended_sys_state,
    mav.MAVLINK_MSG_ID_VFR_HUD: telemetry.vfr_hud,
    mav.MAVLINK_MSG_ID_ALTITUDE: telemetry.altitude,
    mav.MAVLINK_MSG_ID_LOCAL_POSITION_NED: telemetry.local_position_ned,
    mav.MAVLINK_MSG_ID_ATTITUDE_TARGET: telemetry.attitude_target,
    mav.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED: telemetry.position_target_local_ned,
    mav.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT: telemetry.position_target_global_int,
    mav.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW: telemetry.servo_output_raw,
    mav.MAVLINK_MSG_ID_SCALED_PRESSURE: telemetry.scaled_pressure,
    mav.MAVLINK_MSG_ID_DISTANCE_SENSOR: telemetry.distance_sensor,
    mav.MAVLINK_MSG_ID_ESTIMATOR_STATUS: telemetry.estimator_status,
    mav.MAVLINK_MSG_ID_VIBRATION: telemetry.vibration,
    mav.MAVLINK_MSG_ID_PING: telemetry.ping,
    mav.MAVLINK_MSG_ID_OPEN_DRONE_ID_LOCATION: telemetry.open_drone_id_location,
    mav.MAVLINK_MSG_ID_OPEN_DRONE_ID_SYSTEM: telemetry.open_drone_id_system,
}
