"""Issue 13's acceptance, on the whole service with a simulated nest whose link was signed at
first start (as ``dronectl up`` does): forged telemetry sent to the service's nest port from
another address is ignored and counted, the nest's state unchanged; a spoofer sending unsigned
arm / DO_REPOSITION / SET_MODE to the nest moves nothing; the state says the link is signed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.message import new_parser
from adapters.mavlink.signing import Reject
from dronectl.domain.clock import ScaledClock
from dronectl.domain.nest_state import NestPhase
from dronectl.nest.service import open_service
from dronectl.nest.supervisor import Backoff
from dronectl.operations.views import _link
from sitl.world import SimWorld, make_sites
from tests.adapters.fake_peer import wait_until
from tests.pinned import QUIET_UNIX_S
from tests.system.conftest import SIM_SPEED, System, system_config

NEST = 3


@pytest.fixture
async def signed_system(port_base: tuple[int, int], tmp_path: Path) -> AsyncIterator[System]:
    config = system_config(port_base, [NEST])
    sites = make_sites(config)
    async with (
        SimWorld(sites, speed=SIM_SPEED, state_dir=tmp_path / "sitl") as world,
        open_service(
            config,
            tmp_path / "audit.sqlite3",
            clock=ScaledClock(SIM_SPEED, calendar_start=QUIET_UNIX_S),
            backoff=Backoff(first_s=0.2, max_s=2.0),
            heartbeat_interval_s=1.0 / SIM_SPEED,
            keys_dir=tmp_path / "keys",
            provision_keys=True,
        ) as fleet,
    ):
        system = System(config, world, fleet, tmp_path / "audit.sqlite3", SIM_SPEED)
        await system.wait(NEST, lambda c: c.state.phase in (NestPhase.READY, NestPhase.CHARGING), 60.0)
        await system.wait(
            NEST, lambda c: c.drone.battery_pct is not None and c.drone.position is not None, 10
        )
        yield system


def forged(encoder: mav.MAVLink) -> list[bytes]:
    return [
        bytes(m.pack(encoder))
        for m in (
            mav.MAVLink_global_position_int_message(
                1, 2**31 - 1, 1_250_000_000, 900_000, 800_000, 0, 0, 0, 0
            ),
            mav.MAVLink_extended_sys_state_message(0, mav.MAV_LANDED_STATE_IN_AIR),
            mav.MAVLink_battery_status_message(0, 0, 0, 2500, [3300] * 10, 100, 1000, 1000, 3),
            mav.MAVLink_heartbeat_message(2, 12, 0x81, 4 << 16, 4, 3),  # armed, AUTO.LOITER
        )
    ]


async def test_forged_telemetry_and_spoofed_commands_change_nothing(signed_system: System) -> None:
    system = signed_system
    controller = system.nest(NEST)
    link = _link(controller)
    assert link is not None and link.signed and link.policy == "required"
    security = controller.hw.link_security
    assert security is not None
    before = (
        controller.state.phase,
        controller.drone.armed,
        controller.drone.battery_pct,
        controller.drone.landed,
    )
    position = controller.drone.position
    sim = system.world.nest(NEST)
    service_port = (system.config.mavlink.host, system.config.mavlink.client_port_base + NEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", 0))
        # 1. Forged telemetry of nest 3's autopilot, from another address, to the service's port.
        for _ in range(10):
            for frame in forged(new_parser(sim.site.system_id, 1)):
                stranger.sendto(frame, service_port)
        await wait_until(lambda: sum(security().rejected.values()) >= 40, 10.0, "40 forged frames refused")
        # 2. Unsigned commands to the signed simulated nest, from the same host.
        for msg in (
            mav.MAVLink_command_long_message(
                NEST, 1, mav.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 21196, 0, 0, 0, 0, 0
            ),
            mav.MAVLink_command_int_message(
                NEST, 1, mav.MAV_FRAME_GLOBAL, mav.MAV_CMD_DO_REPOSITION, 0, 0, -1, 1, 0, 0,
                439_000_000, 1_253_000_000, 80.0,
            ),
            mav.MAVLink_set_mode_message(NEST, 1, 4 << 16),
        ):  # fmt: skip
            stranger.sendto(bytes(msg.pack(new_parser(200, 1))), sim.site.bind)
        await wait_until(
            lambda: sim.link.signing.rejected[Reject.UNSIGNED] >= 3, 10.0, "3 spoofed commands refused"
        )
    # The signed link still carries the nest's telemetry, and nothing forged got in.
    seen = controller.drone.position
    await controller.wait_for(lambda: controller.drone.position is not seen, 10.0, "a genuine position")
    assert security().signed and security().fault is None
    assert (
        controller.state.phase,
        controller.drone.armed,
        controller.drone.battery_pct,
        controller.drone.landed,
    ) == before
    assert controller.drone.position is not None and position is not None
    assert abs(controller.drone.position.lat_deg - position.lat_deg) < 1e-4
    assert not sim.autopilot.armed and not sim.autopilot.airborne()
