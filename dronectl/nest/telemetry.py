"""The nest's telemetry watchers: every stream of the drone and the dock read into the nest's state.

:class:`TelemetryWatch` starts one task per adapter stream (position, battery, armed, landed
state, flight mode, health, links, dock status, weather), keeps the latest values in the
:class:`~dronectl.nest.core.NestCore`, feeds the state machine what changed (drone and dock
status, links), records the track of the flight, and wakes whoever waits on the nest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from adapters.protocols import (
    ChargerState,
    CoverState,
    DockStatus,
    DockWeather,
    FlightMode,
    Health,
    LandedState,
    Position,
)
from dronectl.audit import TrackSample
from dronectl.domain import nest_state as ns
from dronectl.domain.geo import GeoPoint, short_distance_m
from dronectl.nest.core import NestCore
from dronectl.nest.faults import FaultReports
from dronectl.nest.types import NestHardware

_MODE_TO_PHASE_MODE = {
    FlightMode.TAKEOFF: ns.FlightMode.TAKEOFF,
    FlightMode.HOLD: ns.FlightMode.HOLD,
    FlightMode.MISSION: ns.FlightMode.MISSION,
    FlightMode.RETURN_TO_LAUNCH: ns.FlightMode.RETURN,
    FlightMode.LAND: ns.FlightMode.LAND,
    FlightMode.PRECISION_LAND: ns.FlightMode.LAND,
    FlightMode.POSITION: ns.FlightMode.POSITION,
    FlightMode.OFFBOARD: ns.FlightMode.POSITION,
}
_COVER = {
    CoverState.UNKNOWN: ns.CoverState.UNKNOWN,
    CoverState.CLOSED: ns.CoverState.CLOSED,
    CoverState.OPENING: ns.CoverState.OPENING,
    CoverState.OPEN: ns.CoverState.OPEN,
    CoverState.CLOSING: ns.CoverState.CLOSING,
    CoverState.JAMMED: ns.CoverState.STOPPED,
}


class TelemetryWatch:
    """The watchers of one nest (kept across its runs: the last status seen stays known)."""

    def __init__(self, nest: NestCore) -> None:
        self._nest = nest
        self._last_pos_mono: float | None = None
        self._last_drone_status: ns.DroneStatus | None = None
        self._last_dock_status: ns.DockStatus | None = None
        self.faults = FaultReports(nest)
        self._link_lost_at: tuple[float, FlightMode, bool] | None = None  # (monotonic, mode, in the air)

    def start(self, tg: asyncio.TaskGroup, hw: NestHardware, name: str) -> None:
        """One task per stream of ``hw`` in ``tg``, named ``<name>.<stream>``."""
        tg.create_task(self._watch(hw.flight.position(), self._on_position), name=f"{name}.position")
        tg.create_task(self._watch(hw.flight.battery(), self._on_battery), name=f"{name}.battery")
        tg.create_task(self._watch(hw.flight.armed(), self._on_armed), name=f"{name}.armed")
        tg.create_task(self._watch(hw.flight.landed_state(), self._on_landed), name=f"{name}.landed")
        tg.create_task(self._watch(hw.flight.flight_mode(), self._on_mode), name=f"{name}.mode")
        tg.create_task(self._watch(hw.flight.health(), self._on_health), name=f"{name}.health")
        tg.create_task(self._watch(hw.flight.link_state(), self._on_drone_link), name=f"{name}.link")
        tg.create_task(self._watch(hw.dock.status(), self._on_dock_status), name=f"{name}.dock")
        tg.create_task(self._watch(hw.dock.weather(), self._on_weather), name=f"{name}.weather")
        tg.create_task(self._watch(hw.dock.link_state(), self._on_dock_link), name=f"{name}.dock_link")

    @staticmethod
    async def _watch(stream: AsyncIterator[Any], handler: Callable[[Any], Awaitable[None] | None]) -> None:
        async for value in stream:
            result = handler(value)
            if result is not None:
                await result

    async def _on_position(self, pos: Position) -> None:
        nest = self._nest
        before = nest.drone.position
        speed = nest.drone.ground_speed_mps
        now = nest.clock.monotonic()
        if before is not None and self._last_pos_mono is not None and now > self._last_pos_mono:
            moved = short_distance_m(
                GeoPoint(before.lat_deg, before.lon_deg), GeoPoint(pos.lat_deg, pos.lon_deg)
            )
            speed = moved / (now - self._last_pos_mono)
        self._last_pos_mono = now
        nest.drone = replace(nest.drone, position=pos, ground_speed_mps=speed)
        if nest.flight is not None and nest.state.flying:
            await nest.audit.record_track(
                TrackSample(
                    nest.flight.flight_id,
                    nest.clock.wall(),
                    pos.lat_deg,
                    pos.lon_deg,
                    pos.alt_amsl_m,
                    speed,
                    nest.drone.battery_pct if nest.drone.battery_pct is not None else -1.0,
                )
            )
        await nest.notify()

    async def _on_battery(self, battery: Any) -> None:
        nest = self._nest
        nest.drone = replace(nest.drone, battery_pct=battery.remaining_pct)
        nest.drain.add(nest.clock.monotonic(), battery.remaining_pct, nest.state.flying)
        self.faults.battery(battery)
        await nest.notify()

    async def _on_armed(self, armed: bool) -> None:
        self._nest.drone = replace(self._nest.drone, armed=armed)
        await self._drone_status_changed()

    async def _on_landed(self, landed: LandedState) -> None:
        self._nest.drone = replace(self._nest.drone, landed=landed)
        await self._drone_status_changed()

    async def _on_mode(self, mode: FlightMode) -> None:
        self._nest.drone = replace(self._nest.drone, mode=mode)
        await self._drone_status_changed()

    async def _on_health(self, health: Health) -> None:
        self._nest.drone = replace(self._nest.drone, health=health)
        self.faults.health(health)
        await self._drone_status_changed()

    async def _on_drone_link(self, link: Any) -> None:
        nest = self._nest
        was = nest.drone.link_up
        nest.drone = replace(nest.drone, link_up=link.connected)
        if was and not link.connected:
            self._link_lost_at = (nest.clock.monotonic(), nest.drone.mode, nest.drone_in_air())
            nest.event("link_lost", "drone link lost", silent_s=link.silent_s)
            await nest.apply(ns.LinkLost())
        elif link.connected and not was:
            nest.event("link_up", "drone link up")
            await nest.apply(ns.LinkUp())
            if self._link_lost_at is not None:
                lost_at, mode, in_air = self._link_lost_at
                self._link_lost_at = None
                self.faults.link_regained(nest.clock.monotonic() - lost_at, mode, in_air)
        await nest.notify()

    async def _drone_status_changed(self) -> None:
        nest = self._nest
        d = nest.drone
        if d.armed is None or d.landed is LandedState.UNKNOWN:
            await nest.notify()
            return
        status = ns.DroneStatus(
            armed=d.armed,
            in_air=d.landed in (LandedState.IN_AIR, LandedState.TAKING_OFF, LandedState.LANDING),
            ready_to_arm=d.health is not None and d.health.armable,
            mode=_MODE_TO_PHASE_MODE.get(d.mode, ns.FlightMode.UNKNOWN),
        )
        if status != self._last_drone_status:
            self._last_drone_status = status
            await nest.apply(status)
        await nest.notify()

    async def _on_dock_status(self, status: DockStatus) -> None:
        nest = self._nest
        nest.dock = replace(nest.dock, status=status)
        event = ns.DockStatus(
            cover=_COVER[status.cover],
            drone_in_dock=status.drone_in_dock,
            charging=status.charger is ChargerState.CHARGING,
        )
        if event != self._last_dock_status:
            self._last_dock_status = event
            await nest.apply(event)
        await nest.notify()

    async def _on_weather(self, weather: DockWeather) -> None:
        self._nest.dock = replace(self._nest.dock, weather=weather)
        self.faults.weather(weather)
        await self._nest.notify()

    async def _on_dock_link(self, link: Any) -> None:
        nest = self._nest
        was = nest.dock.link_up
        nest.dock = replace(nest.dock, link_up=link.connected)
        if was and not link.connected:
            nest.event("link_lost", "dock link lost", silent_s=link.silent_s)
            self._last_dock_status = None  # the first status after the link is back is taken in
            await nest.apply(ns.DockLinkLost())
        elif link.connected and not was:
            nest.event("link_up", "dock link up")
        await nest.notify()
