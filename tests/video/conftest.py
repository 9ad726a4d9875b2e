"""Video fixtures: the simulator and the service (as in tests/system), the video hub, and an
aiohttp test server with the video routes; viewers are aiortc clients (``whep_client``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.domain.geo import destination
from dronectl.domain.nest_state import AIRBORNE
from dronectl.operations.models import Actor, Role
from dronectl.transports.whep import add_video_routes
from dronectl.video import VideoHub, open_video
from tests.conftest import allocate_port_base
from tests.system.conftest import SIM_SPEED, System, sim_speed, system, system_config

__all__ = ["SIM_SPEED", "System", "sim_speed", "system", "system_config"]

# A stand-in for dronectl.transports.web.auth's TokenAuthority: token -> (actor, the actions it may do)
TOKENS = {
    "observer-token": (Actor(id="observer", role=Role.OBSERVER), frozenset({"video.view"})),
    "pilot-token": (Actor(id="pilot", role=Role.PILOT), frozenset({"video.view", "video.talk"})),
}


async def authorize(request: web.Request, action: str) -> Actor:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip()
    if token not in TOKENS:
        raise web.HTTPUnauthorized(text="a bearer token is needed")
    actor, actions = TOKENS[token]
    if action not in actions:
        raise web.HTTPForbidden(text=f"{actor.id} may not {action}")
    return actor


@pytest.fixture
def nest_ids() -> list[int]:  # two nests: the video of one is not the other's
    return [3, 4]


@pytest.fixture
def recordings_dir(tmp_path: Path) -> Path | None:
    """Where flights are recorded; None: no recorder (so only viewers hold an ingest)."""
    return None


@dataclass
class VideoSystem:
    system: System
    hub: VideoHub
    client: TestClient[web.Request, web.Application]
    app: web.Application

    async def launch(self, nest_id: int, distance_m: float = 150.0, alt_m: float = 30.0) -> None:
        """Launch ``nest_id`` and wait until its drone is in the air."""
        nest = self.system.nest(nest_id)
        await nest.launch(destination(nest.home, 45.0, distance_m), alt_m)
        await self.system.wait(nest_id, lambda c: c.state.phase in AIRBORNE, 90.0)


@pytest.fixture
async def video(system: System, recordings_dir: Path | None) -> AsyncIterator[VideoSystem]:
    for sim in system.world.nests.values():  # never 5600+N: other test runs may stream at once
        sim.camera.video_port = allocate_port_base(span=1)
    async with open_video(system.fleet, recordings_dir) as hub:
        app = web.Application()
        add_video_routes(app, hub, authorize)
        async with TestClient(TestServer(app)) as client:
            yield VideoSystem(system, hub, client, app)
