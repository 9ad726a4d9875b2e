"""PostgreSQL goes away mid-flight (issue 14): the service does not crash and keeps flying the
drone home, new commands are refused with a clear error (nothing could be audited), what happened
meanwhile waits in the local spool and reaches the database when it is back; then commands are
taken again. Real PostgreSQL, the simulator, the whole nest stack."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dronectl.app.compose import compose_operations
from dronectl.domain.clock import ScaledClock
from dronectl.domain.geo import destination
from dronectl.domain.nest_state import NestPhase
from dronectl.nest.service import open_service
from dronectl.nest.supervisor import Backoff
from dronectl.operations.models import ErrorCode, Method, NoArgs, ProgressState, Role
from dronectl.operations.port import Command, CommandUpdate
from sitl.world import SimWorld, make_sites
from tests.pg import allow_connections, fresh_database, query, terminate_connections
from tests.pinned import QUIET_UNIX_S
from tests.system.conftest import SIM_SPEED, System, system_config

_ids = itertools.count(1)


@pytest.fixture
async def pg_system(port_base: tuple[int, int], tmp_path: Path) -> AsyncIterator[tuple[System, str]]:
    config = system_config(port_base, [3])
    with fresh_database() as url:
        async with (
            SimWorld(make_sites(config), speed=SIM_SPEED) as world,
            open_service(
                config,
                url,
                clock=ScaledClock(SIM_SPEED, calendar_start=QUIET_UNIX_S),
                backoff=Backoff(first_s=0.2, max_s=2.0),
                heartbeat_interval_s=1.0 / SIM_SPEED,
                audit_spool=tmp_path / "spool.sqlite3",
            ) as fleet,
        ):
            system = System(config, world, fleet, tmp_path / "unused", SIM_SPEED)
            await system.wait(3, lambda c: c.state.phase in (NestPhase.READY, NestPhase.CHARGING), 60.0)
            await system.wait(
                3, lambda c: c.dock.weather is not None and c.drone.battery_pct is not None, 10.0
            )
            yield system, url


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_losing_postgresql_mid_flight(pg_system: tuple[System, str]) -> None:
    system, url = pg_system
    nest = system.nest(3)
    api = compose_operations(system.fleet)

    async def hold() -> list[CommandUpdate]:
        now = system.fleet.clock.wall()
        command = Command(
            f"outage-{next(_ids)}", Method.HOLD, 3, NoArgs(), "officer-7", Role.PILOT, now, now + 30, now
        )
        return [u async for u in api.execute(command)]

    try:
        await nest.launch(destination(nest.home, 45.0, 600.0), 50.0, command_id="outage-launch")
        await system.wait_phase(3, NestPhase.ON_STATION, timeout_s=120)
        flight_id = nest.flight.flight_id if nest.flight else None
        assert flight_id

        allow_connections(url, False)
        terminate_connections(url)
        try:
            [refused] = await hold()
            assert refused.state is ProgressState.FAILED and refused.error is ErrorCode.UNAVAILABLE
            assert "audit" in refused.message and "not executed" in refused.message
            # the drone is flown home all the same; every step lands in the spool, the nest never fails
            await nest.return_home("brought home during the database outage")
            await system.wait_phase(3, NestPhase.CHARGING, timeout_s=180)
            assert system.fleet.audit.spooled > 0
            assert system.nest(3) is nest  # the same controller all along: nothing crashed or restarted
        finally:
            allow_connections(url, True)

        await wait_until(lambda: system.fleet.audit.spooled == 0, 30)
        [(outcome,)] = query(url, f"SELECT outcome FROM flight_ends WHERE flight_id = '{flight_id}'")
        assert outcome == "completed"
        phases = [r[0] for r in query(url, "SELECT to_state FROM transitions WHERE nest_id = 3 ORDER BY seq")]
        for phase in ("on_station", "returning", "post_flight", "charging"):
            assert phase in phases, (phase, phases)
        assert query(url, "SELECT count(*) FROM commands WHERE command_id LIKE 'outage-%'") == [(0,)]
        # and commands are judged again (refused here for what they are: the nest is on the ground)
        [again] = await hold()
        assert again.error is not ErrorCode.UNAVAILABLE
        assert query(url, "SELECT count(*) FROM commands WHERE command_id LIKE 'outage-%'") == [(1,)]
    finally:
        with contextlib.suppress(Exception):
            await api.aclose()
