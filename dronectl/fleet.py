"""The fleet: every nest's controller, each supervised, under one TaskGroup.

A nest is attached (its adapters found on the link), then run; when attaching fails (nest
offline) or its controller crashes, the supervisor reports it and tries again with back-off,
while every other nest goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from dronectl.audit import AuditStore
from dronectl.clock import Clock
from dronectl.config import CityConfig
from dronectl.errors import CommandFailed, CommandRefused, DronectlError
from dronectl.geo import GeoPoint
from dronectl.nest_controller import FleetView, Flight, NestController, NestHardware
from dronectl.safety import SafetyPolicy
from dronectl.supervisor import Backoff, supervise

log = structlog.get_logger(__name__)

# How the fleet gets a nest's adapters: attach(system_id) -> (hardware, close)
Attach = Callable[[int], Awaitable[tuple[NestHardware, Callable[[], None]]]]


@dataclass(frozen=True)
class ReturnAllResult:
    returning: tuple[int, ...]
    failed: tuple[tuple[int, str], ...]


class Fleet:
    def __init__(
        self,
        config: CityConfig,
        audit: AuditStore,
        clock: Clock,
        attach: Attach,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.audit = audit
        self.clock = clock
        self.policy = SafetyPolicy.from_config(config)
        self.view = FleetView()
        self._attach = attach
        self._backoff = backoff or Backoff()
        self.controllers: dict[int, NestController] = {
            nest.id: NestController(nest, self.policy, audit, self.view, clock) for nest in config.nests
        }

    def nest(self, nest_id: int) -> NestController:
        try:
            return self.controllers[nest_id]
        except KeyError:
            known = ", ".join(str(n) for n in self.controllers)
            raise KeyError(f"no nest {nest_id} (nests: {known})") from None

    async def run(self) -> None:
        """Run every nest until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for nest_id, controller in self.controllers.items():
                name = f"nest[{nest_id:02d}]"
                runner = self._nest_runner(controller)
                tg.create_task(supervise(name, runner, self.clock, self._backoff), name=name)

    def _nest_runner(self, controller: NestController) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            resume = await self._open_flight(controller.nest_id)
            hardware, close = await self._attach(controller.config.mav_system_id)
            try:
                await controller.run(hardware, resume)
            finally:
                close()

        return run

    async def _open_flight(self, nest_id: int) -> Flight | None:
        rows = await self.audit.open_flights(nest_id=nest_id)
        if not rows:
            return None
        row = rows[-1]
        target = (
            GeoPoint(row["target_lat_deg"], row["target_lon_deg"])
            if row["target_lat_deg"] is not None and row["target_lon_deg"] is not None
            else None
        )
        alt = row["target_alt_m"]
        if alt is None:
            alt = self.config.safety.default_cruise_alt_m
        return Flight(row["flight_id"], target, alt, self.clock.monotonic(), row["command_id"])

    async def return_all(self, reason: str = "return all") -> ReturnAllResult:
        """Bring every flying drone home; nests on the ground are left alone."""
        returning: list[int] = []
        failed: list[tuple[int, str]] = []
        for nest_id, controller in self.controllers.items():
            if not controller.state.flying:
                continue
            try:
                await controller.return_home(reason)
                returning.append(nest_id)
            except (CommandRefused, CommandFailed, DronectlError) as exc:
                failed.append((nest_id, str(exc)))
        return ReturnAllResult(tuple(returning), tuple(failed))
