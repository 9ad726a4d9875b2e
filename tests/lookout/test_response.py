"""The response to a finding, against the simulator (10x) and the real command path: the drone
goes over the ice and holds, the light shows the police pattern, the warning plays in Mandarin
then English (each clip played out, twice), the picture is stored and handed to the transports,
the detection and the ground-units request are published and audited with the automation as
actor. Under a pilot's manual control every drone step is refused (and reported), nothing is
overridden, and the ground units are requested all the same."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from dronectl.app.compose import compose_operations
from dronectl.automations.lookout import GroundFinding, Lookout
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.geo import GeoPoint, destination, distance_m
from dronectl.domain.nest_state import NestPhase
from dronectl.nest.tts import render_speech
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.models import Event, EventKind
from sitl.component import Record
from tests.system.conftest import System, sim_speed, system, system_config

__all__ = ["sim_speed", "system", "system_config"]

NEST = 3
CONFIG = BlackIceConfig()


@pytest.fixture
def nest_ids() -> list[int]:
    return [NEST]


@dataclass
class Rig:
    system: System
    api: FleetOperations
    lookout: Lookout
    events: list[Event]
    published: list[tuple[int, str, bytes]]

    def records(self, kind: str) -> list[Record]:
        return [r for r in self.system.world.nest(NEST).ctx.recorder.all(kind) if r.kind == kind]

    def events_of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind is kind]


@pytest.fixture
async def rig(system: System, tmp_path: Path) -> AsyncIterator[Rig]:
    api = compose_operations(system.fleet)
    lookout = Lookout(api, None, tmp_path / "snapshots", CONFIG)
    events: list[Event] = []
    published: list[tuple[int, str, bytes]] = []

    async def sink(nest_id: int, snapshot_id: str, jpeg: bytes) -> None:
        published.append((nest_id, snapshot_id, jpeg))

    lookout.snapshot_sinks.append(sink)

    async def collect() -> None:
        async for item in api.updates():
            if isinstance(item, Event):
                events.append(item)

    task = asyncio.create_task(collect(), name="test.events")
    try:
        yield Rig(system, api, lookout, events, published)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await api.aclose()


def picture() -> bytes:
    image = np.full((720, 1280, 3), (112, 108, 104), np.uint8)
    cv2.rectangle(image, (300, 330), (1000, 390), (238, 214, 190), -1)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


async def airborne_over(rig: Rig) -> GeoPoint:
    nest = rig.system.nest(NEST)
    await nest.launch(destination(nest.home, 45.0, 120.0), 30.0)
    await rig.system.wait_phase(NEST, NestPhase.ON_STATION, 120.0)
    here = nest.drone_position()
    assert here is not None
    return here.position


def finding_at(position: GeoPoint, drone: GeoPoint) -> GroundFinding:
    return GroundFinding(
        nest_id=NEST,
        position=position,
        coverage_pct=4.2,
        capture_unix_s=1765610102.0,
        jpeg=picture(),
        width_px=1280,
        height_px=720,
        frames=2,
        drone_position=drone,
        drone_height_m=30.0,
        heading_deg=45.0,
    )


async def test_response_holds_over_the_ice_lights_warns_and_requests_ground_units(rig: Rig) -> None:
    drone = await airborne_over(rig)
    ice = destination(drone, 100.0, 40.0)  # beyond the hold radius: the drone goes over it first
    response = await rig.lookout.respond_to_ice(
        NEST, finding_at(ice, drone), actor_id="dispatcher", incident_id="inc-ice-1"
    )

    actions = [s.action for s in response.steps]
    assert actions == ["goto", "hold", "light", "warning_zh", "warning_en", "warning_zh", "warning_en"]
    assert all(s.ok for s in response.steps), response.describe()
    here = rig.system.nest(NEST).drone_position()
    assert here is not None and distance_m(here.position, ice) < 5.0

    # the simulated payload: police lights, then the warning as audio, each clip played out
    [light] = rig.records("light")
    assert light.data["pattern"] == "police"
    zh, _ = render_speech(CONFIG.warning_zh, "zh")
    en, _ = render_speech(CONFIG.warning_en, "en")
    played = [r.data["pcm_sha256"] for r in rig.records("speaker.clip")]
    expected = [hashlib.sha256(pcm).hexdigest() for pcm in (zh, en, zh, en)]
    assert played == expected
    assert light.time_s < rig.records("speaker.clip")[0].time_s
    assert "interrupted" not in [r.data["reason"] for r in rig.records("speaker.finished")]

    # the picture: stored, served by id, handed to the transports
    assert rig.lookout.store.load(response.snapshot_id) == picture()
    assert rig.published == [(NEST, response.snapshot_id, picture())] and response.snapshot_published

    [detection] = rig.events_of(EventKind.DETECTION)
    d = detection.data
    assert d["kind"] == "black_ice" and d["incident_id"] == "inc-ice-1" and d["mission_id"] is None
    assert distance_m(GeoPoint(d["lat"], d["lon"]), ice) < 0.1
    assert d["snapshot_id"] == response.snapshot_id and d["snapshot_url"] == response.snapshot_url
    assert d["coverage_pct"] == 4.2 and detection.nest_id == NEST and detection.flight_id is not None
    assert d["snapshot_stored"] is True
    assert [s["action"] for s in d["response"]] == ["goto", "hold", "light"]  # before the warning
    [units] = rig.events_of(EventKind.GROUND_UNITS_REQUESTED)
    u = units.data
    assert u["position"] == {"lat": d["lat"], "lon": d["lon"]} and "black ice" in u["reason"]
    assert "4.2 %" in u["seen"] and u["incident_id"] == "inc-ice-1"
    assert u["snapshot_id"] == response.snapshot_id

    # audited, the automation as actor: each command, the detection and the request
    mine = await rig.system.fleet.audit.commands(actor_id="dispatcher")
    assert [(c["method"], c["actor_role"]) for c in mine] == [
        ("goto", "automation"),
        ("hold", "automation"),
        ("light.set", "automation"),
        ("detection", "automation"),
        ("ground_units.request", "automation"),
        *[("speaker.say", "automation")] * 4,
    ]
    assert all(c["outcomes"][-1]["outcome"] == "succeeded" for c in mine)
    detection_row = next(c for c in mine if c["method"] == "detection")
    assert detection_row["args"]["snapshot_id"] == response.snapshot_id
    assert detection_row["command_id"] == response.detection_id


async def test_under_manual_control_nothing_is_overridden_and_the_refusals_are_reported(rig: Rig) -> None:
    """Also with the picture not storable: the detection and the ground units go out regardless."""
    drone = await airborne_over(rig)
    verdict = rig.api.authority.take(NEST, "officer-7", "pilot", rig.api.wall())
    assert verdict.refusal is None
    blocked = rig.system.audit_path.parent / "not-a-directory"
    blocked.write_text("a file where the pictures should go")
    rig.lookout.store.directory = blocked  # and the picture cannot be stored either
    ice = destination(drone, 100.0, 40.0)
    response = await rig.lookout.respond_to_ice(
        NEST, finding_at(ice, drone), actor_id="dispatcher", incident_id="inc-ice-2"
    )

    assert [s.action for s in response.steps] == [
        "goto",
        "hold",
        "light",
        "warning_zh",
        "warning_en",
        "warning_zh",
        "warning_en",
    ]
    assert all(s.state == "refused" for s in response.steps)
    assert all("officer-7" in " ".join((s.message, *s.reasons)) for s in response.steps)
    assert "not done: goto" in response.describe()
    # nothing reached the drone
    assert rig.records("light") == [] and rig.records("speaker.clip") == []
    here = rig.system.nest(NEST).drone_position()
    assert here is not None and distance_m(here.position, drone) < 5.0
    # reported, and the ground units requested all the same
    [detection] = rig.events_of(EventKind.DETECTION)
    assert [s["state"] for s in detection.data["response"]] == ["refused"] * 3
    assert detection.data["snapshot_stored"] is False
    [units] = rig.events_of(EventKind.GROUND_UNITS_REQUESTED)
    assert units.data["incident_id"] == "inc-ice-2"
    refused = [
        c for c in await rig.system.fleet.audit.commands(actor_id="dispatcher") if c["method"] == "goto"
    ]
    assert [c["outcomes"][0]["outcome"] for c in refused] == ["refused"]
