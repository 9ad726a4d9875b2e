"""The fleet's links signed end to end with the simulator and the in-process MAVSDK: the built-in
simulation provisions itself at first start and keeps its keys across a restart, and a key
rotated mid-flight keeps the drone under control."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from adapters.fleet import FleetHardware
from adapters.mavlink.ids import DOCK_COMPID
from adapters.mavlink.keystore import KeyStore
from adapters.mavlink.signing import Reject, new_key
from adapters.protocols import AltitudeReference, FlightMode, GeoTarget
from sitl.world import SimWorld, make_sites
from tests.adapters.fake_peer import wait_until
from tests.conftest import allocate_port_base

SPEED = 10.0
T = TypeVar("T")


async def first(stream: AsyncIterator[T], predicate: Callable[[T], bool], timeout_s: float) -> T:
    async with asyncio.timeout(timeout_s):
        async for value in stream:
            if predicate(value):
                return value
    raise AssertionError("stream ended")


async def test_first_start_provisions_and_a_restart_keeps_the_keys(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    site = sites[0]
    assert site.remote is not None
    endpoints = {site.system_id: f"udpin://127.0.0.1:{site.remote[1]}"}
    keys = KeyStore(tmp_path / "keys")
    async with SimWorld(sites, speed=SPEED, state_dir=tmp_path / "sitl") as world:
        async with FleetHardware(endpoints, keys=keys, provision=True) as hw:
            adapters = await hw.attach(site.system_id, timeout_s=20.0)
            await wait_until(lambda: hw.link_security(site.system_id).signed, 10.0, "a signed link")
            adapters.close()
        key = keys.load(site.system_id)
        assert key is not None and world.nest(site.nest_id).link.signing.key == key
    # Both restarted (on fresh ports: the old sockets close asynchronously): the same key on both
    # sides, nothing provisioned again.
    sites = make_sites(count=1, sim_port_base=allocate_port_base(), client_port_base=allocate_port_base())
    site = sites[0]
    assert site.remote is not None
    endpoints = {site.system_id: f"udpin://127.0.0.1:{site.remote[1]}"}
    async with (
        SimWorld(sites, speed=SPEED, state_dir=tmp_path / "sitl"),
        FleetHardware(endpoints, keys=keys, provision=True) as hw,
    ):
        adapters = await hw.attach(site.system_id, timeout_s=20.0)
        await wait_until(lambda: hw.link_security(site.system_id).signed, 10.0, "a signed link")
        status = hw.link_security(site.system_id)
        assert status.policy == "required" and status.fault is None
        adapters.close()
    assert keys.load(site.system_id) == key


async def test_key_rotation_mid_flight_keeps_the_drone_controlled(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    site = sites[0]
    assert site.remote is not None
    endpoints = {site.system_id: f"udpin://127.0.0.1:{site.remote[1]}"}
    keys = KeyStore(tmp_path / "keys")
    async with (
        SimWorld(sites, speed=SPEED, state_dir=tmp_path / "sitl") as world,
        # our heartbeat at the simulator's speed, as the service sends it (PX4 counts data-link
        # loss in simulated seconds)
        FleetHardware(endpoints, heartbeat_interval_s=1.0 / SPEED, keys=keys, provision=True) as hw,
    ):
        nest = world.nest(site.nest_id)
        adapters = await hw.attach(site.system_id, timeout_s=20.0)
        flight, dock = adapters.flight, adapters.dock
        try:
            dock_link = hw.router.component(site.system_id, DOCK_COMPID, "dock")
            await dock_link.watchdog.state.wait_for(lambda s: s.connected, 5.0)
            await dock.open_cover()
            await flight.arm()
            await flight.takeoff(20.0)
            await first(flight.position(), lambda p: p.alt_rel_m > 15.0, 20.0)
            rotated = new_key()
            await hw.router.provision(site.system_id, rotated)  # signed with the old key
            keys.store(site.system_id, rotated)
            assert nest.link.signing.key == rotated
            home = site.home
            lat = home.lat_deg + 100.0 / 111_320.0
            await flight.goto(GeoTarget(lat, home.lon_deg, 25.0, AltitudeReference.RELATIVE))
            await first(
                flight.position(),
                lambda p: math.hypot((p.lat_deg - lat) * 111_320.0, 0) < 5.0,
                30.0,
            )
            await flight.return_to_launch()
            await first(flight.flight_mode(), lambda m: m is FlightMode.RETURN_TO_LAUNCH, 5.0)
            assert hw.link_security(site.system_id).signed
            # Nothing of ours was refused around the switch, and PX4 never lost its ground station.
            assert nest.link.signing.rejected[Reject.BAD_SIGNATURE] == 0
            assert not [r for r in nest.ctx.recorder.all("failsafe")]
        finally:
            adapters.close()


async def test_a_stop_between_the_nest_taking_a_key_and_our_storing_it_heals(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    """The nest took the key offered (it is stored on its side), the service stopped before it
    stored it: the next start offers the same pending key, and both agree."""
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    site = sites[0]
    assert site.remote is not None
    endpoints = {site.system_id: f"udpin://127.0.0.1:{site.remote[1]}"}
    keys = KeyStore(tmp_path / "keys")
    offered = new_key()
    keys.store_pending(site.system_id, offered)
    async with SimWorld(sites, speed=SPEED, state_dir=tmp_path / "sitl") as world:
        world.nest(site.nest_id).link.signing._setup_signing(offered, 1)
        async with FleetHardware(endpoints, keys=keys, provision=True) as hw:
            adapters = await hw.attach(site.system_id, timeout_s=20.0)
            await wait_until(lambda: hw.link_security(site.system_id).signed, 10.0, "a signed link")
            adapters.close()
    assert keys.load(site.system_id) == offered
    assert keys.load_pending(site.system_id) is None
