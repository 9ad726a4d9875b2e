"""One nest under control: its hardware adapters, its state machine, its operations and watches.

The controller turns intentions ("launch to this point", "come home") into acknowledged
actions on the nest's adapters (``adapters.protocols``), and keeps the nest's phase
(``dronectl.domain.nest_state``) true to what the hardware reports. Safety checks
(``dronectl.domain.safety``) run before anything is sent; a refusal lists every reason.

:class:`NestController` is the nest's state (``core.NestCore``: telemetry, state machine, events,
flights, the snapshot for the safety checks) with its parts put together: the telemetry watchers
(``telemetry``), the flight operations (``flight_ops``), the in-flight guard (``guard``) and the
payload (``payload``).

Tasks, all owned by :meth:`NestController.run`'s TaskGroup (named ``nest[07].<what>``):
telemetry watchers (drone, dock), the in-flight guard (battery reserve, geofence), the way back
to ready after a flight (``recovery``: cover, charger, mode, dock faults), and the operation in
progress (at most one; a newer command that supersedes it cancels it).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from adapters.protocols import LightPattern
from dronectl.audit import AuditStore
from dronectl.domain import nest_state as ns
from dronectl.domain.clock import Clock
from dronectl.domain.config import NestConfig
from dronectl.domain.errors import CommandRefused
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import Blocker, BlockerCode, SafetyPolicy
from dronectl.nest.core import NestCore
from dronectl.nest.flight_ops import ARRIVAL_RADIUS_M, FlightOperations
from dronectl.nest.guard import InFlightGuard
from dronectl.nest.payload import PayloadControl
from dronectl.nest.recovery import BackToReady
from dronectl.nest.speech_clips import SpeechClips
from dronectl.nest.telemetry import TelemetryWatch
from dronectl.nest.types import (  # re-exported: the rest of the service imports them from here
    DockTelemetry,
    DroneTelemetry,
    Flight,
    Listener,
    NestEvent,
    NestHardware,
    OtherFlights,
)

__all__ = [
    "ARRIVAL_RADIUS_M",
    "DockTelemetry",
    "DroneTelemetry",
    "Flight",
    "Listener",
    "NestController",
    "NestEvent",
    "NestHardware",
    "OtherFlights",
    "SpeechClips",
]


class NestController(NestCore):
    def __init__(
        self,
        config: NestConfig,
        policy: SafetyPolicy,
        audit: AuditStore,
        fleet: OtherFlights,
        clock: Clock,
    ) -> None:
        super().__init__(config, policy, audit, fleet, clock)
        self._telemetry = TelemetryWatch(self)
        self._ops = FlightOperations(self)
        self._guard = InFlightGuard(self, self.return_home)
        self._payload = PayloadControl(self)
        self._recovery = BackToReady(self, self._ops)

    # --- running ---------------------------------------------------------------------------

    async def run(self, hardware: NestHardware, resume_flight: Flight | None = None) -> None:
        """Watch and guard the nest through ``hardware`` until cancelled.

        ``resume_flight``: a flight the audit store says was open when the controller last
        stopped; the controller re-attaches to it and never launches it again.
        """
        if resume_flight is not None and self.flight is None:
            self.flight = resume_flight
            self.log.info("nest.flight_resumed", flight=resume_flight.flight_id)
        self._hw = hardware
        self._ops.attached()  # the cruise speed is set on the drone at the first launch after (re)attaching
        self._payload.attached()  # a payload that was away may have lost its clips
        try:
            await self._run()
        finally:
            await self._ops.stop()
            self._hw = None
            self._tg = None
            self.drone = replace(self.drone, link_up=False)
            self.dock = replace(self.dock, link_up=False)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            name = f"nest[{self.nest_id:02d}]"
            self._telemetry.start(tg, self.hw, name)
            tg.create_task(self._guard.run(), name=f"{name}.guard")
            tg.create_task(self._recovery.run(), name=f"{name}.recovery")

    # --- operations ------------------------------------------------------------------------

    async def launch(
        self,
        target: GeoPoint,
        alt_above_home_m: float,
        command_id: str | None = None,
        speed_mps: float | None = None,
    ) -> asyncio.Task[None]:
        """Check, then start the launch; returns the task that flies it to station.

        Raises CommandRefused (nothing sent) when any blocker holds.
        """
        return await self._ops.launch(target, alt_above_home_m, command_id, speed_mps)

    async def goto(
        self, target: GeoPoint, alt_above_home_m: float, speed_mps: float | None = None
    ) -> asyncio.Task[None]:
        return await self._ops.goto(target, alt_above_home_m, speed_mps)

    async def orbit(
        self, centre: GeoPoint, radius_m: float, alt_above_home_m: float, speed_mps: float = 5.0
    ) -> None:
        await self._ops.orbit(centre, radius_m, alt_above_home_m, speed_mps)

    async def hold(self) -> None:
        await self._ops.hold()

    async def return_home(self, reason: str = "operator") -> None:
        await self._ops.return_home(reason)

    async def land(self) -> None:
        await self._ops.land()

    async def abort(self, reason: str = "operator abort") -> None:
        """Stop a launch on the ground; in the air, come home."""
        await self._ops.abort(reason)

    async def set_maintenance(self, on: bool, reason: str = "") -> None:
        t = await self.apply(ns.MaintenanceSet(on, reason))
        if not t.accepted:
            raise CommandRefused("maintenance", [Blocker(BlockerCode.NEST_BUSY, t.cause)])

    # --- payload ---------------------------------------------------------------------------

    async def say(self, text: str, lang: str = "zh", volume_pct: int | None = None, repeat: int = 0) -> None:
        """Speech for the loudspeaker (``payload.PayloadControl.say``)."""
        await self._payload.say(text, lang, volume_pct, repeat)

    async def stop_speaker(self) -> None:
        await self._payload.stop_speaker()

    async def set_light(self, pattern: LightPattern, brightness_pct: int = 100) -> None:
        await self._payload.set_light(pattern, brightness_pct)
