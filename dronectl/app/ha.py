"""Several instances (issue 14): this instance's nest leases while ``dronectl up`` runs, and
``dronectl instances``, the live instances and the nests each holds.

Leases need the PostgreSQL audit store (``--audit postgresql://...``): with SQLite there is one
instance and no lease. The keeper gates the fleet (a nest is controlled only while held) and the
gateway (requests for nests held elsewhere are left to their owner); docs/deployment.md says
what is not wired yet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import structlog

from dronectl.audit import AuditError, is_postgres_url
from dronectl.audit.leases import LeaseBook
from dronectl.nest.leases import LeaseKeeper, LeaseSettings

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def lease_keeping(
    audit: str,
    instance_id: str,
    nest_ids: Iterable[int],
    settings: LeaseSettings,
    info: Mapping[str, Any],
    lead: bool = True,
) -> AsyncIterator[LeaseKeeper | None]:
    """This instance's LeaseKeeper running until the context exits (None with a SQLite store);
    on exit the nests are given up at once, so the other instances need not wait for the expiry."""
    if not is_postgres_url(audit):
        yield None
        return
    book = await LeaseBook.open(audit)
    keeper = LeaseKeeper(book, instance_id, nest_ids, settings, info=info, lead=lead)
    task = asyncio.create_task(keeper.run(), name="leases")
    try:
        yield keeper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await keeper.leave()
        except AuditError as exc:  # the database is away: the leases expire by themselves
            log.warning("lease.leave_failed", instance=instance_id, error=str(exc))
        await book.close()


async def _instances(url: str) -> list[dict[str, Any]]:
    book = await LeaseBook.open(url)
    try:
        rows = await book.instances()
    finally:
        await book.close()
    now = time.time()
    return [
        {
            "instance": r.instance_id,
            "nests": list(r.nests),
            "automations_leader": r.leader,
            "up_s": round(max(0.0, now - r.started_at_unix_s)),
            **r.info,
        }
        for r in rows
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dronectl instances", description="Live dronectl instances and the nests each holds."
    )
    parser.add_argument("--audit", required=True, help="the shared store: postgresql://user@host:5432/db")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    if not is_postgres_url(args.audit):
        sys.stderr.write(
            "dronectl instances: --audit must be a postgresql:// URL (SQLite has one instance)\n"
        )
        return 2
    try:
        rows = asyncio.run(_instances(args.audit))
    except AuditError as exc:
        sys.stderr.write(f"dronectl instances: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps({"instances": rows}) + "\n")
        return 0
    if not rows:
        sys.stdout.write("no live instance\n")
    for row in rows:
        nests = ", ".join(str(n) for n in row["nests"]) or "none"
        leader = ", automations leader" if row["automations_leader"] else ""
        sys.stdout.write(f"{row['instance']}: nests {nests} (up {row['up_s']} s{leader})\n")
    return 0
