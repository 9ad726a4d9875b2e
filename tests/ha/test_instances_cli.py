"""``dronectl instances``: the live instances and the nests each holds, read from PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sys

from dronectl.audit.leases import LeaseBook
from dronectl.domain.leases import AUTOMATIONS, assignment
from dronectl.nest.leases import LeaseKeeper
from tests.conftest import REPO_ROOT
from tests.ha.paused_child import SETTINGS

NESTS = list(range(1, 17))


async def dronectl(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dronectl.app.cli", *args, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_instances_lists_who_holds_which_nest(pg_url: str) -> None:
    books = [await LeaseBook.open(pg_url) for _ in range(2)]
    keepers = [
        LeaseKeeper(book, name, NESTS, SETTINGS, info={"http": f"http://{name}:8080/"}, lead=name == "alpha")
        for book, name in zip(books, ("alpha", "bravo"), strict=True)
    ]
    tasks = [asyncio.create_task(k.run(), name=f"test.keeper[{k.instance_id}]") for k in keepers]
    want = assignment(NESTS, ["alpha", "bravo"])
    try:
        for keeper in keepers:

            def holds_its_share(owned: list[int], mine: list[int] = want[keeper.instance_id]) -> bool:
                return sorted(owned) == mine

            await keeper.wait_owned(holds_its_share, 15)
        await keepers[0].wait_held(AUTOMATIONS)  # the only candidate for the automations leader
        code, out, _ = await dronectl("instances", "--audit", pg_url, "--json")
        assert code == 0
        listed = {row["instance"]: row for row in json.loads(out)["instances"]}
        assert {name: row["nests"] for name, row in listed.items()} == want
        assert listed["alpha"]["http"] == "http://alpha:8080/"
        assert listed["alpha"]["automations_leader"] and not listed["bravo"]["automations_leader"]
        code, out, _ = await dronectl("instances", "--audit", pg_url)
        assert "alpha: nests" in out and "automations leader" in out.split("alpha: nests")[1].splitlines()[0]

        tasks[1].cancel()  # bravo stops cleanly: gone from the list at once
        await asyncio.gather(tasks[1], return_exceptions=True)
        await keepers[1].leave()
        code, out, _ = await dronectl("instances", "--audit", pg_url)
        assert code == 0 and "alpha: nests" in out and "bravo" not in out
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for book in books:
            await book.close()


async def test_instances_refuses_a_sqlite_store_and_an_unreachable_database() -> None:
    code, _, err = await dronectl("instances", "--audit", "var/audit.sqlite3")
    assert code == 2 and "postgresql://" in err
    code, _, err = await dronectl("instances", "--audit", "postgresql://ops:hunter2@127.0.0.1:1/x")
    assert code == 1 and "unreachable" in err and "hunter2" not in err
