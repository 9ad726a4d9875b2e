"""An instance paused past its lease (SIGSTOP) and woken (SIGCONT) does not act on the nest it
lost: its fence is void the moment it wakes, and a write under the stale token is refused by the
store. The paused instance is a separate process; the one taking over runs here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from dronectl.audit import AuditStore, TransitionRecord
from dronectl.audit.leases import LeaseBook
from dronectl.nest.leases import LeaseKeeper
from tests.conftest import REPO_ROOT
from tests.ha.paused_child import SETTINGS
from tests.pg import query


async def next_line(proc: asyncio.subprocess.Process, want: str, timeout_s: float) -> dict[str, Any]:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout_s):
        while True:
            raw = await proc.stdout.readline()
            assert raw, "the child ended early"
            line: dict[str, Any] = json.loads(raw)
            if want in line:
                return line


async def test_a_paused_instance_does_not_act_on_the_nest_it_lost(pg_url: str, tmp_path: Path) -> None:
    async with await AuditStore.open(pg_url):
        pass  # the schema, before two processes race to create it
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("paused_child.py")), pg_url,
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=(tmp_path / "child.log").open("wb"),
    )  # fmt: skip
    book = await LeaseBook.open(pg_url)
    keeper = LeaseKeeper(book, "taker", [1], SETTINGS)
    runner: asyncio.Task[None] | None = None
    try:
        owned = await next_line(proc, "owned", 20)
        await next_line(proc, "wrote", 5)
        await next_line(proc, "wrote", 5)
        proc.send_signal(signal.SIGSTOP)

        runner = asyncio.create_task(keeper.run(), name="test.taker")
        await keeper.wait_owned(lambda nests: nests == [1], timeout_s=15)
        fence = keeper.fence(1)
        assert fence is not None and fence.token == owned["token"] + 1
        async with await AuditStore.open(pg_url) as store:
            await store.record_transition(TransitionRecord(1, 1e9, "a", "b", "taker"), fence=fence)

        proc.send_signal(signal.SIGCONT)
        verdict = await next_line(proc, "stale_write", 15)
        assert verdict["stale_write"] == "refused", verdict
        assert "stale" in verdict["error"]
        assert await proc.wait() == 0
        causes = [str(r[0]) for r in query(pg_url, "SELECT cause FROM transitions ORDER BY seq")]
        assert causes[-1] == "taker"  # nothing of the woken child after the takeover
        assert all(c.startswith("child ") for c in causes[:-1]) and "child stale" not in causes
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            await proc.wait()
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        await book.close()
