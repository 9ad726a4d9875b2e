"""The fleet: every nest's controller, each supervised, under one TaskGroup.

A nest is attached (its adapters found on the link), then run; when attaching fails (nest
offline) or its controller crashes, the supervisor reports it and tries again with back-off,
while every other nest goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from dronectl.audit import AuditStore, CommandOutcome, OutcomeRecord
from dronectl.domain.clock import Clock
from dronectl.domain.config import CityConfig
from dronectl.domain.errors import CommandFailed, CommandRefused, DronectlError
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import OtherFlight, SafetyPolicy
from dronectl.nest.controller import Flight, NestController, NestHardware
from dronectl.nest.supervisor import Backoff, supervise

log = structlog.get_logger(__name__)

# How the fleet gets a nest's adapters: attach(nest_id) -> (hardware, close)
Attach = Callable[[int], Awaitable[tuple[NestHardware, Callable[[], None]]]]


class FleetView:
    """What a nest needs to know of the others (for separation)."""

    def __init__(self) -> None:
        self._controllers: dict[int, NestController] = {}

    def add(self, controller: NestController) -> None:
        self._controllers[controller.nest_id] = controller

    def others(self, nest_id: int) -> list[OtherFlight]:
        out = []
        for other in self._controllers.values():
            if other.nest_id == nest_id or not other.state.flying:
                continue
            pos = other.drone.position
            where = GeoPoint(pos.lat_deg, pos.lon_deg) if pos is not None else other.home
            target = other.flight.target if other.flight is not None else None
            out.append(OtherFlight(other.nest_id, where, target))
        return out

    def controllers(self) -> list[NestController]:
        return list(self._controllers.values())


@dataclass(frozen=True)
class ReturnAllResult:
    returning: tuple[int, ...]
    failed: tuple[tuple[int, str], ...]


class NestGate(Protocol):
    """Whether this instance may control a nest now (several instances: dronectl/nest/leases.py)."""

    def held(self, nest_id: int) -> bool: ...

    async def wait_held(self, nest_id: int) -> None: ...

    async def wait_lost(self, nest_id: int) -> None: ...


class Fleet:
    def __init__(
        self,
        config: CityConfig,
        audit: AuditStore,
        clock: Clock,
        attach: Attach,
        backoff: Backoff | None = None,
        gate: NestGate | None = None,
    ) -> None:
        self.config = config
        self.audit = audit
        self.clock = clock
        self.policy = SafetyPolicy.from_config(config)
        self.view = FleetView()
        self._attach = attach
        self._backoff = backoff or Backoff()
        self._gate = gate
        self.controllers: dict[int, NestController] = {
            nest.id: NestController(nest, self.policy, audit, self.view, clock) for nest in config.nests
        }
        for controller in self.controllers.values():
            self.view.add(controller)

    def nest(self, nest_id: int) -> NestController:
        try:
            return self.controllers[nest_id]
        except KeyError:
            known = ", ".join(str(n) for n in self.controllers)
            raise KeyError(f"no nest {nest_id} (nests: {known})") from None

    def controls(self, nest_id: int) -> bool:
        """Whether this instance controls the nest now (always, with one instance): the others'
        nests are not attached here and look offline."""
        return self._gate is None or self._gate.held(nest_id)

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
            hardware, close = await self._attach(controller.nest_id)
            try:
                await controller.run(hardware, resume)
            finally:
                close()

        gate = self._gate
        if gate is None:
            return run

        async def gated() -> None:
            """Control the nest only while this instance holds it; re-attach (as after a kill -9)
            each time it is gained again: the flight is picked up from the shared store."""
            nest_id = controller.nest_id
            while True:
                await gate.wait_held(nest_id)
                log.info("fleet.nest_gained", nest=nest_id)
                await self._interrupted(nest_id)
                async with asyncio.TaskGroup() as tg:
                    controlling = tg.create_task(run(), name=f"nest[{nest_id:02d}].control")
                    await gate.wait_lost(nest_id)
                    controlling.cancel()
                log.warning("fleet.nest_released", nest=nest_id)

        return gated

    async def _interrupted(self, nest_id: int) -> None:
        """The nest's commands left without a final outcome by the instance that held it before
        (killed, paused, partitioned): recorded as failed, ``interrupted``, with the reason."""
        for row in await self.audit.open_commands(nest_id):
            reason = (
                f"interrupted: the instance running it lost nest {nest_id} (stopped, killed or cut"
                " off); the nest is controlled again by another, the drone followed where it is"
            )
            await self.audit.record_outcome(
                OutcomeRecord(
                    row["command_id"], self.clock.wall(), CommandOutcome.FAILED, "interrupted", reason
                )
            )
            log.warning("fleet.command_interrupted", nest=nest_id, id=row["command_id"], method=row["method"])
            # recorded first, then told: its sender (and every operator) sees it on the nest's events
            self.controllers[nest_id].event(
                "command_interrupted",
                f"{row['method']} {row['command_id']} by {row['actor_id']}: {reason}",
                command_id=row["command_id"],
                method=row["method"],
                actor_id=row["actor_id"],
                code="interrupted",
            )

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
