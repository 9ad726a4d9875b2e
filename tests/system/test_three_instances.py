"""Three instances on PostgreSQL (issue 14's acceptance): the simulator and three instances as
separate processes on one fresh database.

* kill -9 of an instance holding at least two nests, with two of its drones on station: the
  survivors own its nests again within the takeover time, bring both drones home under the new
  owners (two take-offs in all at the simulated nests), and a command the dead instance was
  running on each nest is recorded with its outcome (interrupted, with the reason);
* a fourth instance joins while light commands flow to every nest: the nests rebalance to include
  it, every command gets one reply, the nests carry out exactly the ones answered ok;
* SIGSTOP of an instance with two drones on station past its lease, SIGCONT once the survivors
  brought them home: not one acting command from it at either simulated nest."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from adapters.mavlink import dronectl_v20 as mav
from dronectl.audit import AuditStore, CommandOutcome, CommandRecord
from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.leases import assignment
from tests.pg import fresh_database
from tests.system.cluster import (
    acting_commands,
    instance_args,
    lease_owners,
    records_at,
    shared_config,
    takeoffs_at,
)
from tests.system.test_restart_kill9 import AIRBORNE, SPEED, Child, child, free_tcp_port

NESTS = [1, 2, 3, 4]
LEASE_TTL_S = 2.0
# past the ttl: a renewal interval, the survivors' next tick, a loaded 2-core machine
TAKEOVER_MARGIN_S = 6.0


def three_names() -> tuple[str, str, str]:
    """Three instance names of which the first is preferred for at least two of NESTS, and each
    for one at least."""
    for i in count():
        names = (f"alpha-{i}", f"bravo-{i}", f"charlie-{i}")
        held = assignment(NESTS, names)
        if len(held[names[0]]) >= 2 and all(held[name] for name in names):  # each holds some
            return names
    raise AssertionError("unreachable")


def four_names() -> tuple[str, str, str, str]:
    """Four instance names: each of the first three preferred for a nest among themselves, and the
    fourth, when it joins, for at least one."""
    for i in count():
        names = (f"alpha-{i}", f"bravo-{i}", f"charlie-{i}", f"delta-{i}")
        three = assignment(NESTS, names[:3])
        if all(three[name] for name in names[:3]) and assignment(NESTS, names)[names[3]]:
            return names
    raise AssertionError("unreachable")


def nest_line(nest: int, phases: set[str], flight_id: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """A child's report of ``nest`` in one of ``phases`` (of that flight, if given)."""

    def match(line: dict[str, Any]) -> bool:
        return (
            line.get("nest") == nest
            and line.get("phase") in phases
            and (flight_id is None or line.get("flight_id") == flight_id)
        )

    return match


def heir_phase(heir: Child, nest: int) -> str | None:
    """The last phase ``heir`` reported for ``nest``."""
    line = next((line for line in reversed(heir.lines) if line.get("nest") == nest and "phase" in line), None)
    return None if line is None else line.get("phase")


async def wait_owners(
    url: str, predicate: Callable[[dict[int, str]], bool], timeout_s: float
) -> dict[int, str]:
    """Poll the lease rows until ``predicate(owners)`` holds; the owners then."""
    async with asyncio.timeout(timeout_s):
        while True:
            owners = await lease_owners(url)
            if predicate(owners):
                return owners
            await asyncio.sleep(0.2)  # a poll period, not a wait for state


def holders(names: tuple[str, ...]) -> dict[int, str]:
    """Each nest's preferred instance among ``names``."""
    return {n: o for o, ns in assignment(NESTS, names).items() for n in ns}


@dataclass
class Cluster:
    url: str  # the shared PostgreSQL
    config: Path
    control_port: int  # the simulator's
    homes: dict[int, GeoPoint]
    by_name: dict[str, Child]  # the instances started, by name


@asynccontextmanager
async def three_up(
    port_base: tuple[int, int],
    tmp_path: Path,
    names: tuple[str, str, str],
    database: AbstractContextManager[str] | None = None,
    spools: bool = False,
) -> AsyncIterator[Cluster]:
    """The simulator and three instances on one fresh PostgreSQL database (``database``: another
    one's URL), separate processes, each with an outage spool file in ``tmp_path`` if ``spools``;
    yields once the lease rows give each nest to its preferred instance and its link is up there."""
    config = shared_config(tmp_path / "city.yaml", port_base, NESTS)
    control_port = free_tcp_port()
    sim_args = [
        "-m", "sitl", "--speed", str(SPEED), "--config", str(config), "--control-port", str(control_port),
    ]  # fmt: skip
    with database or fresh_database() as url:
        async with await AuditStore.open(url):
            pass  # the schema once, before the instances start
        async with child(sim_args, tmp_path / "sim.log") as sim:
            await sim.wait_line(lambda line: line.get("id") == max(NESTS), 30)  # all written at once
            homes = {
                int(line["id"]): GeoPoint(float(line["lat"]), float(line["lon"]))
                for line in sim.lines
                if "id" in line and "lat" in line
            }
            args = [
                instance_args(
                    config, url, name, SPEED, LEASE_TTL_S, tmp_path / f"spool-{i}.sqlite3" if spools else None
                )
                for i, name in enumerate(names, 1)
            ]
            async with (
                child(args[0], tmp_path / "instance-1.log") as first,
                child(args[1], tmp_path / "instance-2.log") as second,
                child(args[2], tmp_path / "instance-3.log") as third,
            ):
                by_name = {names[0]: first, names[1]: second, names[2]: third}
                want = holders(names)
                await wait_owners(url, lambda owners: {n: owners.get(n) for n in NESTS} == want, 60)
                for nest in NESTS:
                    await by_name[want[nest]].wait_line(nest_line(nest, {"ready", "charging"}), 30)
                yield Cluster(url, config, control_port, homes, by_name)


async def launch_to_station(
    instance: Child, nests: list[int], homes: dict[int, GeoPoint], command_ids: bool = False
) -> dict[int, str]:
    """Launch ``nests`` from ``instance``, 500 m east at 40 m; each one's flight id once on station."""
    for nest in nests:  # what the launch checks need, on every one, before any flies
        reply = await instance.send({"op": "wait_sensors", "nest": nest, "timeout_s": 9})
        assert reply["ok"], reply
    for nest in nests:
        target = destination(homes[nest], 90.0, 500.0)
        launch: dict[str, Any] = {"op": "launch", "nest": nest, "lat": target.lat_deg, "lon": target.lon_deg}
        if command_ids:
            launch["command_id"] = f"cmd-launch-{nest}"
        reply = await instance.send({**launch, "alt_m": 40})
        assert reply["ok"], reply
    flights: dict[int, str] = {}
    for nest in nests:
        flights[nest] = (await instance.wait_line(nest_line(nest, {"on_station"}), 90))["flight_id"]
    return flights


async def bring_home(cluster: Cluster, owners: dict[int, str], flights: dict[int, str]) -> None:
    """Each new owner follows the same flight in the air, then brings it home to its dock."""
    for nest, flight_id in flights.items():
        heir = cluster.by_name[owners[nest]]
        await heir.wait_line(nest_line(nest, AIRBORNE, flight_id), 30)
        if heir_phase(heir, nest) != "returning":
            reply = await heir.send({"op": "return", "nest": nest})
            assert reply["ok"] or heir_phase(heir, nest) == "returning", reply
    for nest in flights:
        await cluster.by_name[owners[nest]].wait_line(nest_line(nest, {"charging"}), 120)


async def test_kill_9_of_an_instance_with_two_drones_airborne(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    names = three_names()
    victim_name = names[0]
    flown = assignment(NESTS, names)[victim_name][:2]
    async with three_up(port_base, tmp_path, names) as cluster:
        url, control_port, victim = cluster.url, cluster.control_port, cluster.by_name[victim_name]
        flights = await launch_to_station(victim, flown, cluster.homes, command_ids=True)
        async with await AuditStore.open(url) as audit:  # a command the victim is running on each
            for nest in flown:
                running = CommandRecord(
                    f"cmd-running-{nest}", time.time(), "officer-7", "pilot", nest, "orbit", {},
                    CommandOutcome.ACCEPTED,
                )  # fmt: skip
                await audit.record_command(running)

        killed = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        assert await victim.proc.wait() == -signal.SIGKILL
        owners = await wait_owners(
            url,
            lambda owners: all(owners.get(n) not in (None, victim_name) for n in flown),
            LEASE_TTL_S + TAKEOVER_MARGIN_S,
        )
        took_s = time.monotonic() - killed
        print(f"nests {flown} owned again after {took_s:.2f} s by {[owners[n] for n in flown]}")
        for nest in flown:  # the command the victim was running: told to its sender, by the heir
            told = await cluster.by_name[owners[nest]].wait_line(
                lambda line, nest=nest: (
                    line.get("nest") == nest
                    and line.get("event") == "command_interrupted"
                    and f"cmd-running-{nest} by officer-7" in line.get("message", "")
                ),
                30,
            )
            assert f"lost nest {nest}" in told["message"]

        await bring_home(cluster, owners, flights)
        assert {n: (await lease_owners(url)).get(n) for n in flown} == {n: owners[n] for n in flown}
        counts = {nest: await takeoffs_at(control_port, nest) for nest in NESTS}
        assert counts == {n: (1 if n in flown else 0) for n in NESTS}, counts  # 0 duplicate launches

        async with await AuditStore.open(url) as audit:
            for nest in flown:
                [flight] = await audit.flights(nest_id=nest)  # one flight: nothing launched twice
                assert flight["flight_id"] == flights[nest] and flight["outcome"] == "completed"
                assert flight["command_id"] == f"cmd-launch-{nest}"
                cut = await audit.command(f"cmd-running-{nest}")
                assert cut is not None
                assert [(o["outcome"], o["code"]) for o in cut["outcomes"]] == [
                    ("accepted", None),
                    ("failed", "interrupted"),
                ]
                assert f"lost nest {nest}" in (cut["outcomes"][-1]["message"] or "")


async def test_a_fourth_instance_joins_while_commands_flow_nests_rebalance_none_lost(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    """Light commands flow to every nest, each to the instance the lease rows name, while a fourth
    instance joins: the nests rebalance to include it, every command got exactly one reply, and the
    simulated nests carried out exactly the ones answered ok (none lost, none twice); a refusal in
    the handover says why."""
    names = four_names()
    async with three_up(port_base, tmp_path, names[:3]) as cluster:
        url, control_port, by_name = cluster.url, cluster.control_port, cluster.by_name
        sent: list[tuple[int, str, dict[str, Any]]] = []  # nest, instance, reply
        joined = asyncio.Event()

        async def stream() -> None:
            rounds_after = 0
            while rounds_after < 3:  # three full rounds once the fourth holds its nests
                owners = await lease_owners(url)
                for nest in NESTS:
                    owner = owners.get(nest)
                    if owner is None or owner not in by_name:
                        continue  # between owners, or the fourth not yet started here
                    reply = await by_name[owner].send({"op": "light", "nest": nest})
                    sent.append((nest, owner, reply))
                if joined.is_set():
                    rounds_after += 1

        streaming = asyncio.create_task(stream(), name="light-stream")
        try:
            args = instance_args(cluster.config, url, names[3], SPEED, LEASE_TTL_S)
            async with child(args, tmp_path / "instance-4.log") as fourth:
                by_name[names[3]] = fourth
                four = holders(names)
                started = time.monotonic()
                await wait_owners(url, lambda owners: {n: owners.get(n) for n in NESTS} == four, 30)
                print(f"rebalanced to {four} in {time.monotonic() - started:.2f} s")
                for nest in [n for n, owner in four.items() if owner == names[3]]:  # its links up
                    await fourth.wait_line(nest_line(nest, {"ready", "charging"}), 30)
                joined.set()
                await asyncio.wait_for(asyncio.shield(streaming), 60)
        finally:
            streaming.cancel()

        # every request one reply: the reply lines each instance wrote, request by request
        for name, instance in by_name.items():
            replies = [line for line in instance.lines if line.get("reply") == "light"]
            assert len(replies) == sum(1 for _, owner, _ in sent if owner == name), name
        for nest in NESTS:
            ok = sum(1 for n, _, reply in sent if n == nest and reply["ok"])
            done = await records_at(control_port, nest, "light")
            assert done == ok, (nest, done, ok)  # none lost, none twice
        refused = [reply for _, _, reply in sent if not reply["ok"]]
        assert all(reply.get("error") for reply in refused), refused
        print(f"{len(sent)} light commands, {len(refused)} refused in the handover: {refused}")
        assert any(owner == names[3] and reply["ok"] for _, owner, reply in sent)


async def test_an_instance_paused_past_its_lease_sends_its_lost_nests_nothing(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    """SIGSTOP an instance with two drones on station until the survivors own its nests and have
    brought both home, then SIGCONT it: checked at the simulated nests, not one acting command from
    its address after it woke, and two take-offs in all."""
    names = three_names()
    flown = assignment(NESTS, names)[names[0]][:2]
    async with three_up(port_base, tmp_path, names) as cluster:
        control_port, paused = cluster.control_port, cluster.by_name[names[0]]
        flights = await launch_to_station(paused, flown, cluster.homes)
        # its address as each nest sees it: where the arming came from
        arm = mav.MAV_CMD_COMPONENT_ARM_DISARM
        peers: dict[int, set[str]] = {}
        for nest in flown:
            heard = await acting_commands(control_port, nest)
            peers[nest] = {c["peer"] for c in heard if c["command"] == arm}
        assert all(len(p) == 1 for p in peers.values()), peers

        paused.proc.send_signal(signal.SIGSTOP)
        try:
            owners = await wait_owners(
                cluster.url,
                lambda owners: all(owners.get(n) not in (None, names[0]) for n in flown),
                LEASE_TTL_S + TAKEOVER_MARGIN_S,
            )
            await bring_home(cluster, owners, flights)
            before_wake = {nest: len(await acting_commands(control_port, nest)) for nest in flown}
        finally:
            paused.proc.send_signal(signal.SIGCONT)
        # awake: it learns it lost each nest (its lease keeper's next tick, then a report line)
        for nest in flown:
            await paused.wait_line(nest_line(nest, {"offline"}), 30)
        # absence can only be watched for a while: a window for anything it still had queued
        await asyncio.sleep(3 * LEASE_TTL_S)
        for nest in flown:
            after = (await acting_commands(control_port, nest))[before_wake[nest] :]
            from_paused = [c for c in after if c["peer"] in peers[nest]]
            assert from_paused == [], (nest, from_paused)
        counts = {nest: await takeoffs_at(control_port, nest) for nest in NESTS}
        assert counts == {n: (1 if n in flown else 0) for n in NESTS}, counts
