"""System fixtures: the simulator and the whole service (real MAVSDK, real pymavlink, real UDP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dronectl.domain.clock import ScaledClock
from dronectl.domain.config import CityConfig, MavlinkConfig, load_config
from dronectl.domain.nest_state import NestPhase
from dronectl.nest.controller import NestController
from dronectl.nest.fleet import Fleet
from dronectl.nest.service import open_service
from dronectl.nest.supervisor import Backoff
from sitl.world import SimWorld, make_sites
from tests.pinned import QUIET_UNIX_S

SIM_SPEED = 10.0


@dataclass
class System:
    config: CityConfig
    world: SimWorld
    fleet: Fleet
    audit_path: Path
    speed: float

    def nest(self, nest_id: int) -> NestController:
        return self.fleet.nest(nest_id)

    async def wait_phase(self, nest_id: int, phase: NestPhase, timeout_s: float = 60.0) -> None:
        controller = self.nest(nest_id)
        await controller.wait_for(lambda: controller.state.phase is phase, timeout_s, f"phase {phase.value}")

    async def wait(self, nest_id: int, predicate: Callable[[NestController], bool], timeout_s: float) -> None:
        controller = self.nest(nest_id)
        await controller.wait_for(lambda: predicate(controller), timeout_s, "condition")


def system_config(port_base: tuple[int, int], nest_ids: list[int]) -> CityConfig:
    sim_base, client_base = port_base
    base = load_config()
    return base.model_copy(
        update={
            "nests": [n for n in base.nests if n.id in nest_ids],
            "mavlink": MavlinkConfig(host="127.0.0.1", client_port_base=client_base, sim_port_base=sim_base),
        }
    )


@pytest.fixture
def nest_ids() -> list[int]:
    return [3]


@pytest.fixture
def sim_speed() -> float:
    """Simulated seconds per real second; a module with many nests in flight lowers it so the one
    process running both the simulator and the service keeps up."""
    return SIM_SPEED


@pytest.fixture
async def system(
    port_base: tuple[int, int], nest_ids: list[int], sim_speed: float, tmp_path: Path
) -> AsyncIterator[System]:
    config = system_config(port_base, nest_ids)
    sites = make_sites(config)
    audit_path = tmp_path / "audit.sqlite3"
    async with (
        SimWorld(sites, speed=sim_speed) as world,
        open_service(
            config,
            audit_path,
            clock=ScaledClock(sim_speed, calendar_start=QUIET_UNIX_S),  # no schedule open, whatever the hour
            backoff=Backoff(first_s=0.2, max_s=2.0),
            heartbeat_interval_s=1.0 / sim_speed,
        ) as fleet,
    ):
        system = System(config, world, fleet, audit_path, sim_speed)
        for nest_id in nest_ids:
            await system.wait(nest_id, lambda c: c.state.phase in (NestPhase.READY, NestPhase.CHARGING), 60.0)
            # and what the launch checks need: without them a launch is refused ("weather unknown")
            await system.wait(
                nest_id, lambda c: c.dock.weather is not None and c.drone.battery_pct is not None, 10.0
            )
        yield system
