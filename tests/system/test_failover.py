"""Failover mid-flight (issue 14): two instances share PostgreSQL; the one holding nest 3 launches
it and is killed with SIGKILL while the drone is on station; the other takes the nest's lease
over within the takeover time, re-attaches to the drone in the air (same flight, no second
take-off, checked at the simulated nest) and brings it home; the flight ends completed in the
shared store, and a command the dead owner was running is recorded as interrupted. Separate
processes: the simulator and both instances."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from adapters.mavlink import dronectl_v20 as mav
from dronectl.audit import AuditStore, CommandOutcome, CommandRecord
from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.leases import preferred_owner
from sitl.control import request
from tests.pg import fresh_database
from tests.system.cluster import acting_commands, instance_args, shared_config
from tests.system.test_restart_kill9 import (
    AIRBORNE,
    NEST,
    SPEED,
    Child,
    child,
    free_tcp_port,
    takeoffs,
)

LEASE_TTL_S = 2.0


def names() -> tuple[str, str]:
    """Two instance names of which the first is preferred for the nest (so it launches it)."""
    for i in count():
        first, second = f"alpha-{i}", f"bravo-{i}"
        if preferred_owner(NEST, [first, second]) == first:
            return first, second
    raise AssertionError("unreachable")


@dataclass
class Cluster:
    url: str  # the shared PostgreSQL
    control_port: int  # the simulator's
    owner: Child  # preferred for NEST: it holds it
    heir: Child  # up, holding nothing
    target: GeoPoint


@asynccontextmanager
async def two_instances(port_base: tuple[int, int], tmp_path: Path) -> AsyncIterator[Cluster]:
    """The simulator and two instances on one fresh PostgreSQL database, separate processes; the
    first holds NEST and its drone is ready, the second is up and holds nothing."""
    config = shared_config(tmp_path / "city.yaml", port_base, [NEST])
    control_port = free_tcp_port()
    sim_args = [
        "-m", "sitl", "--speed", str(SPEED), "--config", str(config), "--control-port", str(control_port),
    ]  # fmt: skip
    first, second = names()
    with fresh_database() as url:
        async with await AuditStore.open(url):
            pass  # the schema once, before the instances start

        def instance(name: str) -> list[str]:
            return instance_args(config, url, name, SPEED, LEASE_TTL_S)

        async with child(sim_args, tmp_path / "sim.log") as sim:
            await sim.wait_line(lambda line: line.get("id") == NEST, 30)
            home = GeoPoint(float(sim.lines[0]["lat"]), float(sim.lines[0]["lon"]))
            target = destination(home, 90.0, 500.0)
            async with child(instance(first), tmp_path / "instance-1.log") as owner:
                await owner.wait_line(lambda line: line.get("phase") in ("ready", "charging"), 30)
                async with child(instance(second), tmp_path / "instance-2.log") as heir:
                    await heir.wait_line(lambda line: "phase" in line, 30)  # up, holding nothing
                    assert (await owner.send({"op": "wait_sensors", "nest": NEST}))["ok"]
                    yield Cluster(url, control_port, owner, heir, target)


async def test_kill_9_of_the_owner_mid_flight_the_other_instance_brings_it_home(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    async with two_instances(port_base, tmp_path) as cluster:
        url, control_port, owner, heir, target = (
            cluster.url, cluster.control_port, cluster.owner, cluster.heir, cluster.target,
        )  # fmt: skip
        launch = {"op": "launch", "nest": NEST, "lat": target.lat_deg, "lon": target.lon_deg}
        assert (await owner.send({**launch, "alt_m": 40, "command_id": "cmd-failover"}))["ok"]
        on_station = await owner.wait_line(lambda line: line.get("phase") == "on_station", 60)
        flight_id = on_station["flight_id"]
        async with await AuditStore.open(url) as audit:  # a command the owner is running
            running = CommandRecord(
                "cmd-running", time.time(), "officer-7", "pilot", NEST, "orbit", {},
                CommandOutcome.ACCEPTED,
            )  # fmt: skip
            await audit.record_command(running)
        # the other instance does not control the nest: it never saw it leave the ground
        assert {line["phase"] for line in heir.lines if "phase" in line} == {"offline"}

        killed = time.monotonic()
        owner.proc.send_signal(signal.SIGKILL)
        assert await owner.proc.wait() == -signal.SIGKILL

        back = await heir.wait_line(
            lambda line: line.get("phase") in AIRBORNE and line.get("flight_id") == flight_id, 30
        )
        took_s = time.monotonic() - killed
        assert back["flight_id"] == flight_id
        assert took_s < LEASE_TTL_S + 10, took_s  # the ttl, a renewal, the re-attach
        assert await takeoffs(control_port) == 1
        state = (await request({"op": "state", "nest": NEST}, port=control_port))["state"][0]
        assert state["armed"] and not state["on_pad"]

        if heir.phase()["phase"] != "returning":
            reply = await heir.send({"op": "return", "nest": NEST})
            assert reply["ok"] or heir.phase()["phase"] == "returning", reply
        await heir.wait_line(lambda line: line.get("phase") == "charging", 120)
        assert await takeoffs(control_port) == 1

        async with await AuditStore.open(url) as audit:
            [flight] = await audit.flights(nest_id=NEST)  # one flight: nothing launched twice
            cut = await audit.command("cmd-running")
        assert flight["flight_id"] == flight_id and flight["outcome"] == "completed"
        assert flight["command_id"] == "cmd-failover"
        assert cut is not None
        assert [(o["outcome"], o["code"]) for o in cut["outcomes"]] == [
            ("accepted", None),
            ("failed", "interrupted"),
        ]
        assert "lost nest 3" in (cut["outcomes"][-1]["message"] or "")


async def test_an_owner_paused_past_its_lease_sends_the_nest_nothing_when_it_wakes(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    """SIGSTOP the owner mid-flight until the other instance has taken the nest over and brought
    the drone home, then SIGCONT it: checked at the simulated nest, not one command from it after."""
    async with two_instances(port_base, tmp_path) as cluster:
        owner, heir, control_port = cluster.owner, cluster.heir, cluster.control_port
        launch = {"op": "launch", "nest": NEST, "lat": cluster.target.lat_deg, "lon": cluster.target.lon_deg}
        assert (await owner.send({**launch, "alt_m": 40, "command_id": "cmd-paused"}))["ok"]
        flight_id = (await owner.wait_line(lambda line: line.get("phase") == "on_station", 60))["flight_id"]
        # the owner's address, as the nest sees it: where the arming came from
        arm = mav.MAV_CMD_COMPONENT_ARM_DISARM
        [owner_peer] = {c["peer"] for c in await acting_commands(control_port, NEST) if c["command"] == arm}

        stopped_at = len(await acting_commands(control_port, NEST))
        owner.proc.send_signal(signal.SIGSTOP)
        try:
            await heir.wait_line(
                lambda line: line.get("phase") in AIRBORNE and line.get("flight_id") == flight_id, 30
            )
            if heir.phase()["phase"] != "returning":
                reply = await heir.send({"op": "return", "nest": NEST})
                assert reply["ok"] or heir.phase()["phase"] == "returning", reply
            await heir.wait_line(lambda line: line.get("phase") == "charging", 120)
            heard = await acting_commands(control_port, NEST)
            before_wake = len(heard)
            # the nest heard the new owner bring it home, from another address
            assert {c["peer"] for c in heard[stopped_at:]} - {owner_peer}, heard[stopped_at:]
        finally:
            owner.proc.send_signal(signal.SIGCONT)
        # awake: it learns it lost the nest (its lease keeper's next tick, then a report line)
        await owner.wait_line(lambda line: line.get("nest") == NEST and line.get("phase") == "offline", 30)
        await asyncio.sleep(3 * LEASE_TTL_S)  # a window for anything it still had queued: none may come
        after = (await acting_commands(control_port, NEST))[before_wake:]
        from_owner = [c for c in after if c["peer"] == owner_peer]
        assert from_owner == [], from_owner
        assert await takeoffs(control_port) == 1
