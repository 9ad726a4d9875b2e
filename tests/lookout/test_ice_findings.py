"""Ice found in a simulated drone's live video (10x) and placed on the road: hovering after a
diagonal leg (the camera faces the way the drone flew) and orbiting (it faces the centre).
The simulated city in snow and frost, an icy stretch on the avenue at 43.8548 near nest 3."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from adapters.mavsdk_flight import MavsdkFlightController
from dronectl.app.compose import compose_operations
from dronectl.automations.lookout import GroundFinding, Lookout
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.geo import GeoPoint, bearing_deg, destination, distance_m, distance_to_segment_m
from dronectl.domain.nest_state import NestPhase
from dronectl.video import open_video
from sitl.camera.scene import IceStretch
from sitl.environment import Precipitation
from tests.conftest import allocate_port_base
from tests.system.conftest import System, sim_speed, system, system_config

__all__ = ["sim_speed", "system", "system_config"]

NEST = 3
AVENUE_LAT = 43.8548
ICE_START = GeoPoint(AVENUE_LAT, 125.2960)
ICE_END = GeoPoint(AVENUE_LAT, 125.3030)
ALT_M = 50.0  # the picture covers 87 x 49 m of ground


@pytest.fixture
def nest_ids() -> list[int]:
    return [NEST]


@dataclass
class Watch:
    system: System
    lookout: Lookout


@pytest.fixture
async def watch(system: System, tmp_path: Path) -> AsyncIterator[Watch]:
    for sim in system.world.nests.values():
        sim.camera.video_port = allocate_port_base(span=1)
        sim.set_weather(
            road_temp_c=-6.0, air_temp_c=-4.0, precipitation_mmph=1.5, precipitation=float(Precipitation.SNOW)
        )
    system.world.scene.ice.append(
        IceStretch(ICE_START.lat_deg, ICE_START.lon_deg, ICE_END.lat_deg, ICE_END.lon_deg, width_m=10.0)
    )
    api = compose_operations(system.fleet)
    async with open_video(system.fleet, None) as hub:
        try:
            yield Watch(system, Lookout(api, hub, tmp_path / "snapshots", BlackIceConfig()))
        finally:
            await api.aclose()


async def first_finding(watch: Watch, timeout_s: float = 120.0) -> GroundFinding:
    async with asyncio.timeout(timeout_s), contextlib.aclosing(watch.lookout.ice_findings(NEST)) as findings:
        return await anext(findings)


def check_picture(finding: GroundFinding) -> None:
    image = cv2.imdecode(np.frombuffer(finding.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (720, 1280, 3)
    assert (finding.width_px, finding.height_px) == (1280, 720)


async def test_hovering_after_a_diagonal_leg_the_ice_is_placed_on_the_road(watch: Watch) -> None:
    nest = watch.system.nest(NEST)
    # 12 m south of the icy avenue, reached on a leg to the north-east: the ice lies ahead, at an angle
    hover = GeoPoint(AVENUE_LAT - 12.0 / 111_000.0, 125.2995)
    await nest.launch(hover, ALT_M)
    await watch.system.wait_phase(NEST, NestPhase.ON_STATION, 120.0)
    finding = await first_finding(watch)

    off_m = distance_to_segment_m(finding.position, ICE_START, ICE_END)
    assert off_m < 5.0, f"placed {off_m:.1f} m off the icy road"
    assert distance_m(finding.drone_position, hover) < 5.0
    assert finding.heading_deg == pytest.approx(bearing_deg(nest.home, hover), abs=10.0)
    assert finding.heading_measured  # the simulated PX4's yaw, from GLOBAL_POSITION_INT
    assert finding.drone_height_m == pytest.approx(ALT_M, abs=2.0)
    assert finding.frames == 2 and finding.coverage_pct > 0.0
    check_picture(finding)


async def test_orbiting_the_ice_is_placed_on_the_road(watch: Watch) -> None:
    nest = watch.system.nest(NEST)
    centre = GeoPoint(AVENUE_LAT, 125.2995)
    await nest.launch(destination(centre, 180.0, 30.0), ALT_M)
    await watch.system.wait_phase(NEST, NestPhase.ON_STATION, 120.0)
    await nest.orbit(centre, 30.0, ALT_M, 5.0)
    assert watch.lookout.orbit_centre(NEST) == centre
    finding = await first_finding(watch)

    off_m = distance_to_segment_m(finding.position, ICE_START, ICE_END)
    assert off_m < 8.0, f"placed {off_m:.1f} m off the icy road"
    assert distance_m(finding.drone_position, centre) == pytest.approx(30.0, abs=8.0)
    assert finding.heading_deg == pytest.approx(bearing_deg(finding.drone_position, centre), abs=1.0)
    assert finding.heading_measured
    check_picture(finding)


@dataclass(frozen=True)
class _NoHeading:
    heading_deg: float = float("nan")  # what MAVSDK reports for GLOBAL_POSITION_INT hdg 65535


async def test_without_heading_in_the_telemetry_the_orbit_gives_it(watch: Watch) -> None:
    """An autopilot that sends no heading: the lookout falls back to the bearing to the centre."""
    nest = watch.system.nest(NEST)
    flight = nest.hw.flight
    assert isinstance(flight, MavsdkFlightController)
    flight._heading_now = _NoHeading  # every position from now on: heading unknown
    centre = GeoPoint(AVENUE_LAT, 125.2995)
    await nest.launch(destination(centre, 180.0, 30.0), ALT_M)
    await watch.system.wait_phase(NEST, NestPhase.ON_STATION, 120.0)
    await nest.orbit(centre, 30.0, ALT_M, 5.0)
    position = nest.drone.position
    assert position is not None and position.heading_deg is None
    finding = await first_finding(watch)

    assert not finding.heading_measured
    off_m = distance_to_segment_m(finding.position, ICE_START, ICE_END)
    assert off_m < 8.0, f"placed {off_m:.1f} m off the icy road"
    assert finding.heading_deg == pytest.approx(bearing_deg(finding.drone_position, centre), abs=1.0)
