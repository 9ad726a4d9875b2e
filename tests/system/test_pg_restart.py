"""PostgreSQL really restarts mid-flight (issue 14's acceptance): a server of the test's own
(tests/pg.py, ``own_server``), the simulator and three instances as separate processes, each with
its outage spool, two drones on station; then ``pg_ctl stop -m fast``.

While it is down: a new command is refused with the reason (nothing could be audited), the
leases cannot be renewed so every instance stops acting on its nests on its local deadline
(docs/deployment.md), the drones are left to their autopilots. ``pg_ctl start``: every nest is
owned again by the instance it was before, the drones are followed and brought home, one take-off
each, and nothing is lost: the launch commands and their outcomes, both flights completed with
their tracks, everything spooled while the database was away replayed, nothing refused."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any

from dronectl.audit import AuditStore
from dronectl.domain.geo import destination
from dronectl.domain.leases import assignment
from tests.pg import own_server, query
from tests.system.cluster import lease_owners, takeoffs_at
from tests.system.test_restart_kill9 import Child
from tests.system.test_three_instances import (
    LEASE_TTL_S,
    NESTS,
    holders,
    launch_to_station,
    nest_line,
    three_names,
    three_up,
    wait_owners,
)


def count_logged(log: Path, event: str, nest: int) -> int:
    """How many times an instance logged ``event`` for ``nest`` (its stderr, JSON lines)."""
    count = 0
    for raw in log.read_text(errors="replace").splitlines():
        with suppress(ValueError):
            line = json.loads(raw)
            count += line.get("event") == event and line.get("nest") == nest
    return count


async def logged(log: Path, event: str, nest: int, times: int, timeout_s: float) -> None:
    """Wait until the instance has logged ``event`` for ``nest`` ``times`` times: what it says it did
    (letting a nest go is not a phase: the controller stops, nothing is reported on stdout)."""
    async with asyncio.timeout(timeout_s):
        while count_logged(log, event, nest) < times:  # noqa: ASYNC110 - polling a file
            await asyncio.sleep(0.05)


def since(
    child: Child, mark: int, predicate: Callable[[dict[str, Any]], bool]
) -> Callable[[dict[str, Any]], bool]:
    """``predicate`` on a line ``child`` wrote after its ``mark``-th."""
    return lambda line: predicate(line) and any(line is later for later in child.lines[mark:])


async def return_when_attached(pilot: Child, nest: int, timeout_s: float) -> None:
    """Ask ``pilot`` to bring the drone home, again while its controller is still re-attaching to
    the drone (refused "not attached yet"); done once accepted or already on its way home."""
    async with asyncio.timeout(timeout_s):
        while True:
            reply = await pilot.send({"op": "return", "nest": nest})
            if reply["ok"] or last_phase(pilot, nest) in ("returning", "landing"):
                return
            assert "not attached yet" in reply["error"], reply
            await asyncio.sleep(0.2)  # a retry period: the link comes back by itself


def last_phase(child: Child, nest: int) -> str | None:
    line = next((ln for ln in reversed(child.lines) if ln.get("nest") == nest and "phase" in ln), None)
    return None if line is None else line.get("phase")


async def test_postgresql_restarts_mid_flight_nothing_lost(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    names = three_names()
    flown = assignment(NESTS, names)[names[0]][:2]
    want = holders(names)
    with own_server() as server:
        url = server.create_database("dronectl")
        async with three_up(port_base, tmp_path, names, nullcontext(url), spools=True) as cluster:
            by_name, control_port = cluster.by_name, cluster.control_port
            pilot = by_name[names[0]]
            flights = await launch_to_station(pilot, flown, cluster.homes, command_ids=True)
            before = {
                n: len(query(url, f"SELECT 1 FROM track WHERE flight_id = '{flights[n]}'")) for n in flown
            }
            assert all(before.values()), before
            logs = {name: tmp_path / f"instance-{i}.log" for i, name in enumerate(names, 1)}
            seen = {
                (name, n): count_logged(logs[name], "fleet.nest_gained", n) for name in names for n in NESTS
            }

            server.stop("fast")
            stopped = time.monotonic()
            # a new command while it is down: refused, with the reason, and not carried out
            grounded = next(n for n in NESTS if n not in flown)
            target = destination(cluster.homes[grounded], 90.0, 500.0)
            reply = await by_name[want[grounded]].send(
                {"op": "command", "id": "cmd-while-down", "method": "launch", "nest": grounded,
                 "lat": target.lat_deg, "lon": target.lon_deg, "alt_m": 40}
            )  # fmt: skip
            assert not reply["ok"] and reply["error"] == "unavailable", reply
            assert "audit" in reply["message"] and "not executed" in reply["message"], reply
            # the leases cannot be renewed: each instance stops acting on its nests (lets go of their
            # controllers, its log says) on its local deadline, within the lease ttl
            for nest in NESTS:
                await logged(
                    logs[want[nest]], "fleet.nest_released", nest, seen[want[nest], nest], LEASE_TTL_S + 3
                )
            let_go_s = time.monotonic() - stopped
            # nothing else talks to the drones now: their autopilots' data-link-loss failsafe takes over
            down_s = time.monotonic() - stopped
            server.start()
            started = time.monotonic()
            owners = await wait_owners(url, lambda o: {n: o.get(n) for n in NESTS} == want, 30)
            owned_s = time.monotonic() - started
            for nest in NESTS:  # controlled again by the same instance: re-attached
                await logged(logs[want[nest]], "fleet.nest_gained", nest, seen[want[nest], nest] + 1, 30)
            controlled_s = time.monotonic() - started
            print(
                f"PostgreSQL down {down_s:.2f} s; every nest let go {let_go_s:.2f} s after the stop;"
                f" owned again {owned_s:.2f} s after the start, controlled again after {controlled_s:.2f} s"
            )

            # the same instance brings them home, its controllers re-attached to the drones in the air
            marks = {nest: len(by_name[owners[nest]].lines) for nest in flown}
            for nest in flown:
                await return_when_attached(by_name[owners[nest]], nest, 30)
            for nest in flown:
                pilot = by_name[owners[nest]]
                await pilot.wait_line(since(pilot, marks[nest], nest_line(nest, {"charging"})), 120)
            # each nest owned by exactly one instance, the one it had before: the lease rows
            assert {n: (await lease_owners(url)).get(n) for n in NESTS} == want
            for nest in flown:
                assert last_phase(by_name[want[nest]], nest) == "charging"
            counts = {nest: await takeoffs_at(control_port, nest) for nest in NESTS}
            assert counts == {n: (1 if n in flown else 0) for n in NESTS}, counts  # 0 duplicate launches

            # nothing lost: whatever waited in a spool reached the database, none was refused
            spools = sorted(tmp_path.glob("spool-*.sqlite3"))  # noqa: ASYNC240 - a small directory
            assert len(spools) == 3
            for path in spools:
                with sqlite3.connect(path) as spool:
                    rejected = spool.execute("SELECT kind, error FROM rejected").fetchall()
                    assert rejected == [], (path.name, rejected)
                    # drained (the instances go on writing; what they write now goes straight in)
                    assert spool.execute("SELECT count(*) FROM spool").fetchone() == (0,), path.name
            log = (tmp_path / "instance-1.log").read_text(errors="replace")
            assert "audit.spooling" in log and "audit.spool_replayed" in log

            async with await AuditStore.open(url) as audit:
                assert await audit.command("cmd-while-down") is None  # refused: never recorded, never run
                for nest in flown:
                    [flight] = await audit.flights(nest_id=nest)  # one flight: nothing launched twice
                    assert flight["flight_id"] == flights[nest] and flight["outcome"] == "completed"
                    assert flight["command_id"] == f"cmd-launch-{nest}"
                    track = query(url, f"SELECT 1 FROM track WHERE flight_id = '{flights[nest]}'")
                    assert len(track) > before[nest], (nest, len(track), before[nest])
                    phases = [
                        r[0]
                        for r in query(
                            url, f"SELECT to_state FROM transitions WHERE nest_id = {nest} ORDER BY seq"
                        )
                    ]
                    for phase in ("on_station", "returning", "charging"):
                        assert phase in phases, (nest, phase, phases)
