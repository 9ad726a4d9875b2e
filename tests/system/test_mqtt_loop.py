"""The whole loop over MQTT only: a plain paho-mqtt client in the role of the command center, a
real Mosquitto, the real service (open_service + serve_api + FleetOperations) and the simulator
at 10x. Asserted from what the command center receives, the simulator's records and the audit store.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.mavlink import dronectl_v20 as mav
from dronectl.app.compose import compose_operations
from dronectl.domain.geo import destination
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.transports.mqtt.service import serve_api
from dronectl.transports.mqtt.settings import MqttSettings
from sitl.nest import SimNest
from tests.api.command_center import CommandCenter, request
from tests.api.conftest import Mosquitto, _listening, free_tcp_port, mosquitto_binary
from tests.identity.accounts import write_users
from tests.system.conftest import System

NEST = 3
NO_FLY_TARGET = {"lat": 43.8920, "lon": 125.3315, "alt_m": 60.0}  # Provincial government compound
_DRONE_COMMANDS = {
    mav.MAV_CMD_COMPONENT_ARM_DISARM,
    mav.MAV_CMD_NAV_TAKEOFF,
    mav.MAV_CMD_DO_REPOSITION,
    mav.MAV_CMD_DO_SET_MODE,
    mav.MAV_CMD_NAV_RETURN_TO_LAUNCH,
    mav.MAV_CMD_NAV_LAND,
    mav.MAV_CMD_DRONECTL_LIGHT_SET,
}


@pytest.fixture(scope="module")
def broker_port() -> Iterator[int]:
    """The real Mosquitto on 127.0.0.1:1883, or one of our own where none runs."""
    if _listening(1883):
        yield 1883
        return
    assert mosquitto_binary() is not None, "no Mosquitto at 127.0.0.1:1883 and no mosquitto binary"
    own = Mosquitto(free_tcp_port())
    own.start()
    try:
        yield own.port
    finally:
        own.stop()


class CommandLog:
    """Every command message that reaches a simulated nest (hooked in front of its dispatch)."""

    def __init__(self, nest: SimNest) -> None:
        self.received: list[Any] = []
        original: Callable[[Any], None] = nest.link._dispatch

        def hooked(msg: Any) -> None:
            if msg.get_msgId() in (mav.MAVLINK_MSG_ID_COMMAND_LONG, mav.MAVLINK_MSG_ID_COMMAND_INT):
                self.received.append(msg)
            original(msg)

        nest.link._dispatch = hooked

    def drone_commands(self, since: int = 0) -> list[int]:
        return [int(m.command) for m in self.received[since:] if int(m.command) in _DRONE_COMMANDS]


@dataclass
class Loop:
    system: System
    cc: CommandCenter
    root: str
    controller: FleetOperations
    commands: CommandLog
    senders: dict[str, str] = field(default_factory=dict)  # command id -> the user who sent it

    def topic(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def reply_topic(self, command_id: str) -> str:
        return self.topic("replies", self.senders.get(command_id, "officer-7"), command_id)

    async def send(
        self, method: str, args: dict[str, Any] | None = None, *, nest: int | None = NEST, **kw: Any
    ) -> str:
        """Send as ``actor`` (that user, claiming that role), by default as officer-7 claiming nothing."""
        command_id = kw.pop("command_id", None) or f"{method}-{uuid.uuid4().hex[:8]}"
        who = kw.pop("actor", None)
        user = who["id"] if who is not None else "officer-7"
        self.senders[command_id] = user
        role = who["role"] if who is not None else None
        body = request(
            method,
            args,
            reply_to=self.reply_topic(command_id),
            command_id=command_id,
            role=role,
            user=user,
            **kw,
        )
        where = ("nests", str(nest), "commands", user) if nest is not None else ("commands", user)
        await self.cc.publish(self.topic(*where), body)
        return command_id

    async def reply(self, command_id: str, timeout_s: float = 10.0) -> Any:
        return await self.cc.wait_for(
            self.reply_topic(command_id), lambda p: p["kind"] == "reply", timeout_s=timeout_s
        )

    async def final(self, command_id: str, timeout_s: float) -> Any:
        return await self.cc.wait_for(
            self.reply_topic(command_id),
            lambda p: p["kind"] == "progress" and p["state"] in ("succeeded", "failed", "cancelled"),
            timeout_s=timeout_s,
        )

    def progress_states(self, command_id: str) -> list[str]:
        return [p["state"] for p in self.cc.payloads(self.reply_topic(command_id)) if p["kind"] == "progress"]

    def states(self) -> list[Any]:
        return self.cc.payloads(self.topic("nests", str(NEST), "state"))

    def events(self, nest: int | None = NEST) -> list[Any]:
        topic = self.topic("nests", str(nest), "events") if nest is not None else self.topic("events")
        return self.cc.payloads(topic)


def actor(actor_id: str, role: str) -> dict[str, str]:
    return {"id": actor_id, "role": role}


@pytest.fixture
async def loop(system: System, broker_port: int, tmp_path: Path) -> AsyncIterator[Loop]:
    root = f"test-{uuid.uuid4().hex[:12]}/dronectl/v1"
    settings = MqttSettings(broker=f"mqtt://127.0.0.1:{broker_port}", root=root, reconnect_max_s=2.0)
    controller = compose_operations(system.fleet)
    commands = CommandLog(system.world.nest(NEST))
    users_file = tmp_path / "users"
    write_users(users_file)  # the roles of the senders below (the broker here is anonymous)
    cc = CommandCenter("127.0.0.1", broker_port)
    await cc.connect()
    await cc.subscribe(f"{root}/#")
    api = asyncio.create_task(
        serve_api(
            settings,
            controller,
            outcomes=AuditOutcomes(system.fleet.audit),
            version="test",
            users_file=users_file,
        ),
        name="test.api",
    )
    try:
        await cc.wait_for(f"{root}/status", lambda p: p["state"] == "online")
        yield Loop(system, cc, root, controller, commands)
    finally:
        api.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await api
        await controller.aclose()
        cc.close()


async def audit_outcomes(system: System, command_id: str) -> list[str]:
    row = await system.fleet.audit.command(command_id)
    assert row is not None, f"command {command_id} not in the audit store"
    return [o["outcome"] for o in row["outcomes"]]


async def test_launch_watch_and_return_over_mqtt(loop: Loop) -> None:
    sim = loop.system.world.nest(NEST)
    state = await loop.cc.wait_for(
        loop.topic("nests", "3", "state"), lambda p: p["phase"] in ("ready", "charging")
    )
    assert state["blockers"] == [] and state["dock"]["drone_in_dock"] is True
    assert state["dock"]["weather"]["go"] is True and state["drone"]["link"] == "up"
    late = CommandCenter(loop.cc.host, loop.cc.port)  # a client that comes later gets the retained state
    await late.connect()
    try:
        await late.subscribe(loop.topic("nests", "3", "state"))
        await late.wait_until(lambda: bool(late.messages()), what="the retained state")
        assert (
            late.messages()[0].retain and late.payloads(loop.topic("nests", "3", "state"))[0]["nest_id"] == 3
        )
    finally:
        late.close()

    home = loop.system.nest(NEST).home
    target = destination(home, 45.0, 600.0)
    launch = await loop.send(
        "launch", {"target": {"lat": target.lat_deg, "lon": target.lon_deg, "alt_m": 50.0}}
    )
    reply = await loop.reply(launch)
    assert reply["ok"] is True and reply["result"]["state"] == "accepted"
    done = await loop.final(launch, timeout_s=120)
    assert done["state"] == "succeeded", done
    assert done["result"]["flight_id"]
    states = loop.progress_states(launch)
    assert states[0] == "accepted" and "in_progress" in states and states[-1] == "succeeded"

    phases = [s["phase"] for s in loop.states()]
    for phase in ("preflight", "launching", "en_route", "on_station"):
        assert phase in phases, (phase, phases)
    on_station = [s for s in loop.states() if s["phase"] == "on_station"][-1]
    assert on_station["flight"]["command_id"] == launch
    assert on_station["drone"]["armed"] is True and on_station["dock"]["drone_in_dock"] is False
    assert any(b["code"] == "nest_busy" for b in on_station["blockers"])

    kinds = [e["kind"] for e in loop.events()]
    assert "launched" in kinds and "on_station" in kinds
    assert {"launched", "on_station"} <= {e["kind"] for e in loop.events(None)}
    launched = next(e for e in loop.events() if e["kind"] == "launched")
    assert launched["command_id"] == launch and launched["flight_id"] == done["result"]["flight_id"]

    await loop.cc.wait_until(
        lambda: any(
            t["position"]["alt_m"] > 40 for t in loop.cc.payloads(loop.topic("nests", "3", "telemetry"))
        ),
        timeout_s=10,
        what="airborne telemetry",
    )
    sample = loop.cc.payloads(loop.topic("nests", "3", "telemetry"))[-1]
    assert sample["nest_id"] == NEST and 0 <= sample["battery_pct"] <= 100
    assert not any(m.retain for m in loop.cc.messages(loop.topic("nests", "3", "telemetry")))

    back = await loop.send("return_home")
    assert (await loop.reply(back))["ok"] is True
    landed = await loop.final(back, timeout_s=180)
    assert landed["state"] == "succeeded" and landed["message"] == "landed in the dock"
    await loop.cc.wait_for(
        loop.topic("nests", "3", "state"),
        lambda p: (
            p["phase"] == "charging" and p["dock"]["charging"] is True and p["dock"]["cover"] == "closed"
        ),
        timeout_s=60,
    )
    assert {"returning", "landed"} <= {e["kind"] for e in loop.events()}
    assert sim.on_pad() and not sim.autopilot.armed
    records = [r.kind for r in sim.ctx.recorder.all()]
    assert records.index("cover.opened") < records.index("cover.closed")
    assert "charger.on" in records[records.index("cover.closed") :]

    assert await audit_outcomes(loop.system, launch) == [
        "accepted",
        *["in_progress"] * (len(states) - 2),
        "succeeded",
    ]
    back_outcomes = await audit_outcomes(loop.system, back)
    assert back_outcomes[0] == "accepted" and back_outcomes[-1] == "succeeded"
    row = await loop.system.fleet.audit.command(launch)
    assert row is not None and row["actor_id"] == "officer-7" and row["actor_role"] == "pilot"
    assert row["nest_id"] == NEST and row["args"]["target"]["alt_m"] == 50.0


async def test_launch_into_a_no_fly_zone_is_refused_with_its_reasons_and_nothing_reaches_the_drone(
    loop: Loop,
) -> None:
    sim = loop.system.world.nest(NEST)
    await loop.cc.wait_for(loop.topic("nests", "3", "state"), lambda p: p["phase"] in ("ready", "charging"))
    before = len(loop.commands.received)
    records_before = len(sim.ctx.recorder.all())

    refused = await loop.send("launch", {"target": NO_FLY_TARGET})
    reply = await loop.reply(refused)
    assert reply["ok"] is False and reply["error"]["code"] == "refused"
    reasons = reply["error"]["reasons"]
    assert any("no-fly zone 'Provincial government compound'" in r for r in reasons), reasons
    event = await loop.cc.wait_for(loop.topic("nests", "3", "events"), lambda e: e["kind"] == "refused")
    assert event["command_id"] == refused and event["data"]["reasons"] == reasons
    assert not [p for p in loop.cc.payloads(loop.reply_topic(refused)) if p["kind"] == "progress"]

    # nothing reached the drone: no command on its link, nothing done by the simulator
    assert loop.commands.drone_commands(before) == []
    new_records = [r.kind for r in sim.ctx.recorder.all()[records_before:]]
    assert not any(k in ("armed", "takeoff", "cover.opening") for k in new_records), new_records
    assert not sim.autopilot.armed and sim.on_pad()
    assert loop.system.nest(NEST).flight is None

    row = await loop.system.fleet.audit.command(refused)
    assert row is not None and [o["outcome"] for o in row["outcomes"]] == ["refused"]
    assert row["outcomes"][0]["code"] == "refused" and "no-fly zone" in (row["outcomes"][0]["message"] or "")


async def test_expired_duplicate_and_unauthorised_commands(loop: Loop) -> None:
    sim = loop.system.world.nest(NEST)
    await loop.cc.wait_for(loop.topic("nests", "3", "state"), lambda p: p["phase"] in ("ready", "charging"))
    before = len(loop.commands.received)

    old = datetime.now(UTC) - timedelta(seconds=60)
    expired = await loop.send("light.set", {"mode": "police"}, issued_at=old, ttl_s=10.0)
    reply = await loop.reply(expired)
    assert reply["ok"] is False and reply["error"]["code"] == "expired"

    forbidden = await loop.send("launch", {"target": NO_FLY_TARGET}, actor=actor("watcher", "observer"))
    reply = await loop.reply(forbidden)
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden"
    assert loop.commands.drone_commands(before) == []

    lights_before = len(sim.ctx.recorder.all("light"))
    once = await loop.send("light.set", {"mode": "strobe"})
    first = await loop.reply(once)
    assert first["ok"] is True
    assert (await loop.final(once, timeout_s=10))["state"] == "succeeded"
    await loop.send("light.set", {"mode": "strobe"}, command_id=once)
    await loop.cc.wait_until(
        lambda: sum(1 for p in loop.cc.payloads(loop.reply_topic(once)) if p["kind"] == "reply") == 2,
        what="the repeated reply",
    )
    replies = [p for p in loop.cc.payloads(loop.reply_topic(once)) if p["kind"] == "reply"]
    assert replies[1]["repeated"] is True and replies[1]["ok"] is True and replies[1]["id"] == once
    assert len(sim.ctx.recorder.all("light")) == lights_before + 1  # executed once
    assert loop.commands.drone_commands(before).count(mav.MAV_CMD_DRONECTL_LIGHT_SET) == 1

    # every command is in the audit store, refused ones included
    assert await audit_outcomes(loop.system, expired) == ["refused"]
    assert await audit_outcomes(loop.system, forbidden) == ["refused"]
    assert await audit_outcomes(loop.system, once) == ["accepted", "succeeded"]
    row = await loop.system.fleet.audit.command(forbidden)
    assert row is not None and row["actor_role"] == "observer" and row["outcomes"][0]["code"] == "forbidden"


async def test_control_authority_between_actors(loop: Loop) -> None:
    await loop.cc.wait_for(loop.topic("nests", "3", "state"), lambda p: p["phase"] in ("ready", "charging"))
    li, wang, zhao = actor("pilot-li", "pilot"), actor("pilot-wang", "pilot"), actor("cmdr-zhao", "commander")

    take = await loop.send("control.take", actor=li)
    assert (await loop.final(take, timeout_s=10))["state"] == "succeeded"
    await loop.cc.wait_for(
        loop.topic("nests", "3", "state"), lambda p: (p["control"] or {}).get("id") == "pilot-li"
    )

    other = await loop.send("light.set", {"mode": "steady"}, actor=wang)
    reply = await loop.reply(other)
    assert reply["ok"] is False and reply["error"]["code"] == "busy"
    assert "pilot-li (pilot)" in reply["error"]["message"]
    automation = await loop.send("light.set", {"mode": "steady"}, actor=actor("dispatcher", "automation"))
    assert (await loop.reply(automation))["error"]["code"] == "busy"  # automation never overrides a pilot
    steal = await loop.send("control.take", actor=wang)
    assert (await loop.reply(steal))["ok"] is False

    mine = await loop.send("light.set", {"mode": "steady"}, actor=li)
    assert (await loop.final(mine, timeout_s=10))["state"] == "succeeded"

    takeover = await loop.send("control.take", actor=zhao)
    assert (await loop.final(takeover, timeout_s=10))["state"] == "succeeded"
    event = await loop.cc.wait_for(
        loop.topic("nests", "3", "events"),
        lambda e: e["kind"] == "control" and e["data"]["change"] == "taken_over",
    )
    assert event["data"]["previous"] == {"id": "pilot-li", "role": "pilot"}
    assert event["data"]["holder"] == {"id": "cmdr-zhao", "role": "commander"}
    was_mine = await loop.send("light.set", {"mode": "off"}, actor=li)
    reply = await loop.reply(was_mine)
    assert reply["ok"] is False and "cmdr-zhao (commander)" in reply["error"]["message"]

    release = await loop.send("control.release", actor=zhao)
    assert (await loop.final(release, timeout_s=10))["state"] == "succeeded"
    free = await loop.send("light.set", {"mode": "off"}, actor=wang)
    assert (await loop.final(free, timeout_s=10))["state"] == "succeeded"
    await loop.cc.wait_for(loop.topic("nests", "3", "state"), lambda p: p["control"] is None)

    for command_id, first in (
        (take, "accepted"),
        (other, "refused"),
        (takeover, "accepted"),
        (free, "accepted"),
    ):
        assert (await audit_outcomes(loop.system, command_id))[0] == first
