"""kill -9 of a process writing to the audit store loses nothing it reported as committed (SQLite
and PostgreSQL: ``location``, tests/audit/conftest.py).

The child (this file run as a script) writes commands, outcomes, transitions and track samples
from many concurrent tasks as fast as it can and prints ``<kind> <key>`` once each await has
returned. The test SIGKILLs it mid-stream, then checks that every reported record is in the
store, that the database is intact and that the append-only triggers still hold.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pg import is_pg, query

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 16
T0 = 1_760_000_000.0


async def _child(path: str, durability: str) -> None:
    from dronectl.audit import (
        AuditStore,
        CommandOutcome,
        CommandRecord,
        Durability,
        FlightStart,
        OutcomeRecord,
        TrackSample,
        TransitionRecord,
    )

    store = await AuditStore.open(path, durability=Durability(durability), track_interval_s=0.0)
    await store.start_flight(FlightStart("airborne", 5, T0))
    out = sys.stdout.fileno()
    os.write(out, b"flight airborne\n")

    async def worker(w: int) -> None:
        i = 0
        while True:
            key = f"w{w}-{i}"
            t = T0 + i
            await store.record_command(
                CommandRecord(
                    key, t, f"actor{w}", "automation", w % 16 + 1, "goto", {"i": i}, CommandOutcome.ACCEPTED
                )
            )
            lines = [f"cmd {key}"]
            if i % 3 == 0:
                await store.record_outcome(OutcomeRecord(key, t + 0.5, CommandOutcome.SUCCEEDED, message=key))
                lines.append(f"out {key}")
            if i % 5 == 0:
                await store.record_transition(TransitionRecord(w % 16 + 1, t, "a", "b", key))
                lines.append(f"tr {key}")
            if i % 4 == 0:
                await store.record_track(TrackSample("airborne", t + w / 100, 43.9, 125.3, 300.0, 10.0, 90.0))
                lines.append(f"trk {t + w / 100!r}")
            os.write(out, ("\n".join(lines) + "\n").encode())
            i += 1

    async with asyncio.TaskGroup() as tg:
        for w in range(WORKERS):
            tg.create_task(worker(w), name=f"audit-kill9-worker[{w}]")


def _read_available(fd: int, buf: bytearray, timeout_s: float) -> bool:
    """Append what the pipe has within timeout_s; False at end of file."""
    ready, _, _ = select.select([fd], [], [], timeout_s)
    if not ready:
        return True
    chunk = os.read(fd, 65536)
    buf.extend(chunk)
    return bool(chunk)


@pytest.mark.parametrize("durability", ["FULL", "NORMAL"])
def test_kill9_loses_no_committed_record(location: str, durability: str) -> None:
    path = location
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, __file__, str(path), durability], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = bytearray()
    try:
        deadline = time.monotonic() + 30
        while buf.count(b"\n") < 4000:  # let it get well into its stride
            assert proc.poll() is None, "the writer died by itself"
            assert time.monotonic() < deadline, "writer too slow: under 4000 records in 30 s"
            _read_available(fd, buf, 0.1)
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        while _read_available(fd, buf, 1.0):  # what it wrote before dying is still in the pipe
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    complete = bytes(buf[: buf.rfind(b"\n") + 1]).decode().splitlines()
    reported: dict[str, set[str]] = {"flight": set(), "cmd": set(), "out": set(), "tr": set(), "trk": set()}
    for line in complete:
        kind, key = line.split(" ", 1)
        reported[kind].add(key)
    assert reported["flight"] == {"airborne"}
    assert len(reported["cmd"]) >= 1000 and reported["out"] and reported["tr"] and reported["trk"]

    if not is_pg(location):
        assert query(path, "PRAGMA integrity_check") == [("ok",)]
    stored_cmds = {r[0] for r in query(path, "SELECT command_id FROM commands")}
    stored_outs = {
        r[0] for r in query(path, "SELECT message FROM command_outcomes WHERE outcome='succeeded'")
    }
    stored_trs = {r[0] for r in query(path, "SELECT cause FROM transitions")}
    stored_trk = {repr(r[0]) for r in query(path, "SELECT at_unix_s FROM track")}
    assert reported["cmd"] - stored_cmds == set()
    assert reported["out"] - stored_outs == set()
    assert reported["tr"] - stored_trs == set()
    assert reported["trk"] - stored_trk == set()
    # every command row has its first outcome: a record never commits half
    orphans = query(
        path,
        "SELECT count(*) FROM commands c WHERE NOT EXISTS"
        " (SELECT 1 FROM command_outcomes o WHERE o.command_id = c.command_id)",
    )
    assert orphans == [(0,)]
    for sql in ("UPDATE commands SET actor_id = 'x'", "DELETE FROM track", "DELETE FROM command_outcomes"):
        with pytest.raises(Exception, match="append-only"):  # sqlite3 or psycopg's error
            query(path, sql)

    async def reopen() -> list[str]:
        from dronectl.audit import AuditStore

        async with await AuditStore.open(path) as store:
            return [f["flight_id"] for f in await store.open_flights()]

    # a restarted controller finds the flight it must re-attach to
    assert asyncio.run(reopen()) == ["airborne"]


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2]))
