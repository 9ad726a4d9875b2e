"""The dronectl service: audit store, hardware, fleet, all under one root TaskGroup.

Shutdown runs in a fixed order: stop taking commands, cancel the fleet's tasks (drones keep
flying under their autopilot's own failsafes), close the hardware links, flush the audit store.
MAVSDK's blocking calls run on a bounded executor (``adapters.blocking``), installed as the loop's
default: a call stuck on a vehicle that is gone is logged and abandoned when the loop closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog

from adapters import blocking
from adapters.fleet import FleetHardware
from adapters.mavlink.keystore import KeyStore
from dronectl.audit import AuditStore, CommandOutcome, Durability, OutcomeRecord
from dronectl.domain.clock import Clock, SystemClock
from dronectl.domain.config import CityConfig
from dronectl.nest.controller import NestHardware
from dronectl.nest.fleet import Fleet, NestGate
from dronectl.nest.supervisor import Backoff

log = structlog.get_logger(__name__)

SERVICE_BACKOFF = Backoff(first_s=1.0, max_s=15.0)


@contextlib.asynccontextmanager
async def open_service(
    config: CityConfig,
    audit_path: Path | str,  # a SQLite file or a postgresql:// URL
    clock: Clock | None = None,
    backoff: Backoff = SERVICE_BACKOFF,
    attach_timeout_s: float = 15.0,
    heartbeat_interval_s: float = 1.0,
    audit_durability: Durability = Durability.FULL,
    audit_spool: Path | None = None,  # PostgreSQL: where flight facts wait while it is unreachable
    gate: NestGate | None = None,  # several instances: control only the nests this one holds
    keys_dir: Path | None = None,
    provision_keys: bool = False,
) -> AsyncIterator[Fleet]:
    """The fleet, running, until the context exits. ``keys_dir``: the nests' MAVLink signing keys;
    ``provision_keys``: give a nest without a key one at first contact (the built-in simulator)."""
    clock = clock or SystemClock()
    # MAVSDK's blocking calls run on the loop's default executor: make it one that never holds up
    # the loop's close or the interpreter's exit on a call that does not return.
    blocking.install()
    endpoints = {nest.id: config.mavlink_url(nest) for nest in config.nests}
    # MAVLink first: our heartbeats go out before anything else is opened, so an airborne drone
    # hears its ground station again well inside its data-link-loss timeout (PX4's COM_DL_LOSS_T);
    # at the end the links still close before the audit store is flushed (the order above)
    hardware = FleetHardware(
        endpoints,
        heartbeat_interval_s=heartbeat_interval_s,
        keys=KeyStore(keys_dir) if keys_dir is not None else None,
        signing={nest.id: nest.mavlink_signing for nest in config.nests},
        provision=provision_keys,
        system_ids={nest.id: nest.mav_system_id for nest in config.nests},
        own_network={nest.id for nest in config.nests if nest.own_mavlink_network},
        dock_endpoints={nest.id: url for nest in config.nests if (url := config.dock_url(nest)) is not None},
    )
    links = contextlib.AsyncExitStack()
    await links.enter_async_context(hardware)
    async with (
        links,
        await AuditStore.open(audit_path, durability=audit_durability, spool_path=audit_spool) as audit,
    ):

        async def attach(nest_id: int) -> tuple[NestHardware, Callable[[], None]]:
            adapters = await hardware.attach(nest_id, attach_timeout_s)

            nest_hw = NestHardware(
                adapters.flight, adapters.dock, adapters.payload, adapters.camera, adapters.link_security
            )
            return nest_hw, adapters.close

        fleet = Fleet(config, audit, clock, attach, backoff, gate=gate)
        frozen = freeze_heap()
        task = asyncio.create_task(fleet.run(), name="fleet")
        log.info("service.started", nests=len(config.nests), audit=audit.where, gc_frozen=frozen)
        try:
            if gate is None:  # one instance: what is open was cut off by its own last run (with
                # several, a nest's new owner closes its commands when it gains it: Fleet)
                await close_interrupted_commands(audit, clock, [n.id for n in config.nests])
            yield fleet
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await links.aclose()  # the links, before the audit store closes
            gc.unfreeze()  # what the service held is collectable again (a process may run others)
            log.info("service.stopped")


def freeze_heap() -> int:
    """Collect, then move every object alive now (the modules, their classes and schemas, the
    configuration, the links) into the collector's permanent generation (``gc.freeze``): a full
    collection no longer walks them. Each one stopped the event loop for ~100 ms at 64 airborne
    nests (issue 15's bench, GC pauses); the count of objects frozen is returned."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


INTERRUPTED = "interrupted"


async def close_interrupted_commands(audit: AuditStore, clock: Clock, nest_ids: list[int]) -> list[str]:
    """Close the commands for ``nest_ids`` the previous run left without a final outcome (it
    crashed, or was killed, while carrying them out): each gets a final ``failed`` outcome with
    the code ``interrupted`` and the reason. Incidents are left open: dispatch picks them up."""
    closed: list[str] = []
    commands = [c for nest_id in nest_ids for c in await audit.open_commands(nest_id)]
    for command in sorted(commands, key=lambda c: c["at_unix_s"]):
        last = command["outcomes"][-1]["outcome"] if command["outcomes"] else "received"
        reason = (
            f"interrupted: the service stopped while the command was {last} (crash or kill); "
            "closed at the next start"
        )
        await audit.record_outcome(
            OutcomeRecord(command["command_id"], clock.wall(), CommandOutcome.FAILED, INTERRUPTED, reason)
        )
        closed.append(command["command_id"])
    if closed:
        log.warning("service.commands_interrupted", count=len(closed), commands=closed[:20])
    return closed
