"""Failover mid-flight, repeated: kill -9 of the instance controlling an airborne drone, until
another instance has re-attached to it (reports the same flight airborne: it follows and guards it).

    python bench/takeover_bench.py [--kills 10] [--ttl 2] [--speed 5]

The simulator and every instance are separate processes sharing a fresh PostgreSQL database
(the tests' server). Nest 3 is launched once; then, --kills times: a new instance joins (named
so that the current owner stays preferred: no rebalance), the owner is killed with SIGKILL, and
the time to the heir's first report of the flight is taken. The drone stays in the air all along
(one take-off, checked at the simulated nest at the end). Floor: about the lease ttl (--ttl): no
lease may be taken before it expires, which is a ttl after its last renewal (up to one renewal
interval before the kill). Human-readable lines, then one JSON line with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import yaml

from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.leases import preferred_owner
from sitl.ports import free_udp_range
from tests.pg import fresh_database
from tests.system.test_restart_kill9 import (
    AIRBORNE,
    NEST,
    Child,
    child,
    free_tcp_port,
    takeoffs,
    write_config,
)


def successor(owner: str, taken: set[str]) -> str:
    """A new instance name the rendezvous hash ranks below ``owner`` for the nest."""
    for i in count():
        name = f"i{i}"
        if name not in taken and preferred_owner(NEST, [owner, name]) == owner:
            return name
    raise AssertionError("unreachable")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--speed", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir, fresh_database("dronectl_bench") as url:
        tmp = Path(tmp_dir)
        sim_ports = free_udp_range(20)
        config = write_config(
            tmp / "city.yaml", (sim_ports, free_udp_range(20, set(range(sim_ports, sim_ports + 21))))
        )
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        sim_base = data["mavlink"]["sim_port_base"]
        for nest in data["nests"]:
            nest["mavlink_url"] = f"udpout://127.0.0.1:{sim_base + nest['id']}"
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        control_port = free_tcp_port()
        sim_args = ["-m", "sitl", "--speed", str(args.speed), "--config", str(config)]
        sim_args += ["--control-port", str(control_port)]

        def instance(name: str) -> list[str]:
            return [
                "-m", "tests.system.controller_process", "--config", str(config), "--audit", url,
                "--speed", str(args.speed), "--instance-id", name, "--lease-ttl", str(args.ttl),
            ]  # fmt: skip

        times: list[float] = []
        async with child(sim_args, tmp / "sim.log") as sim:
            await sim.wait_line(lambda line: line.get("id") == NEST, 30)
            home = GeoPoint(float(sim.lines[0]["lat"]), float(sim.lines[0]["lon"]))
            target = destination(home, 90.0, 400.0)
            names = {"i0"}
            owner_name = "i0"
            owner_cm = child(instance(owner_name), tmp / "i0.log")
            owner: Child = await owner_cm.__aenter__()
            await owner.wait_line(lambda line: line.get("phase") in ("ready", "charging"), 60)
            assert (await owner.send({"op": "wait_sensors", "nest": NEST}))["ok"]
            go = {"op": "launch", "nest": NEST, "lat": target.lat_deg, "lon": target.lon_deg, "alt_m": 40}
            assert (await owner.send(go))["ok"]
            flight_id = (await owner.wait_line(lambda line: line.get("phase") == "on_station", 120))[
                "flight_id"
            ]
            for _ in range(args.kills):
                heir_name = successor(owner_name, names)
                names.add(heir_name)
                heir_cm = child(instance(heir_name), tmp / f"{heir_name}.log")
                heir = await heir_cm.__aenter__()
                await heir.wait_line(lambda line: "phase" in line, 60)
                killed = time.monotonic()
                owner.proc.send_signal(signal.SIGKILL)
                await owner.proc.wait()
                await owner_cm.__aexit__(None, None, None)
                await heir.wait_line(
                    lambda line: line.get("phase") in AIRBORNE and line.get("flight_id") == flight_id,
                    args.ttl * 4 + 60,
                )
                times.append(time.monotonic() - killed)
                print(f"kill {len(times):2d}: re-attached after {times[-1]:.2f} s", flush=True)
                owner, owner_cm, owner_name = heir, heir_cm, heir_name
            assert await takeoffs(control_port) == 1, "launched twice"
            if owner.phase()["phase"] != "returning":
                await owner.send({"op": "return", "nest": NEST})
            await owner_cm.__aexit__(None, None, None)
    result = {
        "kills": len(times),
        "ttl_s": args.ttl,
        "p50_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "floor_s": args.ttl,
        "takeoffs": 1,
        "load_avg_1m": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(
        f"kill -9 -> re-attached by another instance, {result['kills']} kills: p50 {result['p50_s']:.2f} s,"
        f" max {result['max_s']:.2f} s (floor: the lease ttl, {args.ttl:.1f} s); one take-off;"
        f" load {result['load_avg_1m']:.2f} on {result['cpus']} CPUs"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
