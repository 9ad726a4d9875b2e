"""The simulator split as docker-compose runs it (issue 18): ``--autopilots-only`` nests are PX4
SITL stand-ins (no dock, payload or camera), ``--docks-only`` nests are the dock and payload alone,
the dock sensing its drone from the autopilot's telemetry (``sitl.drone_watch``)."""

from __future__ import annotations

from dronectl.domain.config import load_config
from sitl.__main__ import main
from sitl.nest import NestMode
from sitl.world import SimWorld, make_sites
from tests.adapters.fake_peer import wait_until
from tests.conftest import allocate_port_base

NEST = 3


async def test_a_docks_only_dock_senses_the_drone_of_an_autopilot_elsewhere() -> None:
    config = load_config()
    autopilots = allocate_port_base()
    ap_sites = make_sites(config, None, [NEST], autopilots, allocate_port_base())
    dock_sites = make_sites(
        config, None, [NEST], allocate_port_base(), allocate_port_base(), watch_port_base=autopilots
    )
    assert dock_sites[0].watch == ("127.0.0.1", autopilots + NEST)
    async with (
        SimWorld(ap_sites, speed=10.0, mode=NestMode.AUTOPILOT) as aps,
        SimWorld(dock_sites, speed=10.0, mode=NestMode.DOCK) as docks,
    ):
        px4, nest = aps.nest(NEST), docks.nest(NEST)
        assert [c.component_id for c in px4.components] == [1]  # the autopilot alone
        assert px4.cover_open() and not px4.charging()  # nothing over a PX4, no charger
        assert sorted(c.component_id for c in nest.components) == [25, 158]
        assert nest.autopilot is None and nest.camera is None and nest.watched is not None
        assert not nest.on_pad()  # nothing heard yet: no drone sensed, not one assumed
        await wait_until(nest.on_pad, 10.0, "the dock to sense the drone on its pad")
        assert not nest.airborne() and not nest.armed()
        await wait_until(lambda: nest.battery_pct() > 0.0, 10.0, "the battery level, from the telemetry")
        assert abs(nest.battery_pct() - px4.battery_pct()) <= 1.0


def test_docks_only_needs_to_know_where_the_autopilots_are() -> None:
    assert main(["--docks-only", "--nests", "1"]) == 2
    assert main(["--watch-port-base", "18569", "--nests", "1"]) == 2
