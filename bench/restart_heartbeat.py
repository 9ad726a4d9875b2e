"""How fast a restarted ``dronectl up`` is heard again by its drones (issue 19).

PX4 starts its data-link-loss failsafe COM_DL_LOSS_T (10 s) after the last ground-station
heartbeat: a service killed mid-flight must be back, and sending, well inside that. This starts
the simulator (one nest, real speed) in a child process, then ``--samples`` times: starts
``dronectl up --no-sim`` (embedded broker, its own ports), waits until the simulated PX4 hears its
heartbeat, kills it with SIGKILL, and starts it again. For each restart it reports the time from
the process start to the first heartbeat PX4 heard (wall clock, polled every 50 ms on the
simulator's control port) and the silence PX4 saw (simulated seconds, the simulator's own record).
Target: under 3 s from process start to the first heartbeat out.

    python bench/restart_heartbeat.py [--samples 5]

Human-readable lines, then one JSON line. The machine's load (1-minute average) is printed with
the figures: the start of a Python process is mostly imports, and a busy machine slows them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from dronectl.domain.config import default_config_path
from sitl.control import request

REPO = Path(__file__).resolve().parent.parent
NEST = 3


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path) -> Path:
    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data["nests"] = [n for n in data["nests"] if n["id"] == NEST]
    base = free_port(socket.SOCK_DGRAM) // 100 * 100 % 50000 + 10000
    data["mavlink"] = {"host": "127.0.0.1", "sim_port_base": base, "client_port_base": base + 50}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def heard(control_port: int) -> list[dict[str, Any]]:
    reply = await request({"op": "records", "nest": NEST, "kind": "gcs.heard_again"}, port=control_port)
    records: list[dict[str, Any]] = reply["records"]
    return records


async def first_heartbeat(control_port: int, before: int, timeout_s: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            records = await heard(control_port)
            if len(records) > before:
                return records[before]
            await asyncio.sleep(0.05)


async def main(samples: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = write_config(tmp / "city.yaml")
        control = free_port()
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sitl", "--speed", "1", "--config", str(config),
            "--control-port", str(control), cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert sim.stdout is not None
        await sim.stdout.readline()  # the nest's line: it is up
        up = [
            sys.executable, "-m", "dronectl.app.cli", "up", "--no-sim", "--config", str(config),
            "--audit", str(tmp / "audit.sqlite3"), "--sim-control-port", str(control),
            "--recordings", str(tmp / "rec"), "--snapshots", str(tmp / "snap"),
        ]  # fmt: skip
        starts: list[float] = []
        silences: list[float] = []
        try:
            for i in range(samples + 1):
                before = len(await heard(control))
                ports = ["--mqtt-port", str(free_port()), "--http-port", str(free_port())]
                t0 = time.monotonic()
                proc = await asyncio.create_subprocess_exec(
                    *up, *ports, cwd=REPO, env=env,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                if i == 0:  # the first start: PX4 never heard anyone before, nothing to measure
                    await asyncio.sleep(8.0)
                else:
                    record = await first_heartbeat(control, before)
                    starts.append(time.monotonic() - t0)
                    silences.append(float(record["data"]["silent_s"]))
                    print(f"restart {i}: heard {starts[-1]:.2f} s after the process start; "
                          f"PX4 silent {silences[-1]:.2f} s", flush=True)  # fmt: skip
                    await asyncio.sleep(3.0)  # settle before the next kill
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        finally:
            sim.send_signal(signal.SIGINT)
            await sim.wait()
    load = os.getloadavg()[0]
    start_median, start_max = statistics.median(starts), max(starts)
    result = {
        "samples": len(starts),
        "start_to_heard_s": {"median": start_median, "max": start_max},
        "px4_silence_s": {"median": statistics.median(silences), "max": max(silences)},
        "load_1min": round(load, 2),
        "cpus": os.cpu_count(),
    }
    print(f"process start -> first heartbeat heard: median {start_median:.2f} s, max {start_max:.2f} s "
          f"(target < 3 s; load {load:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.samples))))
