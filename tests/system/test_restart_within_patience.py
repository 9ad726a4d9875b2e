"""A restart costs no flight (issue 19): ``dronectl up`` killed -9 mid-flight and started again
re-attaches to the airborne drone before PX4's data-link-loss failsafe fires (COM_DL_LOSS_T,
10 s): the simulated PX4 hears its ground station again within it, never records the link lost,
and its mode never changes to Return on its own. The simulator runs at real speed here: at a
higher speed PX4's patience (counted in simulated seconds) would be shorter than any restart.

The first life is the controller process the other kill -9 tests use (it launches over stdin);
the second is ``dronectl up --no-sim`` itself, as an operator would start it again."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from dronectl.domain.geo import GeoPoint, destination
from sitl.control import request
from tests.system.test_restart_kill9 import NEST, child, free_tcp_port, write_config

COM_DL_LOSS_T_S = 10.0


async def sim_records(control_port: int, kind: str) -> list[dict[str, Any]]:
    reply = await request({"op": "records", "nest": NEST, "kind": kind}, port=control_port)
    records: list[dict[str, Any]] = reply["records"]
    return records


async def wait_record(control_port: int, kind: str, after_s: float, timeout_s: float) -> dict[str, Any]:
    """The first simulator record of ``kind`` after simulated time ``after_s`` (asked every 0.2 s:
    the simulator is another process)."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = [r for r in await sim_records(control_port, kind) if r["time_s"] > after_s]
            if found:
                return found[0]
            await asyncio.sleep(0.2)


async def test_kill_9_mid_flight_restart_reattaches_before_px4s_link_loss_failsafe(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "city.yaml", port_base)
    audit_path = tmp_path / "audit.sqlite3"
    control_port = free_tcp_port()
    sim_args = ["-m", "sitl", "--speed", "1", "--config", str(config), "--control-port", str(control_port)]
    first_args = [
        "-m", "tests.system.controller_process", "--config", str(config), "--audit", str(audit_path),
        "--speed", "1",
    ]  # fmt: skip
    up_args = [
        "-m", "dronectl.app.cli", "up", "--no-sim", "--config", str(config), "--audit", str(audit_path),
        "--mqtt-port", str(free_tcp_port()), "--http-port", str(free_tcp_port()),
        "--sim-control-port", str(control_port), "--recordings", str(tmp_path / "rec"),
        "--snapshots", str(tmp_path / "snap"),
    ]  # fmt: skip

    async with child(sim_args, tmp_path / "sim.log") as sim:
        await sim.wait_line(lambda line: line.get("id") == NEST, 30)
        home = GeoPoint(float(sim.lines[0]["lat"]), float(sim.lines[0]["lon"]))
        target = destination(home, 90.0, 120.0)

        async with child(first_args, tmp_path / "controller-1.log") as first:
            await first.wait_line(lambda line: line.get("phase") in ("ready", "charging"), 60)
            assert (await first.send({"op": "wait_sensors", "nest": NEST}))["ok"]
            launch = {"op": "launch", "nest": NEST, "lat": target.lat_deg, "lon": target.lon_deg, "alt_m": 20}
            assert (await first.send({**launch, "command_id": "cmd-patience"}))["ok"]
            await first.wait_line(lambda line: line.get("phase") in ("en_route", "on_station"), 120)
            state = (await request({"op": "state", "nest": NEST}, port=control_port))["state"][0]
            killed_at_sim_s = float(state["time_s"])
            first.proc.send_signal(signal.SIGKILL)
            assert await first.proc.wait() == -signal.SIGKILL
        started = time.monotonic()

        async with child(up_args, tmp_path / "up.log"):
            heard = await wait_record(control_port, "gcs.heard_again", killed_at_sim_s, 3 * COM_DL_LOSS_T_S)
            restart_s = time.monotonic() - started
            silent_s = float(heard["data"]["silent_s"])
            print(f"PX4 heard its ground station again after {silent_s:.1f} s of silence "
                  f"({restart_s:.1f} s after the restart began)")  # fmt: skip
            assert silent_s < COM_DL_LOSS_T_S, heard
            assert [
                r for r in await sim_records(control_port, "link.") if r["time_s"] > killed_at_sim_s
            ] == []
            assert [
                r for r in await sim_records(control_port, "failsafe") if r["time_s"] > killed_at_sim_s
            ] == []
            modes = [
                r["data"]["mode"]
                for r in await sim_records(control_port, "mode")
                if r["time_s"] > killed_at_sim_s
            ]
            assert "RTL" not in modes, modes
            state = (await request({"op": "state", "nest": NEST}, port=control_port))["state"][0]
            assert state["armed"] and not state["on_pad"]
