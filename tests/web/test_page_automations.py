"""The command-center page shows and drives the automations, in Chromium over the fake controller:
road stretches coloured by congestion, black-ice findings with their snapshot, the ground-units
banner, and the patrols panel (patrol.list / start / stop through POST /api/commands)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore
from dronectl.automations.lookout import SnapshotStore
from dronectl.automations.patrols.store import mission_data
from dronectl.domain.config import CityConfig, load_config
from dronectl.domain.patrols import outlook
from dronectl.domain.patrols.missions import Mission, MissionKind, MissionState
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import (
    Actor,
    Event,
    EventKind,
    Method,
    PatrolListArgs,
    PatrolStartArgs,
    PatrolStopArgs,
    Role,
)
from dronectl.operations.port import Command
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.server import WebServer, map_config
from dronectl.transports.web.sessions import Sessions
from dronectl.transports.web.snapshots import add_snapshot_routes
from tests.api.fake_controller import FakeController
from tests.pinned import QUIET_UNIX_S
from tests.web.browser import MESSAGE, NEST_COUNT, chromium, signed_in, wait_js, wait_until
from tests.web.conftest import Web

CONFIG = load_config()
ICE = CONFIG.patrols.black_ice.stretches[0]
JAM = CONFIG.patrols.congestion.stretches[0]

STRETCH = """(id) => { const g = document.querySelector(`#layer-stretches [data-stretch="${id}"]`);
  return g && { level: g.dataset.level, cls: g.getAttribute('class'),
    tip: g.querySelector('title').textContent,
    stroke: getComputedStyle(g.querySelector('polyline')).stroke,
    points: g.querySelector('polyline').getAttribute('points') }; }"""
LEVEL = """([id, level]) =>
  document.querySelector(`#layer-stretches [data-stretch="${id}"]`)?.dataset.level === level"""
MISSION_ROWS = "() => [...document.querySelectorAll('#missions tbody tr')].map((r) => r.dataset.mission)"


@dataclass
class Page:
    page: Any
    controller: FakeController
    server: WebServer

    def publish(self, kind: EventKind, nest_id: int, message: str, data: dict[str, Any]) -> None:
        at = datetime.now(tz=UTC)
        self.controller.publish(Event(kind=kind, at=at, nest_id=nest_id, message=message, data=data))


@contextlib.asynccontextmanager
async def open_page(tmp_path: Path, role: Role, store: SnapshotStore | None = None) -> AsyncIterator[Page]:
    """The page of ``role`` live (its WebSocket registered), with the snapshot routes mounted."""
    config = CONFIG.model_copy(update={"nests": CONFIG.nests[:3]})
    controller = FakeController((1, 2, 3), step_s=0.05)
    auth = TokenAuthority()
    sessions = Sessions(Directory(tmp_path / "users"))  # signed in below, as after a login
    snapshots = store or SnapshotStore(tmp_path / "snapshots")
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
        mounts = [lambda app, authorize: add_snapshot_routes(app, snapshots, authorize)]
        server = WebServer(
            config, controller, gateway, auth, mounts=mounts, automations=quiet_outlook, sessions=sessions
        )
        async with TestClient(TestServer(server.app)) as client, chromium(tmp_path / "profile") as browser:
            actor = Actor(id=f"{role.value}-1", role=role)
            page = await signed_in(browser, str(client.make_url("/")), sessions, actor)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await wait_js(page, NEST_COUNT, 30, "the nests on the map")
            await wait_until(lambda: server.updates.page_count == 1, 10, "the page's live updates")
            yield Page(page, controller, server)
            assert errors == [], "the page's script failed"


def quiet_outlook() -> dict[str, Any]:
    """The automations' outlook at the pinned quiet instant (as dronectl up composes it)."""
    return outlook.report(CONFIG.patrols, CONFIG.timezone, QUIET_UNIX_S)


def _points(config: CityConfig) -> dict[str, list[list[float]]]:
    return {s.id: [[lat, lon] for lat, lon in s.points] for s in config.patrols.stretches}


def test_the_map_config_has_the_stretches_and_what_they_are_watched_for() -> None:
    stretches = {s["id"]: s for s in map_config(CONFIG)["stretches"]}
    assert {k: v["points"] for k, v in stretches.items()} == _points(CONFIG)
    assert stretches[ICE]["watch"] == ["black_ice"] and stretches[JAM]["watch"] == ["congestion"]
    assert all(s["name"] for s in stretches.values())


async def test_the_automations_script_is_served_before_the_page_script(web_api: Web) -> None:
    async with web_api.client.get("/") as res:
        html = await res.text()
    assert html.index('src="/static/automations.js"') < html.index('src="/static/app.js"')
    async with web_api.client.get("/static/automations.js") as res:
        assert res.status == 200
        assert "http://" not in (await res.text()).replace("http://www.w3.org/2000/svg", "")


async def test_the_automations_outlook_is_served(web_api: Web) -> None:
    web_api.server.automations = quiet_outlook
    async with web_api.client.get("/api/automations", headers=web_api.headers(Role.OBSERVER)) as res:
        assert res.status == 200
        body = await res.json()
    assert body["at"] == "2026-12-06T14:00:00+08:00"
    assert [(a["kind"], a["enabled"], a["next"]) for a in body["automations"]] == [
        ("congestion", True, "2026-12-07T07:00:00+08:00"),
        ("black_ice", True, "2026-12-07T05:00:00+08:00"),
    ]
    async with web_api.client.get("/api/automations") as res:
        assert res.status == 401  # a token, as for every /api route


async def test_stretches_are_drawn_and_coloured_by_their_latest_congestion(tmp_path: Path) -> None:
    async with open_page(tmp_path, Role.OBSERVER) as p:
        # what the automations will do on their own, as dronectl up says it
        outlook_js = (
            "() => [...document.querySelectorAll('#automations-outlook li')].map((li) => li.textContent)"
        )
        await wait_js(p.page, f"() => ({outlook_js})().length === 2", 10, "the automations' outlook")
        shown = await p.page.evaluate(outlook_js)
        assert shown == [a["text"] for a in quiet_outlook()["automations"]]
        assert "next Mon 2026-12-07 07:00-09:00" in shown[0] and "weather station" in shown[1]
        drawn = await p.page.evaluate("() => document.querySelectorAll('#layer-stretches .stretch').length")
        assert drawn == len(CONFIG.patrols.stretches)
        # at the configured points, in the page's own projection
        jam = await p.page.evaluate(STRETCH, JAM)
        want = [await p.page.evaluate("([lat, lon]) => project(lat, lon)", pt) for pt in _points(CONFIG)[JAM]]
        got = [[float(v) for v in xy.split(",")] for xy in jam["points"].split()]
        assert np.allclose(got, want, atol=0.1)
        assert jam["level"] == "unknown" and jam["stroke"] == "rgb(125, 136, 150)"  # grey
        assert "no reading yet" in jam["tip"]
        assert (await p.page.evaluate(STRETCH, ICE))["level"] == "none"  # ice only: not coloured
        reading = {"stretch_id": JAM, "level": "heavy", "density_veh_per_km": 52.4, "mean_speed_mps": 3.1,
                   "stopped_fraction": 0.3, "vehicles": 14}  # fmt: skip
        p.publish(EventKind.CONGESTION, 2, "People's Square: heavy traffic", reading)
        await wait_js(p.page, LEVEL, 10, "the heavy level", [JAM, "heavy"])
        heavy = await p.page.evaluate(STRETCH, JAM)
        assert heavy["stroke"] == "rgb(240, 138, 36)"  # orange
        assert "heavy: 52 veh/km per lane, 3.1 m/s (11 km/h), 30 % stopped, 14 vehicles" in heavy["tip"]
        p.publish(EventKind.CONGESTION, 2, "People's Square: moving", {**reading, "level": "free"})
        await wait_js(p.page, LEVEL, 10, "the free level", [JAM, "free"])
        assert (await p.page.evaluate(STRETCH, JAM))["stroke"] == "rgb(63, 182, 123)"  # green
        await p.page.reload()  # a page that comes later gets each stretch's latest reading at once
        await wait_js(p.page, LEVEL, 10, "the free level again", [JAM, "free"])
        # an observer may not start patrols: the button says so, and no list was asked for
        assert "not-allowed" in await p.page.get_attribute("#btn-patrol-start", "class")
        assert not [c for c in p.controller.executed if c.method is Method.PATROL_LIST]


async def test_black_ice_is_marked_with_its_snapshot_and_ground_units_are_unmissable(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    snapshot_id = SnapshotStore.new_id("ice", 3, datetime.now(tz=UTC).timestamp())
    picture = np.full((180, 320, 3), 200, np.uint8)
    store.save(snapshot_id, cv2.imencode(".jpg", picture)[1].tobytes())
    spot = {"lat": 43.8548, "lon": 125.2981}
    async with open_page(tmp_path, Role.OBSERVER, store) as p:
        found = {**spot, "kind": "black_ice", "coverage_pct": 12.5, "snapshot_id": snapshot_id,
                 "snapshot_url": SnapshotStore.url(snapshot_id), "detection_id": "det-1"}  # fmt: skip
        p.publish(EventKind.DETECTION, 3, "black ice found by nest 3", found)
        marker = await wait_js(
            p.page,
            "() => document.querySelector('#layer-findings .finding[data-detection=\"det-1\"]')"
            "?.getAttribute('transform')",
            10,
            "the ice marker",
        )
        xy = await p.page.evaluate("([lat, lon]) => project(lat, lon)", [spot["lat"], spot["lon"]])
        assert marker == f"translate({xy[0]:.1f},{xy[1]:.1f})"
        # the thumbnail in the messages, fetched with the page's token (naturalWidth: it loaded)
        width = await wait_js(
            p.page,
            "() => document.querySelector('#messages li.finding img.thumb')?.naturalWidth",
            10,
            "thumb",
        )
        assert width == 320
        assert await p.page.evaluate("() => document.querySelector('#alerts').children.length") == 0
        units = {
            "position": spot,
            "reason": "black ice on the road: grit or salt it",
            "snapshot_id": snapshot_id,
        }
        p.publish(EventKind.GROUND_UNITS_REQUESTED, 3, "ground units requested (nest 3)", units)
        banner = await wait_js(
            p.page, "() => document.querySelector('#alerts .ground-units')?.innerText", 10, "the banner"
        )
        assert "GROUND UNITS REQUESTED TO 43.85480, 125.29810" in banner and "grit or salt" in banner
        assert await p.page.is_visible("#alerts .ground-units")
        await wait_js(p.page, MESSAGE, 10, "the alert line", ["alert", "ground units requested"])
        await p.page.click("#alerts .ground-units button.ack")
        assert await p.page.evaluate("() => document.querySelector('#alerts').children.length") == 0


async def test_the_patrols_panel_lists_starts_and_stops_missions(tmp_path: Path) -> None:
    async with open_page(tmp_path, Role.COMMANDER) as p:

        def listed() -> list[Command]:
            return [c for c in p.controller.executed if c.method is Method.PATROL_LIST]

        await wait_until(lambda: len(listed()) == 1, 10, "the list asked for on connecting")
        assert listed()[0].args == PatrolListArgs(active_only=True)
        assert await p.page.is_visible("#missions-none")  # none yet
        running = Mission(
            "m-run", MissionKind.CONGESTION, JAM, MissionState.PATROLLING, 0.0, "schedule", nest_id=2
        )
        p.controller.missions.append(running)
        await p.page.reload()  # asked for again on each (re)connect
        await wait_js(p.page, f"() => ({MISSION_ROWS})().includes('m-run')", 10, "the listed mission")
        assert not await p.page.is_visible("#missions-none")
        # start a black-ice patrol on the ice stretch: the request as the patrol service wants it
        await p.page.select_option("#patrol-stretch", ICE)
        assert await p.page.input_value("#patrol-kind") == "black_ice"  # the stretch's watch
        await p.page.click("#btn-patrol-start")
        await wait_js(p.page, f"() => ({MISSION_ROWS})().length === 2", 10, "the started mission")
        [start] = [c for c in p.controller.executed if c.method is Method.PATROL_START]
        assert start.args == PatrolStartArgs(kind="black_ice", stretch_id=ICE)
        assert start.actor_id == "commander-1" and start.nest_id is None
        assert "patrolled" in (await p.page.evaluate(STRETCH, ICE))["cls"]
        # stop the running one; its end (a patrol event) takes it off the list
        await p.page.click('#missions tr[data-mission="m-run"] button.stop')
        await wait_until(
            lambda: any(c.method is Method.PATROL_STOP for c in p.controller.executed), 10, "patrol.stop"
        )
        [stop] = [c for c in p.controller.executed if c.method is Method.PATROL_STOP]
        assert stop.args == PatrolStopArgs(mission_id="m-run")
        state = """() => document.querySelector('#missions tr[data-mission="m-run"] .mstate')?.textContent"""
        assert await wait_js(p.page, f"() => ({state})() === 'returning'", 10, "the mission returning")
        ended = mission_data(Mission("m-run", MissionKind.CONGESTION, JAM, MissionState.ENDED, 0.0, "x"))
        p.publish(EventKind.PATROL, 2, "congestion patrol ended: stopped", ended)
        started = p.controller.missions[-1].id
        await wait_js(p.page, f"() => ({MISSION_ROWS})().join() === '{started}'", 10, "the ended one gone")
