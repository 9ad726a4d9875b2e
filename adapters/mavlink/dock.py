"""The ``Dock`` protocol over MAVLink with the dronectl dialect (component 25 of the nest).

Cover, charger and fault reset are MAV_CMD_DRONECTL_DOCK_* COMMAND_LONGs; the cover answers
IN_PROGRESS while it moves and the final ACK when it got there. Status comes from DOCK_STATUS
(1 Hz and on change) and DOCK_WEATHER (0.5 Hz); the link state from the dock's HEARTBEAT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import RetryPolicy, raise_for
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.watch import Watch
from adapters.protocols import (
    ChargerState,
    CoverState,
    DockFault,
    DockStatus,
    DockWeather,
    LinkState,
    Precipitation,
)

COVER_STATES = {
    mav.DOCK_COVER_STATE_UNKNOWN: CoverState.UNKNOWN,
    mav.DOCK_COVER_STATE_CLOSED: CoverState.CLOSED,
    mav.DOCK_COVER_STATE_OPENING: CoverState.OPENING,
    mav.DOCK_COVER_STATE_OPEN: CoverState.OPEN,
    mav.DOCK_COVER_STATE_CLOSING: CoverState.CLOSING,
    mav.DOCK_COVER_STATE_JAMMED: CoverState.JAMMED,
}
CHARGER_STATES = {
    mav.DOCK_CHARGER_STATE_IDLE: ChargerState.IDLE,
    mav.DOCK_CHARGER_STATE_CHARGING: ChargerState.CHARGING,
    mav.DOCK_CHARGER_STATE_FULL: ChargerState.FULL,
    mav.DOCK_CHARGER_STATE_FAULT: ChargerState.FAULT,
}
FAULT_BITS = {
    mav.DOCK_FAULT_COVER_JAMMED: DockFault.COVER_JAMMED,
    mav.DOCK_FAULT_CHARGER: DockFault.CHARGER,
    mav.DOCK_FAULT_WEATHER_STATION: DockFault.WEATHER_STATION,
    mav.DOCK_FAULT_POWER: DockFault.POWER,
    mav.DOCK_FAULT_INTRUSION_ALARM: DockFault.INTRUSION_ALARM,
}
PRECIPITATION = {
    mav.PRECIPITATION_NONE: Precipitation.NONE,
    mav.PRECIPITATION_RAIN: Precipitation.RAIN,
    mav.PRECIPITATION_SNOW: Precipitation.SNOW,
    mav.PRECIPITATION_SLEET: Precipitation.SLEET,
    mav.PRECIPITATION_HAIL: Precipitation.HAIL,
}

# The cover takes tens of seconds and says how far it got each second; quick commands are quick.
COVER_POLICY = RetryPolicy(ack_timeout_s=1.0, attempts=4, progress_timeout_s=5.0, max_duration_s=120.0)
QUICK_POLICY = RetryPolicy(ack_timeout_s=1.0, attempts=4, max_duration_s=10.0)


def dock_status(msg: MAVLinkMessage) -> DockStatus:
    return DockStatus(
        cover=COVER_STATES.get(int(msg.cover_state), CoverState.UNKNOWN),
        cover_position_pct=float(msg.cover_position),
        drone_in_dock=bool(msg.drone_in_dock),
        charger=CHARGER_STATES.get(int(msg.charger_state), ChargerState.FAULT),
        charge_current_a=round(float(msg.charge_current), 2),
        faults=frozenset(fault for bit, fault in FAULT_BITS.items() if int(msg.fault_flags) & bit),
        internal_temperature_c=round(float(msg.internal_temperature), 1),
    )


def dock_weather(msg: MAVLinkMessage) -> DockWeather:
    return DockWeather(
        wind_speed_mps=float(msg.wind_speed),
        wind_gust_mps=float(msg.wind_gust),
        wind_from_deg=float(msg.wind_direction),
        air_temperature_c=float(msg.air_temperature),
        road_temperature_c=float(msg.road_temperature),
        humidity_pct=float(msg.humidity),
        precipitation_mmph=float(msg.precipitation_rate),
        precipitation=PRECIPITATION.get(int(msg.precipitation_type), Precipitation.NONE),
    )


class MavlinkDock:
    def __init__(self, link: ComponentLink) -> None:
        self._link = link
        self._status: Watch[DockStatus] = Watch()
        self._weather: Watch[DockWeather] = Watch()
        self._unsubscribe = link.subscribe(self._on_message)

    def close(self) -> None:
        self._unsubscribe()

    @property
    def latest_status(self) -> DockStatus | None:
        return self._status.value

    @property
    def latest_weather(self) -> DockWeather | None:
        return self._weather.value

    # Dock ---------------------------------------------------------------------------------------
    async def open_cover(self) -> None:
        await self._command("open the dock cover", mav.MAV_CMD_DRONECTL_DOCK_COVER, (1.0,), COVER_POLICY)

    async def close_cover(self) -> None:
        await self._command("close the dock cover", mav.MAV_CMD_DRONECTL_DOCK_COVER, (0.0,), COVER_POLICY)

    async def set_charging(self, enabled: bool) -> None:
        what = "start charging" if enabled else "stop charging"
        await self._command(what, mav.MAV_CMD_DRONECTL_DOCK_CHARGER, (1.0 if enabled else 0.0,), QUICK_POLICY)

    async def reset_faults(self) -> None:
        await self._command("reset dock faults", mav.MAV_CMD_DRONECTL_DOCK_RESET_FAULTS, (), QUICK_POLICY)

    def status(self) -> AsyncIterator[DockStatus]:
        return self._status.updates()

    def weather(self) -> AsyncIterator[DockWeather]:
        return self._weather.updates()

    def link_state(self) -> AsyncIterator[LinkState]:
        return self._link.watchdog.state.updates()

    # ---------------------------------------------------------------------------------------------
    async def _command(self, what: str, command: int, params: tuple[float, ...], policy: RetryPolicy) -> None:
        self._link.watchdog.ensure_connected()
        ack = await self._link.commands.command_long(command, params, policy)
        raise_for(ack, what, self._link.name, self._link.watchdog.silent_s())

    def _on_message(self, msg: MAVLinkMessage) -> None:
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_DOCK_STATUS:
            self._status.set(dock_status(msg))
        elif msg_id == mav.MAVLINK_MSG_ID_DOCK_WEATHER:
            self._weather.set(dock_weather(msg))
