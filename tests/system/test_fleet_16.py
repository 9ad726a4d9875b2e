"""All 16 nests at once: every drone airborne together, then "everyone home" lands each one in
its own dock."""

from __future__ import annotations

import asyncio

import pytest

from dronectl.domain.config import load_config
from dronectl.domain.geo import GeoPoint, destination, distance_m
from dronectl.domain.nest_state import NestPhase
from tests.system.conftest import System

ALL_NESTS = [n.id for n in load_config().nests]
STATION_M = 150.0
ALT_M = 30.0


@pytest.fixture
def nest_ids() -> list[int]:
    return ALL_NESTS


@pytest.fixture
def sim_speed() -> float:
    return 5.0  # 16 simulated nests and the service share one process here


async def test_sixteen_drones_airborne_at_once_then_all_return(system: System) -> None:
    assert len(ALL_NESTS) == 16
    fleet = system.fleet
    for nest_id in ALL_NESTS:
        nest = system.nest(nest_id)
        await nest.launch(destination(nest.home, 0.0, STATION_M), ALT_M, command_id=f"fleet-{nest_id}")

    await asyncio.gather(*(system.wait_phase(n, NestPhase.ON_STATION, timeout_s=90) for n in ALL_NESTS))
    airborne = [n for n in ALL_NESTS if system.world.nest(n).autopilot.airborne()]
    assert airborne == ALL_NESTS
    for nest_id in ALL_NESTS:
        pos = system.nest(nest_id).drone.position
        assert pos is not None and pos.alt_rel_m > ALT_M * 0.8

    result = await fleet.return_all("end of exercise")
    assert sorted(result.returning) == ALL_NESTS and not result.failed

    await asyncio.gather(*(system.wait_phase(n, NestPhase.CHARGING, timeout_s=120) for n in ALL_NESTS))
    for nest_id in ALL_NESTS:
        sim, nest = system.world.nest(nest_id), system.nest(nest_id)
        assert sim.on_pad() and not sim.autopilot.armed and not sim.cover_open()
        pad = sim.autopilot.position
        assert distance_m(GeoPoint(pad.lat_deg, pad.lon_deg), nest.home) < 2.0
        assert nest.flight is None
