"""Several instances (issue 14): command latency with the PostgreSQL store vs SQLite, side by side,
and the nest-lease takeover time after a kill -9, over repeated kills.

    python bench/ha_bench.py [--commands 500] [--concurrency 64] [--kills 10] [--ttl 5] [--pg URL]

Command latency: what the audit store adds to a command before anything is sent to a nest --
``record_command`` (the idempotency check and the accepted row, committed) -- one writer at a
time, then ``--concurrency`` at once; both backends FULL (fsync on SQLite, synchronous_commit on
PostgreSQL). The floor, measured in the same run on each backend: a no-op hop through the writer
thread, and on PostgreSQL a ``SELECT 1`` round trip.

Takeover: a child process holds the leases of 4 nests and is killed with SIGKILL; the time from
the kill to this process's LeaseKeeper holding all 4 again (new fencing tokens). Its floor is the
lease's time to live (``--ttl``): nobody may take a lease before it expires. Not measured here:
the re-attach after it, up to the new owner's first MAVLink command (tests/system/test_failover.py
runs that path once).
Needs PostgreSQL (default: the tests' server, a fresh database made and dropped here).
Human-readable lines, then one JSON line. The machine's load is printed with them.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord
from dronectl.audit.leases import LeaseBook
from dronectl.nest.leases import LeaseKeeper, LeaseSettings
from tests.pg import fresh_database

NESTS = [1, 2, 3, 4]
REPO_ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values_s: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values_s) * 1e3, 3),
        "p99_ms": round(pct(values_s, 0.99) * 1e3, 3),
        "max_ms": round(max(values_s) * 1e3, 3),
    }


async def command_latency(location: str, commands: int, concurrency: int) -> dict[str, Any]:
    async with await AuditStore.open(location) as store:
        floor: list[float] = []
        for _ in range(200):
            t = time.perf_counter()
            await store._writer.submit(lambda conn: None, write=False)
            floor.append(time.perf_counter() - t)
        select1: list[float] = []
        for _ in range(200):
            t = time.perf_counter()
            await store.ping()
            select1.append(time.perf_counter() - t)

        def command(i: int, tag: str) -> CommandRecord:
            return CommandRecord(
                f"{tag}-{i}", time.time(), "bench", "pilot", 3, "hold", {}, CommandOutcome.ACCEPTED
            )

        one: list[float] = []
        for i in range(commands):
            t = time.perf_counter()
            await store.record_command(command(i, "seq"))
            one.append(time.perf_counter() - t)

        many: list[float] = []

        async def worker(w: int) -> None:
            for i in range(commands // concurrency + 1):
                t = time.perf_counter()
                await store.record_command(command(i, f"con{w}"))
                many.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "thread_hop_floor": summary(floor),
        "read_round_trip": summary(select1),
        "record_command_sequential": summary(one),
        "record_command_concurrent": {**summary(many), "per_s": round(len(many) / elapsed)},
    }


CHILD = """
import asyncio, os, sys
sys.path.insert(0, {root!r})
from dronectl.audit.leases import LeaseBook
from dronectl.nest.leases import LeaseKeeper, LeaseSettings
async def main():
    book = await LeaseBook.open({url!r})
    keeper = LeaseKeeper(book, "victim", {nests!r}, LeaseSettings(ttl_s={ttl!r}))
    task = asyncio.create_task(keeper.run())
    await keeper.wait_owned(lambda owned: sorted(owned) == {nests!r}, 30)
    os.write(1, b"owned\\n")
    await task
import structlog; structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
asyncio.run(main())
"""


async def takeover(url: str, kills: int, ttl_s: float) -> dict[str, Any]:
    settings = LeaseSettings(ttl_s=ttl_s)
    times: list[float] = []
    book = await LeaseBook.open(url)
    try:
        for _ in range(kills):
            code = CHILD.format(root=str(REPO_ROOT), url=url, nests=NESTS, ttl=ttl_s)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line == b"owned\n", line
            heir = LeaseKeeper(book, "heir", NESTS, settings)
            killed = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            task = asyncio.create_task(heir.run())
            await heir.wait_owned(lambda owned: sorted(owned) == NESTS, ttl_s * 4 + 10)
            times.append(time.monotonic() - killed)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await heir.leave()
            await proc.wait()
    finally:
        await book.close()
    return {
        "kills": kills,
        "ttl_s": ttl_s,
        "p50_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "floor_s": ttl_s,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=LeaseSettings().ttl_s)
    args = parser.parse_args()
    result: dict[str, Any] = {"load_avg_1m": os.getloadavg()[0], "cpus": os.cpu_count()}
    with fresh_database("dronectl_bench") as url, tempfile.TemporaryDirectory() as tmp:
        for name, location in (("sqlite", str(Path(tmp) / "audit.db")), ("postgresql", url)):
            result[name] = await command_latency(location, args.commands, args.concurrency)
        result["takeover"] = await takeover(url, args.kills, args.ttl)
    print(f"load average (1 min) {result['load_avg_1m']:.2f} on {result['cpus']} CPUs")
    for name in ("sqlite", "postgresql"):
        r = result[name]
        print(
            f"{name:<10} record_command p50 {r['record_command_sequential']['p50_ms']:7.3f} ms"
            f"  p99 {r['record_command_sequential']['p99_ms']:7.3f} ms  |  x{args.concurrency}:"
            f" p50 {r['record_command_concurrent']['p50_ms']:7.3f} ms,"
            f" {r['record_command_concurrent']['per_s']}/s"
            f"  |  floor: thread hop p50 {r['thread_hop_floor']['p50_ms']:.3f} ms,"
            f" read round trip p50 {r['read_round_trip']['p50_ms']:.3f} ms"
        )
    t = result["takeover"]
    print(
        f"takeover after kill -9 ({t['kills']} kills): p50 {t['p50_s']:.2f} s, max {t['max_s']:.2f} s"
        f" (floor: the lease ttl, {t['floor_s']:.1f} s)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
