"""MAVSDK behind the router: one in-process Mavsdk, fed through its raw connection, sees every
nest's autopilot through the nests' shared endpoints and commands the right one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mavsdk import ConnectionResult
from mavsdk.asyncio.plugins.action import ActionAsync
from mavsdk.asyncio.plugins.telemetry import TelemetryAsync
from mavsdk.asyncio.system import System
from mavsdk.plugins.action import ActionError

from adapters.mavlink import mavsdk_bridge
from adapters.mavlink.dock import MavlinkDock
from adapters.mavlink.ids import DOCK_COMPID
from adapters.mavlink.mavsdk_bridge import MavsdkBridge
from adapters.mavlink.router import Router
from sitl.world import SimWorld, make_sites

SPEED = 5.0


@pytest.fixture
async def fleet(port_base: tuple[int, int]) -> AsyncIterator[tuple[SimWorld, Router, MavsdkBridge]]:
    sim_base, client_base = port_base
    sites = make_sites(count=2, sim_port_base=sim_base, client_port_base=client_base)
    bridge = MavsdkBridge()
    async with SimWorld(sites, speed=SPEED) as world, Router(bridge) as router:
        for nest in world.nests.values():
            assert nest.site.remote is not None
            await router.add_nest(nest.site.system_id, ("127.0.0.1", nest.site.remote[1]))
        yield world, router, bridge


async def mavsdk_system(bridge: MavsdkBridge, system_id: int, timeout_s: float = 5.0) -> System:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        while True:
            systems: list[Any] = await loop.run_in_executor(None, bridge.mavsdk.get_systems)
            for system in systems:
                if system.get_system_id() == system_id and system.is_connected():
                    return System(system)
            await asyncio.sleep(0.1)


async def test_mavsdk_arms_the_addressed_drone_only(fleet: tuple[SimWorld, Router, MavsdkBridge]) -> None:
    world, router, bridge = fleet
    first, second = (n.site.system_id for n in world.nests.values())
    await mavsdk_system(bridge, first)
    system = await mavsdk_system(bridge, second)
    action = ActionAsync(system)
    async with asyncio.timeout(15.0):
        while True:  # PX4 refuses to arm until its pre-arm checks pass (about 5 s after boot)
            try:
                await action.arm()
                break
            except ActionError:
                await asyncio.sleep(0.2)
    async with asyncio.timeout(5.0):
        async for armed in TelemetryAsync(system).subscribe_armed():
            if armed:
                break
    nests = {n.site.system_id: n for n in world.nests.values()}
    assert nests[second].autopilot.armed
    assert not nests[first].autopilot.armed
    assert router.bridge_rx_frames > 0 and router.bridge_tx_frames > 0


async def test_dock_and_mavsdk_share_the_nest_endpoint(fleet: tuple[SimWorld, Router, MavsdkBridge]) -> None:
    world, router, bridge = fleet
    nest = next(iter(world.nests.values()))
    system = await mavsdk_system(bridge, nest.site.system_id)
    dock = MavlinkDock(router.component(nest.site.system_id, DOCK_COMPID, "dock"))
    await router.component(nest.site.system_id, DOCK_COMPID, "dock").watchdog.state.wait_for(
        lambda s: s.connected, 5.0
    )
    await dock.open_cover()
    component_ids = await system.component_ids()
    assert DOCK_COMPID not in component_ids  # the dock's traffic is not MAVSDK's business
    assert 1 in component_ids
    assert nest.dock.cover_state.name == "OPEN"


class _StuckMavsdk:
    """A Mavsdk whose receive hangs until released: what a MAVSDK call that never returns does."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.fed: list[bytes] = []
        self.entered = threading.Event()

    def add_any_connection(self, url: str) -> Any:
        return ConnectionResult.SUCCESS

    def subscribe_raw_bytes_to_be_sent(self, callback: Any) -> object:
        return object()

    def version(self) -> str:
        return "stuck"

    def pass_received_raw_bytes(self, data: bytes) -> None:
        self.entered.set()
        self.release.wait(10.0)
        self.fed.append(data)

    def destroy(self) -> None:
        pass


async def test_frames_for_a_stuck_mavsdk_are_bounded_then_fed_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The feeder thread keeps the frames' order, passes what queued up in one call, and drops
    (counting) beyond MAX_QUEUED_FRAMES while MAVSDK does not return: memory stays bounded."""
    monkeypatch.setattr(mavsdk_bridge, "MAX_QUEUED_FRAMES", 5)
    stuck = _StuckMavsdk()
    bridge = MavsdkBridge(stuck)
    bridge.start(lambda data: None)
    bridge.receive(b"first")
    await asyncio.to_thread(stuck.entered.wait, 5.0)  # the feeder is inside MAVSDK now
    for i in range(8):
        bridge.receive(b"f%d" % i)
    assert bridge.dropped_frames == 3
    stuck.release.set()
    await asyncio.to_thread(bridge.close)
    assert stuck.fed == [b"first", b"f0f1f2f3f4"]
    assert bridge.fed_calls == 2
