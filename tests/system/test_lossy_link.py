"""A lossy link costs no flight (issue 19): with 30 % of the datagrams lost both ways (the
simulator's packet-loss fault) a launch, a go-to and a return succeed and the nest ends ready. Every
command is idempotent and sent again through lost answers, the dock's and drone's state checked
(``NestCore.resilient``). Run slower than the other system tests: at a high simulator speed lost
heartbeats and answers are hidden by the many that arrive in the same real second."""

from __future__ import annotations

import asyncio

import pytest

from dronectl.domain.geo import destination
from dronectl.domain.nest_state import NestPhase
from sitl.environment import FaultKind
from tests.system.conftest import System

ON_THE_GROUND_READY = (NestPhase.READY, NestPhase.CHARGING)


@pytest.fixture
def sim_speed() -> float:
    return 2.0


async def test_under_30_percent_packet_loss_launch_goto_and_return_succeed_and_the_nest_ends_ready(
    system: System,
) -> None:
    nest = system.nest(3)
    sim = system.world.nest(3)
    sim.inject(FaultKind.PACKET_LOSS, 30.0)
    launch = await nest.launch(destination(nest.home, 45.0, 150.0), 40.0, command_id="lossy-launch")
    await asyncio.wait_for(launch, 300)
    assert nest.state.phase is NestPhase.ON_STATION
    goto = await nest.goto(destination(nest.home, 135.0, 150.0), 40.0)
    await asyncio.wait_for(goto, 300)
    assert nest.state.phase is NestPhase.ON_STATION
    await nest.return_home("test: lossy link")
    await system.wait(3, lambda c: c.state.phase in ON_THE_GROUND_READY, 300)
    assert sim.on_pad() and not sim.autopilot.armed and not sim.cover_open()
