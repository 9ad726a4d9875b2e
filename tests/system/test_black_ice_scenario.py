"""The 13 December scenario, end to end: snow and frost over Changchun, a car crashes on the icy
Nanhu bridge avenue near nest 3, the command center reports the accident over MQTT (priority 1).

The nest the time-to-scene model names launches; on scene, the lookout watches the drone's video,
finds the ice and places it on the road; the drone holds over it with the police lights on and
plays the warning (the simulated payload records both); the detection event and the picture
(a 1280x720 JPEG, also served over HTTP) go out over a real Mosquitto; ground units are
requested; the incident gets its finding milestone; the audit store holds every action with the
dispatcher as actor in the automation's role.

The whole service in one process: SimWorld (10x) + open_service + FleetOperations + VideoHub
+ Lookout + MqttApi, wired as ``dronectl/app/up.py`` wires them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.app.compose import compose_operations, incident_dispatcher
from dronectl.automations.lookout import Lookout
from dronectl.domain.dispatch import Candidate, DispatchSettings, SceneRequest, plan
from dronectl.domain.geo import GeoPoint, distance_to_segment_m
from dronectl.nest.tts import render_speech
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.topics import Topics
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from dronectl.transports.web.snapshots import add_snapshot_routes
from dronectl.video import VideoHub, open_video
from sitl.camera.scene import IceStretch
from sitl.camera.scene import Incident as SceneIncident
from sitl.component import Record
from sitl.environment import Precipitation
from tests.api.command_center import CommandCenter
from tests.api.conftest import mosquitto_port
from tests.conftest import allocate_port_base
from tests.identity.accounts import TEST_USERS
from tests.system.conftest import System, sim_speed, system, system_config
from tests.video.conftest import authorize

__all__ = ["mosquitto_port", "sim_speed", "system", "system_config"]

NESTS = [3, 7]  # Nanhu Park, and Hongqi Street 1.5 km north-west of it
SETTINGS = DispatchSettings(replan_period_s=0.5)
# the Nanhu bridge stretch (changchun.yaml) lies on the simulator's east-west avenue at 43.8548
AVENUE_LAT = 43.8548
SCENE = GeoPoint(AVENUE_LAT, 125.3010)  # ~200 m east-north-east of nest 3
ICE_START = GeoPoint(AVENUE_LAT, 125.2995)
ICE_END = GeoPoint(AVENUE_LAT, 125.3025)  # 240 m of glazed road through the scene
SNOW_AND_FROST = {
    "air_temp_c": -4.0,
    "road_temp_c": -6.0,
    "humidity_pct": 92.0,
    "precipitation_mmph": 1.5,  # light snow: below the 4 mm/h no-go limit
    "precipitation": float(Precipitation.SNOW),
}
TIMEOUT_S = 300.0  # real seconds; generous: two cores shared with other test runs


@pytest.fixture
def nest_ids() -> list[int]:
    return NESTS


@pytest.fixture
def recordings_dir() -> Path | None:
    """Where the flights' video is recorded: none here (the lookout's stream alone); a test that
    replays the run (its audit store, recordings and snapshots) overrides it with a directory."""
    return None


@dataclass
class Scenario:
    system: System
    api: FleetOperations
    hub: VideoHub
    lookout: Lookout
    cc: CommandCenter
    root: str
    http: TestClient[web.Request, web.Application]
    recordings: Path | None  # the flights' recorder on (its directory), or off

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.cc.payloads(f"{self.root}/events") if e["kind"] == kind]

    def progress(self, incident_id: str, state: str) -> list[dict[str, Any]]:
        return [
            e["data"]
            for e in self.events("incident_progress")
            if e["data"]["incident_id"] == incident_id and e["data"]["state"] == state
        ]

    async def event(self, kind: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        await self.cc.wait_until(lambda: bool(self.events(kind)), timeout_s=timeout_s, what=f"a {kind} event")
        return self.events(kind)[0]

    async def milestone(self, incident_id: str, state: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        await self.cc.wait_until(
            lambda: bool(self.progress(incident_id, state)), timeout_s=timeout_s, what=f"milestone {state}"
        )
        return self.progress(incident_id, state)[0]

    def records(self, nest_id: int, kind: str) -> list[Record]:
        return [r for r in self.system.world.nest(nest_id).ctx.recorder.all(kind) if r.kind == kind]


@pytest.fixture
async def scenario(
    system: System, mosquitto_port: int, tmp_path: Path, recordings_dir: Path | None
) -> AsyncIterator[Scenario]:
    for sim in system.world.nests.values():  # never 5600+N: other test runs may stream at once
        sim.camera.video_port = allocate_port_base(span=1)
    root = f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"
    api = compose_operations(system.fleet, dispatch=SETTINGS)
    async with open_video(system.fleet, recordings_dir) as hub:
        # as dronectl/app/up.py wires them
        gateway = CommandGateway(api, Topics(root))
        lookout = Lookout(api, hub, tmp_path / "snapshots", system.config.patrols.black_ice)
        lookout.snapshot_sinks.append(gateway.announce_snapshot)
        incident_dispatcher(api).attach_lookout(lookout)
        mqtt = MqttApi(
            MqttSettings(broker=f"mqtt://127.0.0.1:{mosquitto_port}", root=root),
            api,
            gateway=gateway,
            role_of=TEST_USERS.get,  # the roles file (the broker here is anonymous)
        )
        app = web.Application()
        add_snapshot_routes(app, lookout.store, authorize)
        cc = CommandCenter("127.0.0.1", mosquitto_port)
        await cc.connect()
        serving = asyncio.create_task(mqtt.run(), name="test.mqtt")
        try:
            await cc.subscribe(f"{root}/#")
            async with asyncio.timeout(20):
                await mqtt.connected.wait()
            async with TestClient(TestServer(app)) as http:
                yield Scenario(system, api, hub, lookout, cc, root, http, recordings_dir)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            cc.close()
            await api.aclose()


def expected_nest(system: System) -> int:
    """The time-to-scene model on the controllers' current snapshots, computed apart."""
    candidates = [
        Candidate(c.snapshot(), tuple(c.fleet.others(c.nest_id))) for c in system.fleet.controllers.values()
    ]
    chosen = plan(SceneRequest("expected", SCENE, 1), candidates, system.fleet.policy, SETTINGS).chosen
    assert chosen is not None
    return chosen.nest_id


async def test_13_december_black_ice_at_an_accident(scenario: Scenario) -> None:
    system = scenario.system
    # snow and frost: the weather stations measure it, the cameras see a winter city
    for nest_id in NESTS:
        system.world.nest(nest_id).set_weather(**SNOW_AND_FROST)
    for nest_id in NESTS:
        await system.wait(
            nest_id, lambda c: c.dock.weather is not None and c.dock.weather.road_temperature_c < -5.0, 30.0
        )
    system.world.scene.ice.append(
        IceStretch(ICE_START.lat_deg, ICE_START.lon_deg, ICE_END.lat_deg, ICE_END.lon_deg, width_m=10.0)
    )
    system.world.scene.incidents.append(SceneIncident(SCENE.lat_deg, SCENE.lon_deg, label="ACCIDENT"))
    chosen = expected_nest(system)
    assert chosen == 3

    # the command center reports the accident over MQTT
    incident_id = f"inc-{uuid.uuid4().hex[:8]}"
    await scenario.cc.publish(
        f"{scenario.root}/incidents/cc-desk-2",
        json.dumps(
            {
                "id": incident_id,
                "kind": "accident",
                "position": {"lat": SCENE.lat_deg, "lon": SCENE.lon_deg},
                "priority": 1,
                "text": "two cars skidded into each other on the Nanhu bridge",
                "reported_at": datetime.now(UTC).isoformat(),
                "actor": {"id": "cc-desk-2", "role": "commander"},
            }
        ).encode(),
    )

    # the nest the model chose launches, and reaches the scene
    dispatched = await scenario.milestone(incident_id, "dispatched", 30.0)
    assert dispatched["command_id"].endswith(f".n{chosen}")
    on_scene = await scenario.milestone(incident_id, "on_scene")
    assert any(r.kind == "cover.opening" for r in system.world.nest(chosen).ctx.recorder.all())
    assert not any(r.kind == "cover.opening" for r in system.world.nest(7).ctx.recorder.all())
    video = await scenario.milestone(incident_id, "video_live", 60.0)
    if scenario.recordings is None:  # the lookout's stream is the first to reach the service
        assert video["elapsed_s"] >= on_scene["elapsed_s"]
    else:  # the flight's recorder streams from launch
        assert video["elapsed_s"] < on_scene["elapsed_s"]

    # ice found in the video, on the icy stretch
    detection = await scenario.event("detection")
    d = detection["data"]
    assert d["kind"] == "black_ice" and d["incident_id"] == incident_id and detection["nest_id"] == chosen
    found = GeoPoint(d["lat"], d["lon"])
    off_m = distance_to_segment_m(found, ICE_START, ICE_END)
    assert off_m < 20.0, f"the detection lies {off_m:.1f} m from the ice"
    assert d["coverage_pct"] > 0.0 and d["frames"] >= 2

    # the picture: over MQTT (its own topic, raw JPEG) and over HTTP, 1280x720
    topic = f"{scenario.root}/nests/{chosen}/snapshots/{d['snapshot_id']}"
    await scenario.cc.wait_until(lambda: bool(scenario.cc.messages(topic)), timeout_s=30.0, what=topic)
    jpeg = scenario.cc.messages(topic)[0].payload
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (720, 1280, 3)
    served = await scenario.http.get(d["snapshot_url"], headers={"Authorization": "Bearer observer-token"})
    assert served.status == 200 and await served.read() == jpeg

    # ground units requested, to the same place, for the same incident
    units = await scenario.event("ground_units_requested", 30.0)
    u = units["data"]
    assert u["position"] == {"lat": d["lat"], "lon": d["lon"]} and u["incident_id"] == incident_id
    assert "black ice" in u["reason"] and u["snapshot_id"] == d["snapshot_id"]

    # the drone: holding over the ice, police lights, the warning in Mandarin then English
    finding = await scenario.milestone(incident_id, "finding", 120.0)
    assert finding["snapshot_id"] == d["snapshot_id"] and finding["not_done"] == []
    config = system.config.patrols.black_ice
    zh, _ = render_speech(config.warning_zh, "zh")
    en, _ = render_speech(config.warning_en, "en")
    played = [r.data["pcm_sha256"] for r in scenario.records(chosen, "speaker.clip")]
    assert played[:2] == [hashlib.sha256(zh).hexdigest(), hashlib.sha256(en).hexdigest()]
    assert [r.data["pattern"] for r in scenario.records(chosen, "light")] == ["police"]
    here = system.nest(chosen).drone_position()
    assert here is not None and distance_to_segment_m(here.position, ICE_START, ICE_END) < 25.0

    # every action in the audit store, the dispatcher as actor in the automation's role
    mine = await system.fleet.audit.commands(actor_id="dispatcher")
    methods = [c["method"] for c in mine]
    assert methods[:2] == ["launch", "orbit"]
    for method in ("hold", "light.set", "detection", "ground_units.request", "speaker.say"):
        assert method in methods, methods
    assert {c["actor_role"] for c in mine} == {"automation"}
    detection_row = next(c for c in mine if c["method"] == "detection")
    assert detection_row["args"]["snapshot_id"] == d["snapshot_id"]
    assert detection_row["args"]["incident_id"] == incident_id
