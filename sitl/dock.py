"""The simulated dock (component 25): cover, charger, weather station, fault latch.

What it sends: HEARTBEAT (MAV_TYPE_CHARGING_STATION) at 1 Hz, DOCK_STATUS at 1 Hz and on
every change of cover state, drone presence, charger state or faults, DOCK_WEATHER at 0.5 Hz.

What it does, as a real dock does:
- The cover takes ``cover_travel_s`` (18 s) from closed to open. MAV_CMD_DRONECTL_DOCK_COVER is
  answered IN_PROGRESS (with the percentage of the move done) when the move starts and every
  second while it goes on, then ACCEPTED when the cover got there, or FAILED when it jammed or was
  stopped. The cover never closes onto a drone that is in its way: a drone landed and idle on the
  pad is fine (the cover closes over it), a drone on the pad with running motors or hovering low
  over the pad is not (DENIED with a STATUSTEXT saying why; appearing while it closes stops the
  cover and opens it again). A jam latches DOCK_FAULT_COVER_JAMMED until
  MAV_CMD_DRONECTL_DOCK_RESET_FAULTS after the jam is gone.
- The charger charges the drone on the pad: about 10 A while the battery is below 90 %, tapering
  to FULL; it tops up again below 95 %. With ``auto_charge`` (default) it starts by itself once a
  drone is on the pad and the cover has closed; MAV_CMD_DRONECTL_DOCK_CHARGER switches it by hand
  (DENIED when no drone is in the dock). A failed battery trips DOCK_FAULT_CHARGER.

What it senses of the drone: ``DroneView.on_pad()``/``airborne()``, and, when the view offers
them, ``position_ned_m()`` (the light curtain over the pad) and ``battery_pct()`` (the charger
measures the battery through its contacts). Without a position an airborne drone counts as clear
of the cover and a drone that is neither idle on the pad nor airborne counts as in the way;
without a battery level the charger never reports FULL.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import DOCK_COMPID, MAVLinkMessage, Outbox
from sitl.environment import DroneView, NestContext
from sitl.peripheral import Command, MessageStreams
from sitl.weather import WeatherStation

PROGRESS_ACK_INTERVAL_S = 1.0
CURTAIN_RADIUS_M = 2.0  # horizontal reach of the obstruction sensor around the pad centre
CURTAIN_HEIGHT_M = 3.0  # a drone lower than this over the pad is in the cover's way
INTERNAL_TEMP_TAU_S = 900.0


class CoverState(enum.IntEnum):
    UNKNOWN = mav.DOCK_COVER_STATE_UNKNOWN
    CLOSED = mav.DOCK_COVER_STATE_CLOSED
    OPENING = mav.DOCK_COVER_STATE_OPENING
    OPEN = mav.DOCK_COVER_STATE_OPEN
    CLOSING = mav.DOCK_COVER_STATE_CLOSING
    JAMMED = mav.DOCK_COVER_STATE_JAMMED


class ChargerState(enum.IntEnum):
    IDLE = mav.DOCK_CHARGER_STATE_IDLE
    CHARGING = mav.DOCK_CHARGER_STATE_CHARGING
    FULL = mav.DOCK_CHARGER_STATE_FULL
    FAULT = mav.DOCK_CHARGER_STATE_FAULT


class DockFault(enum.IntFlag):
    COVER_JAMMED = mav.DOCK_FAULT_COVER_JAMMED
    CHARGER = mav.DOCK_FAULT_CHARGER
    WEATHER_STATION = mav.DOCK_FAULT_WEATHER_STATION
    POWER = mav.DOCK_FAULT_POWER
    INTRUSION_ALARM = mav.DOCK_FAULT_INTRUSION_ALARM


@runtime_checkable
class DronePosition(Protocol):
    def position_ned_m(self) -> tuple[float, float, float]:
        """Drone position in the nest's local frame (origin at the pad), metres."""


@runtime_checkable
class DroneBattery(Protocol):
    def battery_pct(self) -> float:
        """State of charge, 0-100."""


@dataclass(frozen=True)
class DockConfig:
    cover_travel_s: float = 18.0
    start_cover_open: bool = False
    auto_charge: bool = True
    charge_current_a: float = 10.0
    taper_from_pct: float = 90.0
    min_current_a: float = 0.5
    full_pct: float = 99.5
    recharge_below_pct: float = 95.0


@dataclass
class _Requester:
    command: int
    system_id: int
    component_id: int


@dataclass
class _Move:
    target_pct: float
    start_pct: float
    requesters: list[_Requester] = field(default_factory=list)
    next_progress_s: float = 0.0


class SimDock:
    component_id = DOCK_COMPID

    def __init__(
        self, ctx: NestContext, outbox: Outbox, drone: DroneView, config: DockConfig | None = None
    ) -> None:
        self.ctx = ctx
        self.outbox = outbox
        self.drone = drone
        self.config = config or DockConfig()
        self._now_s = 0.0
        self._cover_pct = 100.0 if self.config.start_cover_open else 0.0
        self._cover_state = CoverState.OPEN if self.config.start_cover_open else CoverState.CLOSED
        self._move: _Move | None = None
        self._faults = DockFault(0)
        self._charger_enabled = False
        self._charger_full = False
        self._auto_charge_used = False  # auto-charge starts once per docking
        self._drone_was_on_pad = drone.on_pad()
        self._station = WeatherStation(seed=ctx.system_id)
        self._internal_temp_c = self._internal_target_c()
        self._last_status_key: tuple[int, ...] | None = None
        self.streams = MessageStreams(
            outbox,
            {
                mav.MAVLINK_MSG_ID_HEARTBEAT: (1.0, self._heartbeat),
                mav.MAVLINK_MSG_ID_DOCK_STATUS: (1.0, self._dock_status),
                mav.MAVLINK_MSG_ID_DOCK_WEATHER: (0.5, self._dock_weather),
            },
        )

    # DockView -------------------------------------------------------------------------------
    def cover_open(self) -> bool:
        return self._cover_state is CoverState.OPEN

    def charging(self) -> bool:
        return self._charger_state() is ChargerState.CHARGING

    # state the tests and the nest may read ------------------------------------------------------
    @property
    def cover_state(self) -> CoverState:
        return self._cover_state

    @property
    def cover_position_pct(self) -> float:
        return self._cover_pct

    @property
    def fault_flags(self) -> DockFault:
        return self._faults

    @property
    def charger_state(self) -> ChargerState:
        return self._charger_state()

    def charge_current_a(self) -> float:
        if not self.charging():
            return 0.0
        pct = self._battery_pct()
        cfg = self.config
        if pct is None or pct < cfg.taper_from_pct:
            return cfg.charge_current_a
        share = (100.0 - pct) / (100.0 - cfg.taper_from_pct)
        return max(cfg.min_current_a, cfg.charge_current_a * share)

    # SimComponent ------------------------------------------------------------------------------
    def on_message(self, msg: MAVLinkMessage) -> None:
        cmd = Command.from_message(msg)
        if cmd is None:
            return
        if self.streams.handle(cmd, self._now_s):
            return
        if cmd.command == mav.MAV_CMD_DRONECTL_DOCK_COVER:
            self._cover_command(cmd)
        elif cmd.command == mav.MAV_CMD_DRONECTL_DOCK_CHARGER:
            self._charger_command(cmd)
        elif cmd.command == mav.MAV_CMD_DRONECTL_DOCK_RESET_FAULTS:
            self._reset_faults(cmd)
        elif not cmd.broadcast:
            self._ack(cmd, mav.MAV_RESULT_UNSUPPORTED)
        self._status_on_change()

    def step(self, now_s: float, dt_s: float) -> None:
        self._now_s = now_s
        self._step_cover(now_s, dt_s)
        self._step_charger()
        target = self._internal_target_c()
        self._internal_temp_c += (target - self._internal_temp_c) * min(1.0, dt_s / INTERNAL_TEMP_TAU_S)
        self._status_on_change()
        self.streams.step(now_s)

    # cover -------------------------------------------------------------------------------------
    def _cover_command(self, cmd: Command) -> None:
        flag = cmd.param(1)
        if flag not in (0.0, 1.0):
            self._ack(cmd, mav.MAV_RESULT_DENIED)
            return
        opening = flag == 1.0
        target = 100.0 if opening else 0.0
        requester = _Requester(cmd.command, cmd.source_system, cmd.source_component)
        if DockFault.COVER_JAMMED in self._faults:
            self._refuse(cmd, mav.MAV_RESULT_FAILED, "Dock cover jammed: clear it and reset faults")
            return
        move = self._move
        if move is None and self._cover_pct == target:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            return
        if not opening:
            obstruction = self._obstruction()
            if obstruction is not None:
                self._refuse(cmd, mav.MAV_RESULT_DENIED, f"Dock cover blocked: {obstruction}")
                return
        if move is not None and move.target_pct == target:
            move.requesters.append(requester)
            self._ack(cmd, mav.MAV_RESULT_IN_PROGRESS, progress=self._progress(move))
            return
        if move is not None:
            self._finish_move(mav.MAV_RESULT_FAILED, "Dock cover command superseded")
        if self.ctx.faults.cover_jammed:
            self._jam()
            self._refuse(cmd, mav.MAV_RESULT_FAILED, "Dock cover jammed")
            return
        self._start_move(target, [requester])
        self._ack(cmd, mav.MAV_RESULT_IN_PROGRESS, progress=0)

    def _start_move(self, target_pct: float, requesters: list[_Requester]) -> None:
        self._move = _Move(target_pct, self._cover_pct, requesters, self._now_s + PROGRESS_ACK_INTERVAL_S)
        opening = target_pct > self._cover_pct
        self._cover_state = CoverState.OPENING if opening else CoverState.CLOSING
        self._record("cover.opening" if opening else "cover.closing", position_pct=round(self._cover_pct, 1))

    def _step_cover(self, now_s: float, dt_s: float) -> None:
        move = self._move
        if move is None:
            return
        if self.ctx.faults.cover_jammed:
            self._jam()
            return
        if move.target_pct < move.start_pct:
            obstruction = self._obstruction()
            if obstruction is not None:
                self._record("cover.obstructed", position_pct=round(self._cover_pct, 1), reason=obstruction)
                self._finish_move(mav.MAV_RESULT_FAILED, f"Dock cover stopped: {obstruction}")
                self._start_move(100.0, [])  # back off, as a garage door does
                return
        rate = 100.0 / self.config.cover_travel_s
        delta = rate * dt_s
        if abs(move.target_pct - self._cover_pct) <= delta:
            self._cover_pct = move.target_pct
            self._cover_state = CoverState.OPEN if move.target_pct >= 100.0 else CoverState.CLOSED
            self._record("cover.opened" if self._cover_state is CoverState.OPEN else "cover.closed")
            self._finish_move(mav.MAV_RESULT_ACCEPTED)
            return
        self._cover_pct += delta if move.target_pct > self._cover_pct else -delta
        if now_s >= move.next_progress_s:
            move.next_progress_s = now_s + PROGRESS_ACK_INTERVAL_S
            for r in move.requesters:
                self.outbox.command_ack(
                    r.command, mav.MAV_RESULT_IN_PROGRESS, r.system_id, r.component_id, self._progress(move)
                )

    def _finish_move(self, result: int, reason: str = "") -> None:
        move = self._move
        self._move = None
        if move is None:
            return
        if reason:
            self.outbox.statustext(reason, mav.MAV_SEVERITY_WARNING)
        for r in move.requesters:
            self.outbox.command_ack(r.command, result, r.system_id, r.component_id, 100 if result == 0 else 0)

    def _jam(self) -> None:
        self._cover_state = CoverState.JAMMED
        self._faults |= DockFault.COVER_JAMMED
        self._record("cover.jammed", position_pct=round(self._cover_pct, 1))
        if self._move is not None:
            self._finish_move(mav.MAV_RESULT_FAILED, "Dock cover jammed")

    def _progress(self, move: _Move) -> int:
        span = abs(move.target_pct - move.start_pct)
        done = abs(self._cover_pct - move.start_pct)
        return int(min(100.0, 100.0 * done / span)) if span > 0 else 100

    def _obstruction(self) -> str | None:
        """Why the cover must not close now, or None when its path is clear."""
        drone = self.drone
        if drone.on_pad():
            return None
        if isinstance(drone, DronePosition):
            north, east, down = drone.position_ned_m()
            near = math.hypot(north, east) <= CURTAIN_RADIUS_M and -down < CURTAIN_HEIGHT_M
            if not near:
                return None
            if drone.airborne():
                return f"drone hovering over pad {-down:.1f} m"
            return "drone on pad, motors running"
        if drone.airborne():
            return None
        return "drone on pad, motors running"

    # charger -----------------------------------------------------------------------------------
    def _charger_state(self) -> ChargerState:
        if DockFault.CHARGER in self._faults:
            return ChargerState.FAULT
        if not self._charger_enabled or not self.drone.on_pad():
            return ChargerState.IDLE
        return ChargerState.FULL if self._charger_full else ChargerState.CHARGING

    def _battery_pct(self) -> float | None:
        return float(self.drone.battery_pct()) if isinstance(self.drone, DroneBattery) else None

    def _charger_command(self, cmd: Command) -> None:
        flag = cmd.param(1)
        if flag not in (0.0, 1.0):
            self._ack(cmd, mav.MAV_RESULT_DENIED)
        elif flag == 0.0:
            if self._charger_enabled:
                self._charger_off("command")
            self._auto_charge_used = True  # the operator said no: do not restart by itself
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        elif not self.drone.on_pad():
            self._refuse(cmd, mav.MAV_RESULT_DENIED, "Dock charger: no drone in the dock")
        elif DockFault.CHARGER in self._faults:
            self._refuse(cmd, mav.MAV_RESULT_FAILED, "Dock charger fault: reset faults first")
        elif self.ctx.faults.battery_failed:
            self._charger_trip()
            self._refuse(cmd, mav.MAV_RESULT_FAILED, "Dock charger: drone battery failed")
        else:
            self._charger_on(auto=False)
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)

    def _charger_on(self, auto: bool) -> None:
        self._charger_enabled = True
        self._charger_full = False
        self._auto_charge_used = True
        self._record("charger.on", auto=auto, battery_pct=self._battery_pct())

    def _charger_off(self, reason: str) -> None:
        self._charger_enabled = False
        self._charger_full = False
        self._record("charger.off", reason=reason, battery_pct=self._battery_pct())

    def _charger_trip(self) -> None:
        self._faults |= DockFault.CHARGER
        if self._charger_enabled:
            self._charger_off("fault")
        self._record("charger.fault", reason="drone battery failed")

    def _step_charger(self) -> None:
        on_pad = self.drone.on_pad()
        if self._drone_was_on_pad and not on_pad:
            self._record("drone.left")
            if self._charger_enabled:
                self._charger_off("drone left the pad")
            self._auto_charge_used = False
        elif on_pad and not self._drone_was_on_pad:
            self._record("drone.docked")
            self._auto_charge_used = False
        self._drone_was_on_pad = on_pad
        if not on_pad or DockFault.CHARGER in self._faults:
            return
        if self._charger_enabled and self.ctx.faults.battery_failed:
            self._charger_trip()
            self.outbox.statustext("Dock charger stopped: drone battery failed", mav.MAV_SEVERITY_ERROR)
            return
        if (
            self.config.auto_charge
            and not self._charger_enabled
            and not self._auto_charge_used
            and self._cover_state is CoverState.CLOSED
            and not self.ctx.faults.battery_failed
        ):
            self._charger_on(auto=True)
        pct = self._battery_pct()
        if not self._charger_enabled or pct is None:
            return
        if not self._charger_full and pct >= self.config.full_pct:
            self._charger_full = True
            self._record("charger.full", battery_pct=pct)
        elif self._charger_full and pct < self.config.recharge_below_pct:
            self._charger_full = False
            self._record("charger.topping_up", battery_pct=pct)

    # faults ------------------------------------------------------------------------------------
    def _reset_faults(self, cmd: Command) -> None:
        cleared = DockFault(0)
        if DockFault.COVER_JAMMED in self._faults and not self.ctx.faults.cover_jammed:
            cleared |= DockFault.COVER_JAMMED
            if self._cover_pct <= 0.0:
                self._cover_state = CoverState.CLOSED
            elif self._cover_pct >= 100.0:
                self._cover_state = CoverState.OPEN
            else:
                self._cover_state = CoverState.UNKNOWN
        if DockFault.CHARGER in self._faults and not self.ctx.faults.battery_failed:
            cleared |= DockFault.CHARGER
        self._faults &= ~cleared
        self._record("faults.reset", cleared=int(cleared), remaining=int(self._faults))
        if self._faults:
            names = ", ".join(str(f.name).lower().replace("_", " ") for f in DockFault if f in self._faults)
            self._refuse(cmd, mav.MAV_RESULT_FAILED, f"Dock faults remain: {names}")
        else:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)

    # messages ----------------------------------------------------------------------------------
    def _heartbeat(self) -> MAVLinkMessage:
        if self._faults:
            status = mav.MAV_STATE_CRITICAL
        elif self._move is not None or self.charging():
            status = mav.MAV_STATE_ACTIVE
        else:
            status = mav.MAV_STATE_STANDBY
        return mav.MAVLink_heartbeat_message(
            mav.MAV_TYPE_CHARGING_STATION, mav.MAV_AUTOPILOT_INVALID, 0, 0, status, 3
        )

    def _dock_status(self) -> MAVLinkMessage:
        return mav.MAVLink_dock_status_message(
            int(self._now_s * 1e6),
            int(self._cover_state),
            round(self._cover_pct),
            1 if self.drone.on_pad() else 0,
            int(self._charger_state()),
            self.charge_current_a(),
            int(self._faults),
            self._internal_temp_c,
        )

    def _dock_weather(self) -> MAVLinkMessage:
        r = self._station.read(self.ctx.weather, self._now_s, self.ctx.faults.extra_gust_mps(self._now_s))
        return mav.MAVLink_dock_weather_message(
            int(self._now_s * 1e6),
            r.wind_speed_mps,
            r.wind_gust_mps,
            r.wind_from_deg,
            r.air_temp_c,
            r.road_temp_c,
            r.humidity_pct,
            r.precipitation_mmph,
            int(r.precipitation),
        )

    def _status_on_change(self) -> None:
        key = (
            int(self._cover_state),
            int(self.drone.on_pad()),
            int(self._charger_state()),
            int(self._faults),
        )
        if key != self._last_status_key:
            self._last_status_key = key
            self.streams.send_now(mav.MAVLINK_MSG_ID_DOCK_STATUS)

    def _internal_target_c(self) -> float:
        """Heated and ventilated: kept between 10 and 30 degC, a few degrees warmer while charging."""
        air = self.ctx.weather.air_temp_c
        return min(30.0, max(10.0, air)) + (3.0 if self._charger_enabled else 0.0)

    # helpers -----------------------------------------------------------------------------------
    def _ack(self, cmd: Command, result: int, progress: int = 0) -> None:
        self.outbox.command_ack(cmd.command, result, cmd.source_system, cmd.source_component, progress)

    def _refuse(self, cmd: Command, result: int, reason: str) -> None:
        self.outbox.statustext(reason, mav.MAV_SEVERITY_WARNING)
        self._ack(cmd, result)
        self._record("command.refused", command=cmd.command, result=result, reason=reason)

    def _record(self, kind: str, **data: object) -> None:
        self.ctx.recorder.add(self._now_s, "dock", kind, **data)
