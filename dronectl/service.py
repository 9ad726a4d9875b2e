"""The dronectl service: audit store, hardware, fleet, all under one root TaskGroup.

Shutdown runs in a fixed order: stop taking commands, cancel the fleet's tasks (drones keep
flying under their autopilot's own failsafes), close the hardware links, flush the audit store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog

from adapters.fleet import FleetHardware
from dronectl.audit import AuditStore, Durability
from dronectl.clock import Clock, SystemClock
from dronectl.config import CityConfig
from dronectl.fleet import Fleet
from dronectl.nest_controller import NestHardware
from dronectl.supervisor import Backoff

log = structlog.get_logger(__name__)

SERVICE_BACKOFF = Backoff(first_s=1.0, max_s=15.0)


@contextlib.asynccontextmanager
async def open_service(
    config: CityConfig,
    audit_path: Path,
    clock: Clock | None = None,
    backoff: Backoff = SERVICE_BACKOFF,
    attach_timeout_s: float = 15.0,
    heartbeat_interval_s: float = 1.0,
    audit_durability: Durability = Durability.FULL,
) -> AsyncIterator[Fleet]:
    """The fleet, running, until the context exits."""
    clock = clock or SystemClock()
    endpoints = {nest.mav_system_id: config.mavlink_url(nest) for nest in config.nests}
    async with (
        await AuditStore.open(audit_path, durability=audit_durability) as audit,
        FleetHardware(endpoints, heartbeat_interval_s=heartbeat_interval_s) as hardware,
    ):

        async def attach(system_id: int) -> tuple[NestHardware, Callable[[], None]]:
            adapters = await hardware.attach(system_id, attach_timeout_s)

            nest_hw = NestHardware(adapters.flight, adapters.dock, adapters.payload, adapters.camera)
            return nest_hw, adapters.close

        fleet = Fleet(config, audit, clock, attach, backoff)
        task = asyncio.create_task(fleet.run(), name="fleet")
        log.info("service.started", nests=len(config.nests), audit=str(audit_path))
        try:
            yield fleet
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.info("service.stopped")
