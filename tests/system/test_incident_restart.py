"""Incidents survive a controller restart (issue 7). The dispatcher (its FleetOperations) is
stopped and a new one started on the same audit store and fleet, over the simulator (10x):

- a queued incident (the only nest under a pilot's control) is planned again and served;
- a proposed one is proposed again, and launches only with a commander's confirmation;
- one whose drone is over the scene is followed again: no new launch, no new orbit, closed when
  the drone leaves;
- one whose drone landed meanwhile is closed with the reason;
- at a reported patch of black ice, the lookout of the new run watches the followed drone's video
  and responds to the ice it finds;

and the incident's row is never recorded twice: the restart adds a ``resumed`` milestone to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dronectl.app.compose import compose_operations, incident_dispatcher
from dronectl.audit import CommandRow
from dronectl.automations.lookout import Lookout
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.dispatch import DispatchSettings
from dronectl.domain.geo import GeoPoint, destination, distance_to_segment_m
from dronectl.domain.nest_state import NestPhase
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.models import Actor, Event, EventKind, GroundPoint, Incident, Role
from dronectl.video import open_video
from sitl.camera.scene import IceStretch
from sitl.environment import Precipitation
from tests.conftest import allocate_port_base
from tests.system.conftest import System

NEST = 3
SETTINGS = DispatchSettings(replan_period_s=0.5)
_ids = itertools.count(1)
DOCKED = (NestPhase.CHARGING, NestPhase.READY, NestPhase.STANDBY)


@pytest.fixture
def nest_ids() -> list[int]:
    return [NEST]


@dataclass
class Run:
    """One run of the controller's API side (dispatcher included), collecting its events."""

    api: FleetOperations
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None

    def states(self, incident_id: str) -> list[str]:
        return [d["state"] for d in self.progress(incident_id)]

    def progress(self, incident_id: str) -> list[dict[str, Any]]:
        return [
            e.data
            for e in self.events
            if e.kind is EventKind.INCIDENT_PROGRESS and e.data.get("incident_id") == incident_id
        ]

    async def milestone(self, incident_id: str, state: str, timeout_s: float = 60.0) -> dict[str, Any]:
        return (await self.event(incident_id, state, timeout_s)).data

    async def event(self, incident_id: str, state: str, timeout_s: float = 60.0) -> Event:
        """The latest ``incident_progress`` event of ``incident_id`` in ``state``, once there is one."""

        def found() -> list[Event]:
            return [
                e
                for e in self.events
                if e.kind is EventKind.INCIDENT_PROGRESS
                and e.data.get("incident_id") == incident_id
                and e.data["state"] == state
            ]

        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(lambda: bool(found()))
        return found()[-1]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.api.aclose()


async def start(system: System) -> Run:
    run = Run(compose_operations(system.fleet, dispatch=SETTINGS))
    ready = asyncio.Event()

    async def collect() -> None:
        updates = run.api.updates()
        ready.set()
        async for item in updates:
            if isinstance(item, Event):
                async with run.changed:
                    run.events.append(item)
                    run.changed.notify_all()

    run.task = asyncio.create_task(collect(), name="test.events")
    await ready.wait()
    return run


@pytest.fixture
async def runs(system: System) -> AsyncIterator[list[Run]]:
    started: list[Run] = []
    try:
        yield started
    finally:
        for run in started:
            await run.stop()


def incident(scene: GeoPoint, priority: int = 1, kind: str = "accident") -> Incident:
    return Incident(
        id=f"restart-{next(_ids)}",
        kind=kind,
        position=GroundPoint(lat=scene.lat_deg, lon=scene.lon_deg),
        priority=priority,
        reported_at=datetime.now(UTC),
        actor=Actor(id="cc-desk-2", role=Role.COMMANDER),
    )


def takeoffs(system: System) -> int:
    return sum(1 for r in system.world.nest(NEST).ctx.recorder.all() if r.kind == "takeoff")


def orbits(system: System) -> int:
    return sum(
        1
        for r in system.world.nest(NEST).ctx.recorder.all()
        if r.kind == "mode" and r.data.get("mode") == "ORBIT"
    )


async def incident_rows(system: System, incident_id: str) -> list[CommandRow]:
    return [c for c in await system.fleet.audit.commands() if c["command_id"] == incident_id]


async def test_queued_incident_is_planned_again_after_a_restart(system: System, runs: list[Run]) -> None:
    first = await start(system)
    runs.append(first)
    verdict = first.api.authority.take(NEST, "pilot-li", "pilot", system.fleet.clock.wall())
    assert verdict.allowed
    inc = incident(destination(system.nest(NEST).home, 45.0, 400.0))
    first.api.report_incident(inc)
    queued = await first.milestone(inc.id, "queued", 10)
    assert "manual control" in str(queued["passed_over"])

    await first.stop()  # the controller stops; the pilot's control goes with it (held in memory)
    second = await start(system)
    runs.append(second)
    assert await incident_dispatcher(second.api).recover() == [inc.id]

    resumed = await second.milestone(inc.id, "resumed", 10)
    assert resumed["elapsed_s"] >= queued["elapsed_s"]  # measured from when it was first received
    await second.milestone(inc.id, "dispatched", 10)
    await second.milestone(inc.id, "on_scene", 120)
    assert takeoffs(system) == 1
    assert "received" not in second.states(inc.id)  # not received again: picked up

    rows = await incident_rows(system, inc.id)
    assert len(rows) == 1  # one record of the incident, before and after the restart
    codes = [o["code"] for o in rows[0]["outcomes"]]
    assert codes[0] == "received" and codes.index("queued") < codes.index("resumed") < codes.index(
        "dispatched"
    )
    launches = [
        c for c in await system.fleet.audit.commands(actor_id="dispatcher") if c["method"] == "launch"
    ]
    assert [c["command_id"].startswith(f"{inc.id}.r1.") for c in launches] == [True]


async def test_proposed_incident_waits_for_a_confirmation_again(system: System, runs: list[Run]) -> None:
    first = await start(system)
    runs.append(first)
    inc = incident(destination(system.nest(NEST).home, 200.0, 300.0), priority=4)
    first.api.report_incident(inc)
    await first.milestone(inc.id, "proposed", 10)

    await first.stop()
    second = await start(system)
    runs.append(second)
    assert await incident_dispatcher(second.api).recover() == [inc.id]
    resumed = await second.event(inc.id, "resumed", 10)
    assert "proposed before the restart" in resumed.message
    proposed = await second.event(inc.id, "proposed", 10)  # proposed again, to be confirmed again
    assert "waiting for a commander's confirmation" in proposed.message
    assert incident_dispatcher(second.api).check_confirm(inc.id, None) is None
    assert takeoffs(system) == 0 and system.nest(NEST).state.phase is not NestPhase.LAUNCHING

    incident_dispatcher(second.api).confirm(inc.id, None, "cc-desk-2")
    await second.milestone(inc.id, "confirmed", 10)
    await second.milestone(inc.id, "airborne", 60)
    assert takeoffs(system) == 1
    assert len(await incident_rows(system, inc.id)) == 1


async def test_on_scene_incident_is_followed_again_without_a_new_launch(
    system: System, runs: list[Run]
) -> None:
    first = await start(system)
    runs.append(first)
    inc = incident(destination(system.nest(NEST).home, 90.0, 400.0))
    first.api.report_incident(inc)
    await first.milestone(inc.id, "on_scene", 120)
    await system.wait(NEST, lambda c: orbits(system) == 1, 10)
    flight_id = system.nest(NEST).flight.flight_id  # type: ignore[union-attr]

    await first.stop()
    second = await start(system)
    runs.append(second)
    assert await incident_dispatcher(second.api).recover() == [inc.id]
    resumed = await second.event(inc.id, "resumed", 10)
    assert f"nest {NEST} still over the scene" in resumed.message and resumed.nest_id == NEST
    assert incident_dispatcher(second.api).serving(NEST) == inc.id  # reserved again for the incident
    assert takeoffs(system) == 1 and orbits(system) == 1  # nothing launched or commanded again
    assert system.nest(NEST).flight.flight_id == flight_id  # type: ignore[union-attr]

    await system.nest(NEST).return_home("operator")  # the drone leaves the scene: the incident closes
    closed = await second.event(inc.id, "closed", 30)
    assert "left the scene" in closed.message
    rows = await incident_rows(system, inc.id)
    assert len(rows) == 1
    assert rows[0]["outcomes"][-1]["outcome"] == "succeeded"
    assert [o["code"] for o in rows[0]["outcomes"]].count("on_scene") == 1
    assert await system.fleet.audit.open_incidents() == []


async def test_incident_whose_drone_landed_is_closed_with_the_reason(system: System, runs: list[Run]) -> None:
    first = await start(system)
    runs.append(first)
    inc = incident(destination(system.nest(NEST).home, 0.0, 300.0))
    first.api.report_incident(inc)
    await first.milestone(inc.id, "on_scene", 120)

    await first.stop()
    await system.nest(NEST).return_home("operator")  # while no dispatcher runs
    await system.wait(NEST, lambda c: c.flight is None and c.state.phase in DOCKED, 180)

    second = await start(system)
    runs.append(second)
    assert await incident_dispatcher(second.api).recover() == [inc.id]
    closed = await second.event(inc.id, "closed", 10)
    assert "closed after a controller restart: no drone flies flight" in closed.message
    assert incident_dispatcher(second.api).serving(NEST) is None
    rows = await incident_rows(system, inc.id)
    assert len(rows) == 1 and rows[0]["outcomes"][-1]["outcome"] == "succeeded"
    assert takeoffs(system) == 1

    # the same report delivered again (MQTT redelivers after a restart): recorded already, not served
    outcomes_before = len(rows[0]["outcomes"])
    await second.stop()
    third = await start(system)  # (a run that has not loaded it: the closed one is not loaded)
    runs.append(third)
    third.api.report_incident(inc)
    await system.wait(NEST, lambda c: inc.id not in incident_dispatcher(third.api).incident_ids(), 10)
    rows = await incident_rows(system, inc.id)
    assert len(rows) == 1 and len(rows[0]["outcomes"]) == outcomes_before
    assert incident_dispatcher(third.api).serving(NEST) is None and takeoffs(system) == 1


# the Nanhu bridge avenue near nest 3, glazed (as in test_black_ice_scenario)
AVENUE_LAT = 43.8548
ICE_START, ICE_END = GeoPoint(AVENUE_LAT, 125.2995), GeoPoint(AVENUE_LAT, 125.3025)


async def test_the_lookout_watches_the_followed_drone_after_a_restart(
    system: System, runs: list[Run], tmp_path: Path
) -> None:
    for sim in system.world.nests.values():
        sim.camera.video_port = allocate_port_base(span=1)
        sim.set_weather(
            road_temp_c=-6.0, air_temp_c=-4.0, precipitation_mmph=1.5, precipitation=float(Precipitation.SNOW)
        )
    system.world.scene.ice.append(
        IceStretch(ICE_START.lat_deg, ICE_START.lon_deg, ICE_END.lat_deg, ICE_END.lon_deg, width_m=10.0)
    )
    first = await start(system)  # a run that stops before its lookout saw anything (none here)
    runs.append(first)
    inc = incident(GeoPoint(AVENUE_LAT, 125.3010), kind="black_ice")
    first.api.report_incident(inc)
    await first.milestone(inc.id, "on_scene", 120)
    await first.stop()

    async with open_video(system.fleet, None) as hub:
        second = await start(system)
        runs.append(second)
        lookout = Lookout(second.api, hub, tmp_path / "snapshots", BlackIceConfig())
        incident_dispatcher(second.api).attach_lookout(lookout)
        assert await incident_dispatcher(second.api).recover() == [inc.id]
        await second.milestone(inc.id, "resumed", 10)
        finding = await second.event(inc.id, "finding", 180)
        assert (
            finding.data["finding"] == "black_ice" and finding.data["watched_because"] == "black_ice reported"
        )
        spot = GeoPoint(finding.data["finding_lat"], finding.data["finding_lon"])
        assert distance_to_segment_m(spot, ICE_START, ICE_END) < 8.0
        assert takeoffs(system) == 1  # the drone that was there, not a new one
        await second.stop()  # before the hub closes under the lookout
    rows = await incident_rows(system, inc.id)
    codes = [o["code"] for o in rows[0]["outcomes"]]
    assert len(rows) == 1 and codes.index("on_scene") < codes.index("resumed") < codes.index("finding")
