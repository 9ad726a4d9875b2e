"""CPU and memory of the controller with 16 nests airborne at PX4 telemetry rates.

    python bench/controller_cpu.py                  # 16 nests, real time, 30 s measured
    python bench/controller_cpu.py --duration 60 --check

The simulator (``python -m sitl``) runs in a child process on free ports so its CPU is counted
apart; the controller (the whole service: MAVSDK, pymavlink, the 16 nest controllers, the audit
store) runs in this process. Every nest is launched to a point 150 m from its dock; once all 16
hold on station, CPU time (user + system, as percent of one core) and resident memory of this
process (and of any child it has besides the simulator) are measured over ``--duration`` real
seconds, then everyone is sent home. Target: within 20 % of one core and 300 MB.

Prints human-readable lines, then one JSON line with every figure. Exit status 0, or 1 with
``--check`` when the target is missed; 2 when the run could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dronectl.domain.clock import Clock, ScaledClock, SystemClock  # noqa: E402 - needs ROOT on sys.path first
from dronectl.domain.config import CityConfig, MavlinkConfig, load_config  # noqa: E402
from dronectl.domain.geo import destination  # noqa: E402
from dronectl.domain.nest_state import NestPhase  # noqa: E402
from dronectl.nest.service import open_service  # noqa: E402
from sitl.ports import free_tcp_port, free_udp_range  # noqa: E402

TARGET_CPU_PCT = 20.0  # of one core
TARGET_RSS_MB = 300.0
STATION_M = 150.0
ALT_M = 30.0
SAMPLE_PERIOD_S = 1.0


class BenchError(Exception):
    """The run could not be set up."""


@dataclass(frozen=True)
class Result:
    nests: int
    speed: float
    duration_s: float
    nests_airborne: int
    cpu_pct_one_core: float
    rss_mb_mean: float
    rss_mb_max: float
    threads: int
    sim_cpu_pct_one_core: float
    track_samples_per_s: float
    setup_s: float


def bench_config(sim_base: int, client_base: int) -> CityConfig:
    base = load_config()
    mavlink = MavlinkConfig(host="127.0.0.1", sim_port_base=sim_base, client_port_base=client_base)
    return base.model_copy(update={"mavlink": mavlink})


async def start_simulator(
    config_path: Path, speed: float, nests: int, workdir: Path
) -> asyncio.subprocess.Process:
    env = dict(os.environ, DRONECTL_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable, "-m", "sitl", "--speed", f"{speed:g}", "--config", str(config_path),
        "--control-port", str(free_tcp_port()),
    ]  # fmt: skip
    with (workdir / "sitl.err").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=err
        )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        for _ in range(nests):
            if not await proc.stdout.readline():
                raise BenchError(
                    f"python -m sitl exited with {await proc.wait()}; see {workdir / 'sitl.err'}"
                )
    return proc


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


async def run(args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="controller-cpu-"))
    sim_base = free_udp_range(120)
    config = bench_config(sim_base, sim_base + 60)
    nest_ids = [n.id for n in config.nests]
    config_path = workdir / "city.yaml"
    data = config.model_dump(mode="json")
    config_path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    started = time.monotonic()
    sim = await start_simulator(config_path, args.speed, len(nest_ids), workdir)
    me = psutil.Process()
    sim_proc = psutil.Process(sim.pid)
    try:
        clock: Clock = SystemClock() if args.speed == 1.0 else ScaledClock(args.speed)
        async with open_service(
            config, workdir / "audit.sqlite3", clock=clock, heartbeat_interval_s=1.0 / args.speed
        ) as fleet:
            ready = (NestPhase.READY, NestPhase.CHARGING)
            for c in fleet.controllers.values():
                await c.wait_for(lambda c=c: c.state.phase in ready, 60, "ready")  # type: ignore[misc]
            for c in fleet.controllers.values():
                await c.launch(destination(c.home, 0.0, STATION_M), ALT_M)
            for c in fleet.controllers.values():
                await c.wait_for(
                    lambda c=c: c.state.phase is NestPhase.ON_STATION,  # type: ignore[misc]
                    240 / args.speed + 60,
                    "on station",
                )
            setup_s = time.monotonic() - started
            airborne = sum(1 for c in fleet.controllers.values() if c.state.flying)

            def ours() -> list[psutil.Process]:
                return [me, *(p for p in me.children(recursive=True) if p.pid != sim.pid)]

            samples_before = await asyncio.to_thread(_track_samples, workdir / "audit.sqlite3")
            cpu0, sim0, t0 = _cpu_s(ours()), _cpu_s([sim_proc]), time.monotonic()
            rss: list[float] = []
            while time.monotonic() - t0 < args.duration:
                await asyncio.sleep(SAMPLE_PERIOD_S)  # a sampling period, not a wait for state
                rss.append(sum(p.memory_info().rss for p in ours()) / 1e6)
            elapsed = time.monotonic() - t0
            cpu = _cpu_s(ours()) - cpu0
            sim_cpu = _cpu_s([sim_proc]) - sim0
            samples = await asyncio.to_thread(_track_samples, workdir / "audit.sqlite3") - samples_before
            threads = me.num_threads()
            await fleet.return_all("bench over")
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await sim.wait()
            except TimeoutError:
                sim.kill()
                await sim.wait()
    return Result(
        nests=len(nest_ids),
        speed=args.speed,
        duration_s=round(elapsed, 2),
        nests_airborne=airborne,
        cpu_pct_one_core=round(100.0 * cpu / elapsed, 1),
        rss_mb_mean=round(sum(rss) / len(rss), 1),
        rss_mb_max=round(max(rss), 1),
        threads=threads,
        sim_cpu_pct_one_core=round(100.0 * sim_cpu / elapsed, 1),
        track_samples_per_s=round(samples / elapsed, 1),
        setup_s=round(setup_s, 1),
    )


def _track_samples(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM track").fetchone()
        return int(count)
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="real seconds measured")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator speed (1: PX4's real rates)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        result = asyncio.run(run(args))
    except BenchError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 2
    ok = result.cpu_pct_one_core <= TARGET_CPU_PCT and result.rss_mb_max <= TARGET_RSS_MB
    out = sys.stdout
    out.write(f"controller, {result.nests_airborne}/{result.nests} nests airborne at {result.speed:g}x,")
    out.write(f" {result.duration_s:.0f} s measured\n")
    out.write(f"  CPU {result.cpu_pct_one_core:.1f} % of one core (target {TARGET_CPU_PCT:.0f} %)\n")
    out.write(f"  RSS {result.rss_mb_mean:.0f} MB mean, {result.rss_mb_max:.0f} MB max")
    out.write(f" (target {TARGET_RSS_MB:.0f} MB), {result.threads} threads\n")
    out.write(f"  simulator (apart) {result.sim_cpu_pct_one_core:.1f} % of one core\n")
    out.write(f"  track samples stored {result.track_samples_per_s:.1f}/s; setup {result.setup_s:.0f} s\n")
    out.write(f"  {'within' if ok else 'MISSES'} target\n")
    out.write(json.dumps({**asdict(result), "target_cpu_pct": TARGET_CPU_PCT, "target_rss_mb": TARGET_RSS_MB,
                          "ok": ok}) + "\n")  # fmt: skip
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
