"""Latency from an incident received to the launch command sent, with 16 nests.

    python bench/dispatch_latency.py [--samples 32] [--speed 1] [--check]

Set-up: the simulator (16 nests, ``SimWorld``) in a child process; in this process the real service
(``open_service``: MAVSDK, pymavlink, the audit store with FULL durability) and the API controller
with its incident dispatcher (``FleetOperations.report_incident``, as the MQTT API calls it).

Each sample is an incident of priority 1 a short hop from one of the nests (in turn), so that nest
is the one the time-to-scene model picks among all 16 nests. Measured from just before
``report_incident`` to:

* ``launch call``: the dispatcher's launch reaching ``NestController.launch`` (the plan over 16 nests,
  the incident and the automated launch command recorded in the audit store, the safety checks);
* ``on the link``: the first command of the launch (charger off or cover open) arriving at the
  simulated nest (its link's dispatch hooked in the child; both sides read CLOCK_MONOTONIC).

Then the incident is cancelled and the launch aborted on the ground, and the nest is used again once
its cover has closed. Prints p50/p95/p99/max and a JSON line; ``--check`` exits 1 when a p99 is
250 ms or more. Exit 2 when the set-up fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import queue
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue as MpQueue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.mavlink import dronectl_v20 as mav  # noqa: E402 - needs ROOT on sys.path first
from dronectl.app.compose import compose_operations, incident_dispatcher  # noqa: E402
from dronectl.audit import Durability  # noqa: E402
from dronectl.domain.clock import Clock, ScaledClock, SystemClock  # noqa: E402
from dronectl.domain.config import CityConfig, MavlinkConfig, load_config  # noqa: E402
from dronectl.domain.errors import DronectlError  # noqa: E402
from dronectl.domain.geo import destination  # noqa: E402
from dronectl.domain.nest_state import LAUNCHABLE  # noqa: E402
from dronectl.logging import configure_logging  # noqa: E402
from dronectl.nest.controller import NestController  # noqa: E402
from dronectl.nest.service import open_service  # noqa: E402
from dronectl.nest.supervisor import Backoff  # noqa: E402
from dronectl.operations.fleet_ops import FleetOperations  # noqa: E402
from dronectl.operations.models import Actor, GroundPoint, Incident, Role  # noqa: E402
from sitl.ports import free_udp_range  # noqa: E402

TARGET_P99_MS = 250.0
HOP_M = 250.0
LAUNCH_COMMANDS = frozenset({mav.MAV_CMD_DRONECTL_DOCK_COVER, mav.MAV_CMD_DRONECTL_DOCK_CHARGER})


class BenchError(Exception):
    """The set-up failed."""


def bench_config(sim_base: int, client_base: int) -> CityConfig:
    return load_config().model_copy(
        update={
            "mavlink": MavlinkConfig(host="127.0.0.1", client_port_base=client_base, sim_port_base=sim_base)
        }
    )


def _sim_child(sim_base: int, client_base: int, speed: float, seen: MpQueue[Any], stop: MpEvent) -> None:
    """Run the 16-nest simulator; report each launch command a nest receives (monotonic ns)."""
    from sitl.world import SimWorld, make_sites

    configure_logging()

    async def main() -> None:
        config = bench_config(sim_base, client_base)
        async with SimWorld(make_sites(config), speed=speed) as world:
            for nest_id, nest in world.nests.items():
                original = nest.link._dispatch

                def hooked(msg: Any, nest_id: int = nest_id, original: Any = original) -> None:
                    ids = (mav.MAVLINK_MSG_ID_COMMAND_LONG, mav.MAVLINK_MSG_ID_COMMAND_INT)
                    if msg.get_msgId() in ids and int(msg.command) in LAUNCH_COMMANDS:
                        seen.put_nowait((time.monotonic_ns(), nest_id))
                    original(msg)

                nest.link._dispatch = hooked
            seen.put_nowait("ready")
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def log_sample(n: int, nest_id: int, call_ms: float, link_ms: float) -> None:
    if os.environ.get("BENCH_VERBOSE"):
        sys.stderr.write(
            f"sample {n}: nest {nest_id}: launch call {call_ms:.1f} ms, on the link {link_ms:.1f} ms\n"
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))]


def figures(values: list[float]) -> dict[str, float]:
    return {
        "samples": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
    }


def _hook_launch(controller: NestController, calls: dict[int, int]) -> None:
    original = controller.launch

    async def timed(*args: Any, **kwargs: Any) -> Any:
        calls[controller.nest_id] = time.monotonic_ns()
        return await original(*args, **kwargs)

    setattr(controller, "launch", timed)  # noqa: B010 - an instance attribute shadows the method


async def _first_on_link(seen: MpQueue[Any], nest_id: int, after_ns: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            item = await asyncio.to_thread(seen.get, True, 0.5)
        except queue.Empty:
            continue
        t_ns, nest = item
        if nest == nest_id and t_ns >= after_ns:
            return int(t_ns)
    raise BenchError(f"no launch command reached nest {nest_id}")


async def measure(api: FleetOperations, seen: MpQueue[Any], samples: int) -> dict[str, list[float]]:
    fleet = api.fleet
    calls: dict[int, int] = {}
    for controller in fleet.controllers.values():
        _hook_launch(controller, calls)
    to_call: list[float] = []
    to_link: list[float] = []
    nests = itertools.cycle(sorted(fleet.controllers))
    for n in range(samples):
        nest_id = next(nests)
        c = fleet.nest(nest_id)

        def ready(c: NestController = c) -> bool:
            return c.state.phase in LAUNCHABLE and c.dock.weather is not None

        await c.wait_for(ready, 120.0, "ready")
        scene = destination(c.home, 45.0, HOP_M)
        incident = Incident(
            id=f"bench-{n}",
            kind="accident",
            position=GroundPoint(lat=scene.lat_deg, lon=scene.lon_deg),
            priority=1,
            reported_at=datetime.now(UTC),
            actor=Actor(id="bench", role=Role.COMMANDER),
        )
        calls.pop(nest_id, None)
        t0 = time.monotonic_ns()
        api.report_incident(incident)
        on_link = await _first_on_link(seen, nest_id, t0, 30.0)
        if nest_id not in calls:
            raise BenchError(f"incident {incident.id}: nest {nest_id} was not the one launched")
        to_call.append((calls[nest_id] - t0) / 1e6)
        to_link.append((on_link - t0) / 1e6)
        log_sample(n, nest_id, to_call[-1], to_link[-1])
        incident_dispatcher(api).cancel(incident.id, "bench")

        def started(c: NestController = c) -> bool:
            return c.flight is not None or not c.state.flying

        await c.wait_for(started, 30.0, "flight started")
        with contextlib.suppress(DronectlError):
            await c.abort("bench: next sample")
    return {"launch call": to_call, "on the link": to_link}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sim_base, client_base = free_udp_range(20), free_udp_range(20)
    config = bench_config(sim_base, client_base)
    ctx = mp.get_context("spawn")
    seen: MpQueue[Any] = ctx.Queue()
    stop = ctx.Event()
    sim = ctx.Process(target=_sim_child, args=(sim_base, client_base, args.speed, seen, stop), daemon=True)
    sim.start()
    try:
        first = await asyncio.to_thread(seen.get, True, 60.0)
        if first != "ready":
            raise BenchError(f"simulator said {first!r}")
        clock: Clock = SystemClock() if args.speed == 1.0 else ScaledClock(args.speed)
        with tempfile.TemporaryDirectory() as tmp:
            async with open_service(
                config,
                Path(tmp) / "audit.sqlite3",
                clock=clock,
                backoff=Backoff(first_s=0.2, max_s=2.0),
                heartbeat_interval_s=1.0 / args.speed,
                audit_durability=Durability.FULL,
            ) as fleet:
                api = compose_operations(fleet)
                try:
                    latencies = await measure(api, seen, args.samples)
                finally:
                    await api.aclose()
        out: dict[str, Any] = {"nests": len(config.nests), "speed": args.speed}
        for name, values in latencies.items():
            out[name] = figures(values)
        return out
    finally:
        stop.set()
        sim.join(10)
        if sim.is_alive():
            sim.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=32, help="incidents (the 16 nests in turn)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator speed factor (1: PX4 rates)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 unless p99 < {TARGET_P99_MS:g} ms")
    args = parser.parse_args(argv)
    configure_logging(level="warning")
    try:
        result = asyncio.run(run(args))
    except BenchError as exc:
        sys.stderr.write(f"bench failed: {exc}\n")
        return 2
    for name in ("launch call", "on the link"):
        f = result[name]
        sys.stdout.write(
            f"incident -> {name}: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, p99 {f['p99_ms']} ms,"
            f" max {f['max_ms']} ms ({f['samples']} incidents, {result['nests']} nests)\n"
        )
    sys.stdout.write(json.dumps(result) + "\n")
    if args.check and max(result[n]["p99_ms"] for n in ("launch call", "on the link")) >= TARGET_P99_MS:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
