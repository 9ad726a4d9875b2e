"""kill -9 of the controller mid-flight. The simulator and the controller run as separate
processes; the controller is killed while its drone is on station, then started again: it
re-attaches to the airborne drone without launching it again (the simulator saw one take-off,
the flight id is the one from before), the audit store holds every record made up to the kill,
and the drone is brought home. With the SQLite store and with PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from dronectl.audit import AuditStore
from dronectl.domain.config import default_config_path
from dronectl.domain.geo import GeoPoint, destination
from sitl.control import request
from tests.conftest import REPO_ROOT
from tests.pg import fresh_database

NEST = 3
SPEED = 10.0
AIRBORNE = {"en_route", "on_station", "returning", "landing"}
# events the controller keeps with the flight (the others, such as link_up, are not flight records)
FLIGHT_EVENT_KINDS = {"preflight_passed", "launched", "en_route", "on_station", "returning", "hold", "orbit"}


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path, port_base: tuple[int, int]) -> Path:
    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data["nests"] = [n for n in data["nests"] if n["id"] == NEST]
    data["mavlink"] = {"host": "127.0.0.1", "sim_port_base": port_base[0], "client_port_base": port_base[1]}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Child:
    """A child process speaking JSON lines on stdout; its stderr goes to a file."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            with suppress(ValueError):
                line = json.loads(raw)
                async with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def wait_line(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((line for line in reversed(self.lines) if predicate(line)), None)

        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: found() is not None or self._reader.done())
        line = found()
        assert line is not None, f"child exited ({self.proc.returncode}) before the line came"
        return line

    async def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        count = len(self.lines)
        self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
        await self.proc.stdin.drain()
        op = payload["op"]
        # by position, not equality: a reply equal to an earlier one (two {"reply": "wait_sensors",
        # "ok": true}) is still this request's
        await self.wait_line(
            lambda line: line.get("reply") == op and any(new is line for new in self.lines[count:]), 10
        )
        return next(line for line in self.lines[count:] if line.get("reply") == op)

    def phase(self) -> dict[str, Any]:
        return next(line for line in reversed(self.lines) if "phase" in line)


@asynccontextmanager
async def child(args: list[str], log_path: Path) -> AsyncIterator[Child]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=log_path.parent, env=env,  # var/ (keys, state) stays the test's
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
    handle = Child(proc)
    try:
        yield handle
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await handle._reader


async def takeoffs(control_port: int) -> int:
    reply = await request({"op": "records", "nest": NEST, "kind": "takeoff"}, port=control_port)
    return sum(1 for r in reply["records"] if r["kind"] == "takeoff")


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The audit store the controller uses across its two lives: a SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "audit.sqlite3")
    else:
        with fresh_database() as url:
            yield url


async def test_kill_9_mid_flight_then_restart_reattaches(
    port_base: tuple[int, int], tmp_path: Path, audit_location: str
) -> None:
    config = write_config(tmp_path / "city.yaml", port_base)
    audit_path = audit_location
    control_port = free_tcp_port()
    sim_args = [
        "-m",
        "sitl",
        "--speed",
        str(SPEED),
        "--config",
        str(config),
        "--control-port",
        str(control_port),
    ]
    controller_args = [
        "-m", "tests.system.controller_process", "--config", str(config), "--audit", audit_path,
        "--speed", str(SPEED),
    ]  # fmt: skip

    async with child(sim_args, tmp_path / "sim.log") as sim:
        await sim.wait_line(lambda line: line.get("id") == NEST, 30)
        home = GeoPoint(float(sim.lines[0]["lat"]), float(sim.lines[0]["lon"]))
        target = destination(home, 90.0, 500.0)

        # first life: launch, on station, kill -9
        async with child(controller_args, tmp_path / "controller-1.log") as first:
            await first.wait_line(lambda line: line.get("phase") in ("ready", "charging"), 30)
            assert (await first.send({"op": "wait_sensors", "nest": NEST}))["ok"]
            launch = {"op": "launch", "nest": NEST, "lat": target.lat_deg, "lon": target.lon_deg, "alt_m": 40}
            reply = await first.send({**launch, "command_id": "cmd-kill9"})
            assert reply["ok"], reply
            on_station = await first.wait_line(lambda line: line.get("phase") == "on_station", 60)
            flight_id = on_station["flight_id"]
            assert flight_id
            reported = [line["phase"] for line in first.lines if "phase" in line]
            announced = [line["event"] for line in first.lines if "event" in line]
            killed_at = time.time()
            first.proc.send_signal(signal.SIGKILL)
            assert await first.proc.wait() == -signal.SIGKILL

        # everything the controller had reported before the kill is in the audit store
        async with await AuditStore.open(audit_path) as audit:
            transitions = [t["to_state"] for t in await audit.transitions(NEST)]
            [open_flight] = await audit.open_flights(nest_id=NEST)
            detail = await audit.flight(flight_id)
        changes = [p for i, p in enumerate(reported) if i == 0 or p != reported[i - 1]]
        assert transitions[-len(changes) + 1 :] == changes[1:], (transitions, reported)
        for phase in ("preflight", "launching", "en_route", "on_station"):
            assert phase in transitions
        assert open_flight["flight_id"] == flight_id and open_flight["command_id"] == "cmd-kill9"
        assert detail is not None and detail["flight"]["ended_at_unix_s"] is None
        flight_events = [e["kind"] for e in detail["events"]]
        assert {"launched", "en_route"} <= set(flight_events)
        # every flight event the controller announced before it died is in the store
        # (the store may hold one more: committed, then killed before it was announced)
        told = [k for k in announced if k in FLIGHT_EVENT_KINDS]
        assert flight_events[: len(told)] == told, (announced, flight_events)
        assert detail["track"] and detail["track"][-1]["at_unix_s"] > killed_at - 3.0
        assert await takeoffs(control_port) == 1

        # second life: re-attached to the drone in the air, same flight, no second take-off
        async with child(controller_args, tmp_path / "controller-2.log") as second:
            back = await second.wait_line(lambda line: line.get("phase") in AIRBORNE, 30)
            assert back["flight_id"] == flight_id
            assert await takeoffs(control_port) == 1
            state = (await request({"op": "state", "nest": NEST}, port=control_port))["state"][0]
            assert state["armed"] and not state["on_pad"]

            # and home (PX4 may already be returning on its own: it lost its ground station)
            if second.phase()["phase"] != "returning":
                reply = await second.send({"op": "return", "nest": NEST})
                assert reply["ok"] or second.phase()["phase"] == "returning", reply
            await second.wait_line(lambda line: line.get("phase") == "charging", 120)
            assert await takeoffs(control_port) == 1
            state = (await request({"op": "state", "nest": NEST}, port=control_port))["state"][0]
            assert state["on_pad"] and not state["armed"] and not state["cover_open"]

        async with await AuditStore.open(audit_path) as audit:
            [flight] = await audit.flights(nest_id=NEST)
        assert flight["flight_id"] == flight_id and flight["outcome"] == "completed"
