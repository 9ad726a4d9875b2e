"""What any ``FlightController`` must do, run with ``MavsdkFlightController`` against the simulated
PX4 (which answers as the recording in ../shared/px4-reference does)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from adapters.errors import CommandRejected, LinkLost
from adapters.mavlink.dock import MavlinkDock
from adapters.mavlink.ids import DOCK_COMPID
from adapters.mavlink.mavsdk_bridge import MavsdkBridge
from adapters.mavlink.router import Router
from adapters.mavsdk_flight import MavsdkFlightController, _heading_or_none
from adapters.protocols import (
    AltitudeReference,
    CommandResult,
    FlightController,
    FlightMode,
    GeoTarget,
    LandedState,
)
from sitl.environment import FaultKind
from sitl.nest import SimNest
from sitl.world import SimWorld, make_sites

SPEED = 10.0
T = TypeVar("T")


@pytest.fixture
async def drone(port_base: tuple[int, int]) -> AsyncIterator[tuple[MavsdkFlightController, SimNest, Router]]:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    # Our heartbeat at the simulator's speed, as the service sends it: PX4 counts data-link loss in
    # simulated seconds (COM_DL_LOSS_T 10 s is 1 s here), and a 1 s heartbeat left no margin under load.
    async with (
        SimWorld(sites, speed=SPEED) as world,
        Router(MavsdkBridge(), heartbeat_interval_s=1.0 / SPEED) as router,
    ):
        nest = next(iter(world.nests.values()))
        assert nest.site.remote is not None
        await router.add_nest(nest.site.system_id, ("127.0.0.1", nest.site.remote[1]))
        bridge = router.bridge
        assert isinstance(bridge, MavsdkBridge)
        flight = await MavsdkFlightController.attach(router, bridge, nest.site.system_id)
        await flight._link.watchdog.state.wait_for(lambda s: s.connected, 5.0)
        yield flight, nest, router


async def first(stream: AsyncIterator[T], predicate: Callable[[T], bool], timeout_s: float) -> T:
    async with asyncio.timeout(timeout_s):
        async for value in stream:
            if predicate(value):
                return value
    raise AssertionError("stream ended")


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    north = math.radians(lat2 - lat1) * 6_371_000
    east = math.radians(lon2 - lon1) * 6_371_000 * math.cos(math.radians(lat1))
    return math.hypot(north, east)


async def test_is_a_flight_controller(drone: tuple[MavsdkFlightController, SimNest, Router]) -> None:
    _: FlightController = drone[0]


async def test_flight_out_and_home(drone: tuple[MavsdkFlightController, SimNest, Router]) -> None:
    flight, nest, router = drone
    dock = MavlinkDock(router.component(nest.site.system_id, DOCK_COMPID, "dock"))
    await router.component(nest.site.system_id, DOCK_COMPID, "dock").watchdog.state.wait_for(
        lambda s: s.connected, 5.0
    )
    await dock.open_cover()  # the drone cannot climb out of a closed dock
    await flight.arm()  # retried while the simulated PX4 finishes its pre-arm checks
    await flight.takeoff(20.0)
    await first(flight.position(), lambda p: p.alt_rel_m > 18.0, 60.0 / SPEED * 3)
    home = nest.site.home
    lat = home.lat_deg + 120.0 / 111_320.0  # 120 m north
    await flight.goto(GeoTarget(lat, home.lon_deg, 30.0, AltitudeReference.RELATIVE))
    at = await first(
        flight.position(),
        lambda p: metres_between(p.lat_deg, p.lon_deg, lat, home.lon_deg) < 5.0,
        60.0 / SPEED * 3,
    )
    assert at.alt_rel_m == pytest.approx(30.0, abs=3.0)
    # (goto is DO_REPOSITION as COMMAND_INT in MAV_FRAME_GLOBAL_INT: the simulator, like real PX4,
    # refuses any other frame with result 9)
    await flight.return_to_launch()
    await first(flight.flight_mode(), lambda m: m is FlightMode.RETURN_TO_LAUNCH, 5.0)
    await first(flight.landed_state(), lambda s: s is LandedState.ON_GROUND, 120.0 / SPEED * 3)
    await first(flight.armed(), lambda a: not a, 10.0)


async def test_position_carries_the_drones_heading(
    drone: tuple[MavsdkFlightController, SimNest, Router],
) -> None:
    """GLOBAL_POSITION_INT's hdg reaches the position: the simulated PX4's yaw, the nose's way."""
    flight, nest, router = drone
    dock = MavlinkDock(router.component(nest.site.system_id, DOCK_COMPID, "dock"))
    await router.component(nest.site.system_id, DOCK_COMPID, "dock").watchdog.state.wait_for(
        lambda s: s.connected, 5.0
    )
    await dock.open_cover()
    await flight.arm()
    await flight.takeoff(20.0)
    await first(flight.position(), lambda p: p.alt_rel_m > 18.0, 60.0 / SPEED * 3)
    home = nest.site.home
    lon = home.lon_deg + 120.0 / (111_320.0 * math.cos(math.radians(home.lat_deg)))  # 120 m east
    await flight.goto(GeoTarget(home.lat_deg, lon, 30.0, AltitudeReference.RELATIVE))
    at = await first(
        flight.position(),
        lambda p: metres_between(p.lat_deg, p.lon_deg, home.lat_deg, lon) < 3.0,
        60.0 / SPEED * 3,
    )
    assert at.heading_deg is not None
    assert at.heading_deg == pytest.approx(90.0, abs=5.0)  # it faced its travel, east, and keeps it
    assert at.heading_deg == pytest.approx(nest.autopilot.heading_deg, abs=1.0)  # hovering: steady


def test_unknown_heading_is_none() -> None:
    assert _heading_or_none(float("nan")) is None
    assert _heading_or_none(359.99) == pytest.approx(359.99)
    assert _heading_or_none(360.0) == 0.0


async def test_emergency_stop_needs_confirmation(
    drone: tuple[MavsdkFlightController, SimNest, Router],
) -> None:
    flight, nest, _ = drone
    with pytest.raises(CommandRejected) as refused:
        await flight.emergency_stop(confirm=False)
    assert refused.value.result is CommandResult.INVALID_ARGUMENT
    commands = [r for r in nest.ctx.recorder.all() if r.component == "autopilot" and "kill" in r.kind]
    assert commands == []


async def test_link_cut_fails_fast_and_recovers(
    drone: tuple[MavsdkFlightController, SimNest, Router],
) -> None:
    flight, nest, _ = drone
    loop = asyncio.get_running_loop()
    cut_at = loop.time()
    nest.inject(FaultKind.LINK_LOSS, duration_s=4.0 * SPEED)
    await first(flight.link_state(), lambda s: not s.connected, 3.0)
    assert loop.time() - cut_at <= 3.0
    with pytest.raises(LinkLost):
        await flight.hold()
    await first(flight.link_state(), lambda s: s.connected, 6.0)
    await flight.arm()  # the same link serves commands again, nothing done by hand
