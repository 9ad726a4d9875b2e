"""Fixtures for the adapter tests: a router with a fake nest over loopback UDP, and the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from adapters.mavlink.command import RetryPolicy
from adapters.mavlink.endpoint import NestEndpoint
from adapters.mavlink.router import Router
from sitl.nest import SimNest
from sitl.world import SimWorld, make_sites
from tests.adapters.fake_peer import FakeNest

NEST_SYSID = 7
FAST = RetryPolicy(ack_timeout_s=0.2, attempts=3, progress_timeout_s=0.5, max_duration_s=5.0)


@dataclass
class Loopback:
    router: Router
    endpoint: NestEndpoint
    nest: FakeNest


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    """A router (fast heartbeat and watchdog) with one endpoint, and a fake nest sending to it."""
    async with Router(heartbeat_interval_s=0.2, watchdog_timeout_s=0.6) as router:
        endpoint = await router.add_nest(NEST_SYSID, ("127.0.0.1", 0))
        address = endpoint.local_address
        assert address is not None
        nest = await FakeNest(NEST_SYSID, address).open()
        try:
            yield Loopback(router, endpoint, nest)
        finally:
            nest.close()


@dataclass
class SimulatedNest:
    """The adapters' router on one nest of the simulator (``sitl.world.SimWorld``)."""

    world: SimWorld
    nest: SimNest
    router: Router

    @property
    def system_id(self) -> int:
        return self.nest.site.system_id


SIM_SPEED = 10.0  # the dock's 18 s cover travel takes 1.8 s


@pytest.fixture
async def simulated(port_base: tuple[int, int]) -> AsyncIterator[SimulatedNest]:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    async with SimWorld(sites, speed=SIM_SPEED) as world, Router() as router:
        nest = world.nests[sites[0].nest_id]
        remote = nest.site.remote
        assert remote is not None
        await router.add_nest(nest.site.system_id, ("127.0.0.1", remote[1]))
        yield SimulatedNest(world, nest, router)
