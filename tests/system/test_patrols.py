"""Patrols against the simulator (10x): the whole service (open_service + FleetOperations +
PatrolService), real MAVLink, the simulator's weather and camera.

- a congestion window over two stretches: the stretch where the simulator slows the traffic
  reports a higher level, published as events and retained on ``{root}/traffic/{stretch}`` over a
  real Mosquitto;
- frost and snow at nest 3's weather station start a black-ice patrol flown by nest 3 (the
  nearest): the mission is stored, its legs are go-to commands along the stretch, audited with
  the actor ``patrol``;
- a pilot taking control of the nest ends the mission at once, with the reason;
- a restart of the controller: a mission whose drone still flies is resumed on the same flight,
  one whose drone is gone is ended with the reason.

Nests 3 (Nanhu Park) and 7 (Hongqi Street, 1.3 km north-west); the stretches lie on the
simulator's avenues beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dronectl.app.compose import compose_operations
from dronectl.automations.patrols.service import PatrolService
from dronectl.automations.patrols.steps import PatrolSettings
from dronectl.automations.patrols.store import MissionStore
from dronectl.domain.clock import ScaledClock
from dronectl.domain.config import (
    BlackIceConfig,
    CongestionConfig,
    CronWindowConfig,
    PatrolsConfig,
    RoadStretchConfig,
)
from dronectl.domain.geo import GeoPoint
from dronectl.domain.nest_state import NestPhase
from dronectl.domain.patrols.missions import Mission, MissionKind, MissionState
from dronectl.domain.patrols.route import Route
from dronectl.nest.service import open_service
from dronectl.nest.supervisor import Backoff
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.models import (
    Actor,
    ErrorCode,
    Event,
    EventKind,
    GroundPoint,
    Incident,
    Method,
    NoArgs,
    PatrolListArgs,
    PatrolStartArgs,
    PatrolStopArgs,
    ProgressState,
    Role,
)
from dronectl.operations.port import Command, CommandUpdate
from dronectl.transports.mqtt.service import serve_api
from dronectl.transports.mqtt.settings import MqttSettings
from sitl.camera import SlowTraffic
from sitl.environment import FaultKind, Precipitation
from sitl.world import SimWorld, make_sites
from tests.api.command_center import CommandCenter
from tests.identity.accounts import write_users
from tests.system.conftest import System, system_config
from tests.system.test_mqtt_loop import broker_port

__all__ = ["broker_port"]

NANHU = RoadStretchConfig(id="nanhu", name="Nanhu Bridge", points=[(43.8548, 125.2920), (43.8548, 125.3040)])
HONGQI = RoadStretchConfig(
    id="hongqi", name="Hongqi Street", points=[(43.8592, 125.2860), (43.8724, 125.2860)]
)
ALWAYS = CronWindowConfig(cron="* * * * *", duration_min=24 * 60)  # a window that is always open
SETTINGS = PatrolSettings(tick_s=2.0, sample_window_s=20.0, sample_period_s=30.0, watch_s=5.0, replan_s=5.0)
LEVELS = ["free", "light", "heavy", "standstill"]
_ids = itertools.count(1)


@pytest.fixture
def nest_ids() -> list[int]:
    return [3, 7]


def patrols(*, black_ice: list[str] = (), congestion: list[str] = ()) -> PatrolsConfig:  # type: ignore[assignment]
    return PatrolsConfig(
        stretches=[NANHU, HONGQI],
        black_ice=BlackIceConfig(stretches=list(black_ice)),
        congestion=CongestionConfig(stretches=list(congestion), schedule=[ALWAYS]),
    )


@dataclass
class Patrols:
    system: System
    api: FleetOperations
    service: PatrolService
    events: list[Event]

    def mission(self, predicate: Callable[[Mission], bool] = lambda m: True) -> Mission | None:
        return next((m for m in reversed(self.service.missions()) if predicate(m)), None)

    async def until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Until ``predicate`` holds, re-checked on every event the service publishes."""
        async with asyncio.timeout(timeout_s):
            async for _ in _ticks(self.api):
                if predicate():
                    return
        raise AssertionError(what)  # pragma: no cover - the timeout raises first

    def congestion(self, stretch_id: str) -> list[dict[str, Any]]:
        return [
            e.data
            for e in self.events
            if e.kind is EventKind.CONGESTION and e.data.get("stretch_id") == stretch_id
        ]

    async def execute(
        self, method: Method, args: Any, actor: str, role: Role, nest: int | None = None
    ) -> list[CommandUpdate]:
        now = self.system.fleet.clock.wall()
        command = Command(
            id=f"test-{next(_ids)}-{method.value}",
            method=method,
            nest_id=nest,
            args=args,
            actor_id=actor,
            actor_role=role,
            issued_at_unix_s=now,
            deadline_unix_s=now + 30.0,
            received_at_unix_s=now,
        )
        return [u async for u in self.api.execute(command)]


async def _ticks(api: FleetOperations) -> AsyncIterator[None]:
    """Yields on every state change or event (and at least every 0.1 s: the API's tick)."""
    yield None
    async for _ in api.updates():
        yield None


def relaxed_link_failsafe(world: SimWorld) -> None:
    """PX4 returns home after COM_DL_LOSS_T s without the ground station's heartbeat: 10 simulated
    seconds, one real second at 10x. Other test runs share this machine's two cores, and a loop
    stalled for a second must not send a patrol home: 60 s here (6 s real)."""
    for nest in world.nests.values():
        nest.autopilot.params.set("COM_DL_LOSS_T", 60)


@contextlib.asynccontextmanager
async def running(
    system: System, config: PatrolsConfig, tmp_path: Path, lookout: bool = False
) -> AsyncIterator[Patrols]:
    relaxed_link_failsafe(system.world)
    api = compose_operations(system.fleet)
    events: list[Event] = []

    async def collect() -> None:
        async for item in api.updates():
            if isinstance(item, Event):
                events.append(item)

    async with contextlib.AsyncExitStack() as stack:
        seer = None
        if lookout:
            from dronectl.automations.lookout import Lookout
            from dronectl.video import open_video
            from tests.conftest import allocate_port_base

            for sim in system.world.nests.values():
                sim.camera.video_port = allocate_port_base(span=1)
            hub = await stack.enter_async_context(open_video(system.fleet, None))
            seer = Lookout(api, hub, tmp_path / "snapshots", config.black_ice)
        service = PatrolService(api, config, seer, settings=SETTINGS)
        tasks = [
            asyncio.create_task(collect(), name="test.events"),
            asyncio.create_task(service.run(), name="test.patrols"),
        ]
        try:
            yield Patrols(system, api, service, events)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await api.aclose()


async def patrol_commands(system: System, nest_id: int, method: str | None = None) -> list[dict[str, Any]]:
    rows = await system.fleet.audit.commands(nest_id=nest_id, actor_id="patrol")
    return [dict(r) for r in rows if method is None or r["method"] == method]


# --- congestion ----------------------------------------------------------------------------------


READINGS = 3


def _median_reading(readings: list[dict[str, Any]]) -> dict[str, Any]:
    """The reading of the median level among an odd number of readings."""
    return sorted(readings, key=lambda r: LEVELS.index(r["level"]))[len(readings) // 2]


async def test_congestion_patrol_reports_a_higher_level_where_traffic_is_slow(
    system: System, tmp_path: Path, broker_port: int
) -> None:
    hot = Route.of(HONGQI).point_at(Route.of(HONGQI).length_m / 2)
    system.world.scene.slow_traffic.append(
        SlowTraffic(hot.lat_deg, hot.lon_deg, radius_m=300.0, speed_factor=0.1)
    )
    root = f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"
    cc = CommandCenter("127.0.0.1", broker_port)
    await cc.connect()
    await cc.subscribe(f"{root}/traffic/+")
    try:
        async with running(system, patrols(congestion=["nanhu", "hongqi"]), tmp_path, lookout=True) as p:
            settings = MqttSettings(broker=f"mqtt://127.0.0.1:{broker_port}", root=root, reconnect_max_s=2.0)
            users_file = tmp_path / "users"
            write_users(users_file)
            api_task = asyncio.create_task(
                serve_api(
                    settings,
                    p.api,
                    outcomes=AuditOutcomes(system.fleet.audit),
                    version="test",
                    users_file=users_file,
                )
            )
            try:
                # three readings of each stretch: one reading measured from a few seconds of video
                # can land a level off (traffic bunches; frame timing at 10x), the median may not
                await p.until(
                    lambda: min(len(p.congestion("nanhu")), len(p.congestion("hongqi"))) >= READINGS,
                    240.0,
                    f"{READINGS} congestion readings of both stretches",
                )
                slow = _median_reading(p.congestion("hongqi")[:READINGS])
                free = _median_reading(p.congestion("nanhu")[:READINGS])
                assert LEVELS.index(slow["level"]) > LEVELS.index(free["level"]), (
                    p.congestion("hongqi")[:READINGS],
                    p.congestion("nanhu")[:READINGS],
                )
                for data in (slow, free):
                    assert data["density_veh_per_km"] >= 0 and 0.0 <= data["stopped_fraction"] <= 1.0
                if slow["level"] == "standstill":  # standing traffic is reported as an incident
                    await p.until(
                        lambda: any(
                            e.kind is EventKind.INCIDENT_PROGRESS and e.data.get("kind") == "congestion"
                            for e in p.events
                        ),
                        10.0,
                        "a congestion incident",
                    )
                # both missions were started by the schedule window, each flown by its own nest
                flown = {m.stretch_id: m.nest_id for m in p.service.missions()}
                assert flown == {"nanhu": 3, "hongqi": 7}
                # and published, retained, on the traffic topics
                for stretch in ("hongqi", "nanhu"):
                    got = await cc.wait_for(f"{root}/traffic/{stretch}", lambda m: m["kind"] == "congestion")
                    assert got["data"]["stretch_id"] == stretch and got["data"]["level"] in LEVELS
            finally:
                api_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await api_task
    finally:
        for stretch in ("hongqi", "nanhu"):  # leave no retained message behind on the broker
            await cc.publish(f"{root}/traffic/{stretch}", b"", retain=True)
        cc.close()


# --- black ice -----------------------------------------------------------------------------------


async def test_frost_and_snow_start_a_black_ice_patrol_from_the_nearest_nest(
    system: System, tmp_path: Path
) -> None:
    async with running(system, patrols(black_ice=["nanhu"]), tmp_path) as p:
        await p.service.evaluate()
        assert p.service.missions() == []  # dry and mild: nothing to watch
        system.world.nest(3).set_weather(
            road_temp_c=-3.0,
            air_temp_c=-2.0,
            humidity_pct=92.0,
            precipitation_mmph=1.0,
            precipitation=Precipitation.SNOW,
        )
        await p.until(lambda: p.mission() is not None, 30.0, "a black-ice mission")
        mission = p.mission()
        assert mission is not None and mission.kind is MissionKind.BLACK_ICE and mission.stretch_id == "nanhu"
        assert "ice risk at nest 3's station" in mission.trigger and not mission.manual
        await p.until(lambda: (p.mission() or mission).leg >= 2, 90.0, "two legs flown")
        m = p.mission()
        assert m is not None and m.nest_id == 3 and m.state is MissionState.PATROLLING
        flight = system.nest(3).flight
        assert flight is not None and m.flight_id == flight.flight_id
        # stored, transition by transition
        store = MissionStore(system.fleet.audit)
        history = await store.history(m.id)
        states = [h.state for h in history]
        assert states[:3] == [MissionState.PLANNED, MissionState.LAUNCHING, MissionState.PATROLLING]
        assert [h.leg for h in history][-1] >= 2
        # flown as the automation: a launch and go-to legs along the stretch, each audited
        launches = await patrol_commands(system, 3, "launch")
        gotos = await patrol_commands(system, 3, "goto")
        assert len(launches) == 1 and len(gotos) >= 2
        assert {r["actor_role"] for r in launches + gotos} == {"automation"}
        route = Route.of(NANHU)
        for row in gotos:
            target = row["args"]["target"]
            _, off_m = route.nearest(GeoPoint(target["lat"], target["lon"]))
            assert off_m < 1.0, f"leg target {target} is off the stretch"
            assert row["outcomes"][0]["outcome"] == "accepted"
        assert any(o["outcome"] == "succeeded" for o in gotos[0]["outcomes"])
        # the mission itself is in the audit trail with the automation as actor
        record = await system.fleet.audit.command(m.id)
        assert record is not None and (record["actor_id"], record["actor_role"]) == ("patrol", "automation")
        assert [o["code"] for o in record["outcomes"]][:3] == ["planned", "launching", "patrolling"]
        # nest 7, farther away, stayed in its dock
        assert not system.nest(7).state.flying
        # nest 3's battery drains five times too fast: before it must leave, a relief (nest 7)
        # comes to the stretch and carries on, then nest 3 is sent home
        system.world.nest(3).inject(FaultKind.BATTERY_DRAIN, 5.0)

        def relieved() -> bool:
            now = p.mission() or m
            return now.nest_id == 7 and now.state is MissionState.PATROLLING

        await p.until(relieved, 120.0, "handed over to nest 7")
        handover = [(h.state, h.nest_id, h.relief_nest_id) for h in await store.history(m.id)]
        assert (MissionState.HANDING_OVER, 3, 7) in handover
        assert any(h.reason == "handed over from nest 3 to nest 7" for h in await store.history(m.id))
        relief = (p.mission() or m).flight_id
        assert relief is not None and relief == (system.nest(7).flight or flight).flight_id
        assert len(await patrol_commands(system, 7, "launch")) == 1
        assert len(await patrol_commands(system, 3, "return_home")) == 1
        await system.wait(3, lambda c: c.state.phase is not NestPhase.ON_STATION, 30.0)
        assert system.nest(3).state.phase in (NestPhase.RETURNING, NestPhase.LANDING, NestPhase.POST_FLIGHT)
        # the weather clears: the automatic mission ends and its drone comes home
        system.world.nest(3).set_weather(
            road_temp_c=4.0,
            air_temp_c=5.0,
            humidity_pct=60.0,
            precipitation_mmph=0.0,
            precipitation=Precipitation.NONE,
        )
        await p.until(lambda: not (p.mission() or m).active, 120.0, "the mission ended")
        ended = p.mission()
        assert ended is not None and ended.reason.startswith("ice risk over")
        assert not system.nest(7).state.flying


async def test_an_incident_retasks_the_drone_and_a_pilot_taking_control_ends_the_mission(
    system: System, tmp_path: Path
) -> None:
    async with running(system, patrols(), tmp_path) as p:
        started = await p.execute(
            Method.PATROL_START,
            PatrolStartArgs(kind="black_ice", stretch_id="nanhu"),
            "officer-7",
            Role.PILOT,
        )
        assert started[-1].state is ProgressState.SUCCEEDED, started[-1]
        assert started[-1].result is not None
        mission_id = started[-1].result["mission"]["id"]
        assert p.service.mission(mission_id) is not None
        # bad requests are refused with the reason and change nothing
        for args, why in (
            (
                PatrolStartArgs(kind="black_ice", stretch_id="nanhu"),
                f"already patrolled by mission {mission_id}",
            ),
            (PatrolStartArgs(kind="congestion", stretch_id="ring-road"), "no road stretch 'ring-road'"),
        ):
            refused = await p.execute(Method.PATROL_START, args, "officer-7", Role.PILOT)
            assert [u.state for u in refused] == [ProgressState.FAILED]
            assert refused[0].error is ErrorCode.REFUSED and why in refused[0].reasons[0], refused[0]
        refused = await p.execute(
            Method.PATROL_STOP, PatrolStopArgs(mission_id="nope"), "officer-7", Role.PILOT
        )
        assert refused[0].error is ErrorCode.REFUSED and refused[0].reasons == ("no active mission 'nope'",)
        listed = await p.execute(
            Method.PATROL_LIST, PatrolListArgs(active_only=True), "officer-7", Role.PILOT
        )
        assert listed[-1].result is not None
        assert [x["id"] for x in listed[-1].result["missions"]] == [mission_id]
        await p.until(lambda: (p.service.mission(mission_id) or _none()).leg >= 1, 90.0, "a leg flown")
        # an urgent incident beside the stretch takes the patrol's drone (it is right there); the
        # mission carries on with the next nest
        scene = Route.of(NANHU).point_at(100.0)
        p.api.report_incident(
            Incident(
                id="inc-crash-1",
                kind="traffic_accident",
                position=GroundPoint(lat=scene.lat_deg, lon=scene.lon_deg),
                priority=1,
                reported_at=datetime.now(UTC),
                actor=Actor(id="cc-desk-2", role=Role.COMMANDER),
            )
        )
        await p.until(
            lambda: (
                (p.service.mission(mission_id) or _none()).nest_id == 7
                and (p.service.mission(mission_id) or _none()).state is MissionState.PATROLLING
            ),
            90.0,
            "the mission flown by nest 7",
        )
        history = await MissionStore(system.fleet.audit).history(mission_id)
        lost = [h.reason for h in history if h.state is MissionState.PLANNED and h.attempts == 1]
        assert lost and lost[0].startswith("nest 3 lost: retasked to incident inc-crash-1"), lost
        # the pilot takes nest 7: the automation lets go at once
        taken = await p.execute(Method.CONTROL_TAKE, NoArgs(), "officer-9", Role.PILOT, nest=7)
        assert taken[-1].state is ProgressState.SUCCEEDED
        at = system.fleet.clock.wall()
        await p.until(lambda: not (p.service.mission(mission_id) or _none()).active, 2.0, "ended at once")
        m = p.service.mission(mission_id)
        assert m is not None and m.reason == "nest 7 taken over by officer-9 (pilot)"
        assert system.nest(7).state.flying  # the drone is the pilot's now, not sent anywhere
        # the automation sent nothing to nest 7 after the take-over
        assert [r for r in await patrol_commands(system, 7) if r["at_unix_s"] > at] == []


def _none() -> Mission:
    return Mission("none", MissionKind.BLACK_ICE, "none", MissionState.ENDED, 0.0, "")


# --- restart -------------------------------------------------------------------------------------


async def test_missions_survive_a_restart_of_the_controller(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    config = system_config(port_base, [3])
    audit_path = tmp_path / "audit.sqlite3"
    speed = 10.0

    @contextlib.asynccontextmanager
    async def controller() -> AsyncIterator[System]:
        async with open_service(
            config,
            audit_path,
            clock=ScaledClock(speed),
            backoff=Backoff(first_s=0.2, max_s=2.0),
            heartbeat_interval_s=1.0 / speed,
        ) as fleet:
            s = System(config, world, fleet, audit_path, speed)
            await s.wait(
                3, lambda c: c.state.phase is not NestPhase.OFFLINE and c.dock.weather is not None, 60.0
            )
            yield s

    async with SimWorld(make_sites(config), speed=speed) as world:
        async with controller() as first:
            # a mission an earlier run left unfinished, whose drone is gone (it is docked now)
            ghost = Mission(
                "patrol-ice-nanhu-old",
                MissionKind.BLACK_ICE,
                "nanhu",
                MissionState.PATROLLING,
                0.0,
                "x",
                nest_id=3,
                flight_id="f-gone",
            )
            await MissionStore(first.fleet.audit).save(ghost, first.fleet.clock.wall())
            async with running(first, patrols(), tmp_path) as p:
                await p.until(
                    lambda: not (p.service.mission(ghost.id) or ghost).active, 30.0, "old mission ended"
                )
                old = p.service.mission(ghost.id)
                assert old is not None and not old.active
                assert old.reason.startswith("controller restarted: nest 3 drone no longer flying"), (
                    old.reason
                )
                m = await p.service.start(MissionKind.BLACK_ICE, "nanhu", actor_id="officer-7")
                await p.until(lambda: (p.service.mission(m.id) or _none()).leg >= 1, 90.0, "a leg flown")
                flight = first.nest(3).flight
                assert flight is not None
                leg_before = (p.service.mission(m.id) or _none()).leg
        # the controller is gone (its tasks cancelled, nothing ended): the drone flies on
        assert world.nest(3).airborne()
        async with controller() as second, running(second, patrols(), tmp_path) as p2:
            await p2.until(lambda: p2.service.mission(m.id) is not None, 30.0, "the mission recovered")
            resumed = p2.service.mission(m.id)
            assert resumed is not None and resumed.active and resumed.flight_id == flight.flight_id
            await p2.until(
                lambda: (p2.service.mission(m.id) or _none()).leg > leg_before, 60.0, "legs flown again"
            )
            now_flying = second.nest(3).flight
            assert now_flying is not None and now_flying.flight_id == flight.flight_id
            assert [x.id for x in await MissionStore(second.fleet.audit).unfinished()] == [m.id]
            resumed_events = [e for e in p2.events if e.kind is EventKind.PATROL and "resumed" in e.message]
            assert resumed_events and resumed_events[0].data["id"] == m.id
        takeoffs = [r for r in world.nest(3).ctx.recorder.all() if r.kind == "takeoff"]
        assert len(takeoffs) == 1  # never launched again
