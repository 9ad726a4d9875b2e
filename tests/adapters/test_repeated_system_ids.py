"""Beyond 254 nests each nest's link is its own MAVLink network (issue 15): two nests with the same
MAVLink system id on two endpoints are two vehicles, each on its own MAVSDK, each signed with its
own key (kept under the nest's number)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from adapters.fleet import FleetHardware
from adapters.mavlink.keystore import KeyStore
from sitl.environment import GeoPoint
from sitl.nest import NestSite
from sitl.world import SimWorld
from tests.adapters.fake_peer import wait_until
from tests.conftest import allocate_port_base

SPEED = 10.0


def signed(hw: FleetHardware, nest: int) -> Callable[[], bool]:
    return lambda: hw.link_security(nest).signed


async def test_two_nests_with_one_system_id_are_two_vehicles(tmp_path: Path) -> None:
    sim_base, client_base = allocate_port_base(), allocate_port_base()
    homes = {1: GeoPoint(43.85, 125.30, 220.0), 300: GeoPoint(43.90, 125.40, 230.0)}
    sites = [
        NestSite(nest, 1, f"nest {nest}", home, ("127.0.0.1", sim_base + i), ("127.0.0.1", client_base + i))
        for i, (nest, home) in enumerate(homes.items())
    ]
    endpoints = {site.nest_id: f"udpin://127.0.0.1:{site.remote[1]}" for site in sites if site.remote}
    keys = KeyStore(tmp_path / "keys")
    async with (
        SimWorld(sites, speed=SPEED, state_dir=tmp_path / "sitl") as world,
        FleetHardware(
            endpoints,
            heartbeat_interval_s=1.0 / SPEED,
            keys=keys,
            provision=True,
            system_ids={1: 1, 300: 1},
            own_network={300},
        ) as hw,
    ):
        assert len(hw.networks) == 2  # one MAVSDK cannot tell two system 1s apart
        attached = await asyncio.gather(*(hw.attach(nest, timeout_s=20.0) for nest in homes))
        for nest, adapters in zip(homes, attached, strict=True):
            await wait_until(signed(hw, nest), 10.0, f"nest {nest} signed")
            async with asyncio.timeout(10):
                position = await anext(aiter(adapters.flight.position()))
            assert abs(position.lat_deg - homes[nest].lat_deg) < 1e-3, nest  # its own vehicle
            assert abs(position.lon_deg - homes[nest].lon_deg) < 1e-3, nest
            adapters.close()
        first, second = keys.load(1), keys.load(1, nest_id=300)
        assert (tmp_path / "keys" / "nest-300.key").exists()
        assert first is not None and second is not None and first != second
        assert world.nest(1).link.signing.key == first
        assert world.nest(300).link.signing.key == second


def test_up_to_254_unique_ids_share_one_network() -> None:
    hw = FleetHardware({n: f"udpin://127.0.0.1:{20000 + n}" for n in range(1, 255)})
    assert len(hw.networks) == 1
    hw.close()
    ids = {n: (n - 1) % 244 + 1 for n in range(1, 601)}
    hw = FleetHardware({n: f"udpin://127.0.0.1:{20000 + n}" for n in ids}, system_ids=ids)
    assert len(hw.networks) == 3  # ceil(600 / 244)
    hw.close()
