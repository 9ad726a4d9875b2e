"""Incident dispatch against the simulator (10x): the nest the time-to-scene model names serves the
incident, milestones are published with their times and stored; a second simultaneous incident goes
to the next best nest; a nest in no-go weather or under a pilot's control is passed over with the
reason; below the automatic priority the dispatch waits for a commander's confirmation.

Nests 7 (Hongqi Street), 3 (Nanhu Park, 1.5 km south-east of 7) and 13 (High-tech Zone, 4 km south).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from dronectl.app.compose import compose_operations, incident_dispatcher
from dronectl.domain.dispatch import Candidate, DispatchPlan, DispatchSettings, Mode, SceneRequest, plan
from dronectl.domain.geo import GeoPoint, destination
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.models import (
    Actor,
    Event,
    EventKind,
    GroundPoint,
    Incident,
    IncidentConfirmArgs,
    Method,
    ProgressState,
    Role,
)
from dronectl.operations.port import Command
from tests.system.conftest import System

NESTS = [3, 7, 13]
SETTINGS = DispatchSettings(replan_period_s=0.5)
_ids = itertools.count(1)


@pytest.fixture
def nest_ids() -> list[int]:
    return NESTS


@dataclass
class Dispatch:
    system: System
    api: FleetOperations
    events: list[Event]

    def progress(self, incident_id: str) -> list[dict[str, Any]]:
        return [
            e.data
            for e in self.events
            if e.kind is EventKind.INCIDENT_PROGRESS and e.data.get("incident_id") == incident_id
        ]

    def states(self, incident_id: str) -> list[str]:
        return [d["state"] for d in self.progress(incident_id)]

    async def milestone(self, incident_id: str, state: str, timeout_s: float = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                found = [d for d in self.progress(incident_id) if d["state"] == state]
                if found:
                    return found[-1]
                await asyncio.sleep(0.05)

    def expected_plan(self, scene: GeoPoint, priority: int) -> DispatchPlan:
        """The time-to-scene model on the controllers' current snapshots, computed apart."""
        candidates = [
            Candidate(c.snapshot(), tuple(c.fleet.others(c.nest_id)))
            for c in self.system.fleet.controllers.values()
        ]
        return plan(SceneRequest("expected", scene, priority), candidates, self.system.fleet.policy, SETTINGS)


def incident(scene: GeoPoint, priority: int = 1, kind: str = "accident") -> Incident:
    return Incident(
        id=f"inc-{next(_ids)}",
        kind=kind,
        position=GroundPoint(lat=scene.lat_deg, lon=scene.lon_deg),
        priority=priority,
        text="rear-end collision, two cars",
        reported_at=datetime.now(UTC),
        actor=Actor(id="cc-desk-2", role=Role.COMMANDER),
    )


@pytest.fixture
async def dispatch(system: System) -> AsyncIterator[Dispatch]:
    api = compose_operations(system.fleet, dispatch=SETTINGS)
    events: list[Event] = []

    async def collect() -> None:
        async for item in api.updates():
            if isinstance(item, Event):
                events.append(item)

    task = asyncio.create_task(collect(), name="test.events")
    await asyncio.sleep(0)
    try:
        yield Dispatch(system, api, events)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await api.aclose()


def launched(system: System, nest_id: int) -> bool:
    return any(r.kind == "cover.opening" for r in system.world.nest(nest_id).ctx.recorder.all())


async def test_incident_served_by_the_nest_the_model_names_with_milestones_stored(dispatch: Dispatch) -> None:
    scene = destination(dispatch.system.nest(7).home, 300.0, 600.0)
    expected = dispatch.expected_plan(scene, 1)
    assert expected.chosen is not None and expected.chosen.nest_id == 7
    inc = incident(scene, priority=1)
    dispatch.api.report_incident(inc)

    dispatched = await dispatch.milestone(inc.id, "dispatched", 10)
    served_by = incident_dispatcher(dispatch.api).current_plan(inc.id)
    assert served_by is not None and served_by.chosen is not None
    assert served_by.chosen.nest_id == expected.chosen.nest_id == 7  # the model's choice is the one flown
    assert dispatched["mode"] == "launch" and dispatched["target_s"] == 60.0 and dispatched["met"] is True
    assert dispatched["predicted_time_to_scene_s"] == pytest.approx(expected.chosen.time_to_scene_s, abs=5.0)
    received = dispatch.progress(inc.id)[0]
    assert received["state"] == "received" and received["options"][0]["nest_id"] == 7

    airborne = await dispatch.milestone(inc.id, "airborne", 60)
    on_scene = await dispatch.milestone(inc.id, "on_scene", 90)
    assert airborne["target_s"] == 180.0 and airborne["met"] is True
    assert on_scene["target_s"] == 300.0 and on_scene["met"] is True
    assert dispatched["elapsed_s"] < airborne["elapsed_s"] < on_scene["elapsed_s"]
    # the prediction holds within reason: readiness and the leg as flown by the simulated PX4
    assert on_scene["elapsed_s"] == pytest.approx(expected.chosen.time_to_scene_s, rel=0.2)
    assert (
        launched(dispatch.system, 7)
        and not launched(dispatch.system, 3)
        and not launched(dispatch.system, 13)
    )

    # orbiting the scene
    sim = dispatch.system.world.nest(7)

    def orbiting() -> bool:
        return any(r.kind == "mode" and r.data.get("mode") == "ORBIT" for r in sim.ctx.recorder.all())

    await dispatch.system.wait(7, lambda c: orbiting(), 10)

    # video live: the hook the video hub calls when the nest's stream reaches the command center
    incident_dispatcher(dispatch.api).video_started(7)
    video = await dispatch.milestone(inc.id, "video_live", 10)
    assert video["elapsed_s"] >= on_scene["elapsed_s"]

    # stored: the incident with its milestones, the automated commands with the automation as actor
    audit = dispatch.system.fleet.audit
    row = await audit.command(inc.id)
    assert row is not None and row["method"] == "incident" and row["actor_id"] == "cc-desk-2"
    assert row["args"]["priority"] == 1 and row["args"]["kind"] == "accident"
    codes = [o["code"] for o in row["outcomes"]]
    assert codes[:1] == ["received"]
    assert [c for c in codes if c in ("dispatched", "airborne", "on_scene", "video_live")] == [
        "dispatched",
        "airborne",
        "on_scene",
        "video_live",
    ]
    mine = await audit.commands(actor_id="dispatcher")
    assert [(c["method"], c["nest_id"], c["actor_role"]) for c in mine] == [
        ("launch", 7, "automation"),
        ("orbit", 7, "automation"),
    ]
    assert [o["outcome"] for o in mine[0]["outcomes"]][-1] == "succeeded"
    flight_id = dispatch.system.nest(7).flight.flight_id  # type: ignore[union-attr]
    detail = await audit.flight(flight_id)
    assert detail is not None
    kinds = [e["kind"] for e in detail["events"]]
    assert {"incident.airborne", "incident.on_scene", "incident.video_live"} <= set(kinds)


async def test_second_simultaneous_incident_goes_to_the_next_best_nest(dispatch: Dispatch) -> None:
    home7 = dispatch.system.nest(7).home
    west, east = destination(home7, 270.0, 500.0), destination(home7, 110.0, 500.0)
    first_plan, second_plan = dispatch.expected_plan(west, 1), dispatch.expected_plan(east, 1)
    assert first_plan.chosen is not None and second_plan.chosen is not None
    assert first_plan.chosen.nest_id == second_plan.chosen.nest_id == 7  # both would want nest 7
    next_best = second_plan.options[1].nest_id
    assert next_best == 3

    a, b = incident(west), incident(east)
    dispatch.api.report_incident(a)
    dispatch.api.report_incident(b)
    da = await dispatch.milestone(a.id, "dispatched", 10)
    db = await dispatch.milestone(b.id, "dispatched", 10)
    served = incident_dispatcher(dispatch.api).current_plan(b.id)
    assert served is not None and served.chosen is not None and served.chosen.nest_id == next_best
    passed_7 = next(p for p in served.passed_over if p.nest_id == 7)
    assert passed_7.reasons[0].code == "assigned" and a.id in passed_7.reasons[0].message
    assert da["command_id"].endswith(".n7") and db["command_id"].endswith(f".n{next_best}")
    await dispatch.milestone(a.id, "on_scene", 90)
    await dispatch.milestone(b.id, "on_scene", 90)
    assert launched(dispatch.system, 7) and launched(dispatch.system, 3) and not launched(dispatch.system, 13)


async def test_nest_in_no_go_weather_is_passed_over_with_the_reason(dispatch: Dispatch) -> None:
    system = dispatch.system
    limit = system.config.weather_limits.max_wind_mps
    system.world.nest(7).set_weather(wind_speed_mps=limit + 4.0, wind_gust_mps=limit + 6.0)
    await system.wait(7, lambda c: c.dock.weather is not None and c.dock.weather.wind_speed_mps > limit, 10)

    scene = destination(system.nest(7).home, 300.0, 600.0)
    expected = dispatch.expected_plan(scene, 1)
    assert expected.chosen is not None and expected.chosen.nest_id != 7
    inc = incident(scene)
    dispatch.api.report_incident(inc)
    received = await dispatch.milestone(inc.id, "received", 10)
    (passed,) = [p for p in received["passed_over"] if p["nest_id"] == 7]
    assert passed["reasons"][0]["code"] == "wind"
    assert f"above the {limit:.1f} m/s limit" in passed["reasons"][0]["message"]
    await dispatch.milestone(inc.id, "dispatched", 10)
    served = incident_dispatcher(dispatch.api).current_plan(inc.id)
    assert (
        served is not None and served.chosen is not None and served.chosen.nest_id == expected.chosen.nest_id
    )
    await dispatch.milestone(inc.id, "airborne", 60)
    assert not launched(system, 7) and launched(system, expected.chosen.nest_id)


async def test_a_nest_a_pilot_holds_is_left_alone(dispatch: Dispatch) -> None:
    system = dispatch.system
    verdict = dispatch.api.authority.take(7, "pilot-li", "pilot", system.fleet.clock.wall())
    assert verdict.allowed
    scene = destination(system.nest(7).home, 300.0, 600.0)
    inc = incident(scene)
    dispatch.api.report_incident(inc)
    received = await dispatch.milestone(inc.id, "received", 10)
    (passed,) = [p for p in received["passed_over"] if p["nest_id"] == 7]
    assert passed["reasons"][0]["code"] == "manual_control" and "pilot-li" in passed["reasons"][0]["message"]
    dispatched = await dispatch.milestone(inc.id, "dispatched", 10)
    assert not dispatched["command_id"].endswith(".n7")


async def test_below_the_automatic_priority_it_waits_for_a_commanders_confirmation(
    dispatch: Dispatch,
) -> None:
    system = dispatch.system
    scene = destination(system.nest(7).home, 300.0, 600.0)
    inc = incident(scene, priority=4, kind="congestion")
    dispatch.api.report_incident(inc)
    proposed = await dispatch.milestone(inc.id, "proposed", 10)
    assert "waiting for a commander's confirmation" in next(
        e.message for e in dispatch.events if e.data.get("state") == "proposed"
    )
    assert proposed["options"][0]["nest_id"] == 7
    await asyncio.sleep(1.0)  # ten simulated seconds: nothing may move while it waits
    assert "dispatched" not in dispatch.states(inc.id)
    assert not any(launched(system, n) for n in NESTS)

    # the commander picks nest 3 instead of the proposed 7
    now = system.fleet.clock.wall()
    confirm = Command(
        id="confirm-1",
        method=Method.INCIDENT_CONFIRM,
        nest_id=None,
        args=IncidentConfirmArgs(incident_id=inc.id, nest=3),
        actor_id="cmdr-zhao",
        actor_role=Role.COMMANDER,
        issued_at_unix_s=now,
        deadline_unix_s=now + 30,
        received_at_unix_s=now,
    )
    updates = [u async for u in dispatch.api.execute(confirm)]
    assert [u.state for u in updates] == [ProgressState.ACCEPTED, ProgressState.SUCCEEDED]
    assert updates[-1].result is not None and updates[-1].result["nest_id"] == 3
    await dispatch.milestone(inc.id, "confirmed", 10)
    dispatched = await dispatch.milestone(inc.id, "dispatched", 10)
    assert dispatched["command_id"].endswith(".n3")
    await system.wait(3, lambda c: launched(system, 3), 10)
    assert not launched(system, 7)

    # confirming again is refused, with the reason
    again = Command(**{**confirm.__dict__, "id": "confirm-2"})
    (refusal,) = [u async for u in dispatch.api.execute(again)]
    assert refusal.state is ProgressState.FAILED and "not waiting for a confirmation" in refusal.reasons[0]
    row = await system.fleet.audit.command(inc.id)
    assert row is not None
    assert [o["code"] for o in row["outcomes"]][:4] == ["received", "proposed", "confirmed", "dispatched"]
    assert Mode.LAUNCH.value == dispatched["mode"]
