"""Audit store benchmark: committed-write throughput and latency, and event-loop lag meanwhile.

    python bench/audit_bench.py [--records 20000] [--concurrency 64] [--durability FULL|NORMAL|both] [--dir D]

For each durability mode it runs two phases on a fresh database in ``--dir`` (default: the
system temp dir; put it on the disk the service will use, since fsync cost is the point):

* sequential: one writer awaits each record before the next (the latency of one committed
  write when nothing else is going on);
* concurrent: ``--concurrency`` writers at once (group commit: one fsync covers a batch).

Latency is from the call to ``record_command`` until its await returns, i.e. until the row is
committed. Loop lag is how late a 1 ms timer fired at worst while the writes ran.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord, Durability


@dataclass(frozen=True)
class Result:
    rows: int
    elapsed_s: float
    latencies_s: list[float]
    max_loop_lag_s: float

    def line(self, label: str) -> str:
        lat = sorted(self.latencies_s)
        p50 = statistics.median(lat) * 1e3
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3
        return (
            f"{label:<28} {self.rows / self.elapsed_s:>9.0f} rows/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
            f"   loop lag max {self.max_loop_lag_s * 1e3:5.1f} ms"
        )


def record(phase: str, i: int, worker: int) -> CommandRecord:
    return CommandRecord(
        command_id=f"bench-{phase}-{worker}-{i}",
        at_unix_s=time.time(),
        actor_id=f"bench{worker}",
        actor_role="automation",
        nest_id=worker % 16 + 1,
        method="goto",
        args={"target": {"lat": 43.88 + i * 1e-6, "lon": 125.35, "alt_m": 120.0}},
        outcome=CommandOutcome.ACCEPTED,
    )


async def run_phase(store: AuditStore, phase: str, records: int, concurrency: int) -> Result:
    latencies: list[float] = []
    lag = 0.0
    done = asyncio.Event()

    async def watch_loop() -> None:
        nonlocal lag
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lag = max(lag, time.perf_counter() - start - 0.001)

    async def writer(worker: int, count: int) -> None:
        for i in range(count):
            start = time.perf_counter()
            await store.record_command(record(phase, i, worker))
            latencies.append(time.perf_counter() - start)

    per_worker = records // concurrency
    started = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(watch_loop(), name="bench.loop_lag")
        async with asyncio.TaskGroup() as writers:
            for w in range(concurrency):
                writers.create_task(writer(w, per_worker), name=f"bench.writer[{w}]")
        elapsed = time.perf_counter() - started
        done.set()
    return Result(per_worker * concurrency, elapsed, latencies, lag)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--sequential-records", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--durability", choices=["FULL", "NORMAL", "both"], default="both")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the scratch database")
    args = parser.parse_args()
    modes = (
        [Durability.FULL, Durability.NORMAL] if args.durability == "both" else [Durability(args.durability)]
    )
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="audit-bench-") as scratch:
        print(f"scratch database in {scratch}")
        for mode in modes:
            async with await AuditStore.open(Path(scratch) / f"{mode.value}.db", durability=mode) as store:
                seq = await run_phase(store, "seq", args.sequential_records, 1)
                print(seq.line(f"{mode.value} sequential"))
                conc = await run_phase(store, "conc", args.records, args.concurrency)
                print(conc.line(f"{mode.value} concurrent x{args.concurrency}"))


if __name__ == "__main__":
    asyncio.run(main())
