"""Nest leases and instance heartbeats in PostgreSQL: the SQL behind dronectl/nest/leases.py.

Every time is the database's clock (``clock_timestamp()``), never an instance's: instances with
skewed clocks still agree on who holds what. A lease row per nest (v3 in schema_pg.py): owner,
fencing token, expiry. The token only grows (a trigger refuses less) and the row is never
deleted, so a token is never handed out twice for a nest (an instance taking back, with the same
process, an expired lease nobody took meanwhile keeps its token: the same tenure, resumed). The
audit store checks a write's token against this row in the write's own transaction (store.py, ``Fence``).

Its own connection and writer thread (writer.py), apart from the audit store's: a renewal never
waits behind a batch of records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dronectl.audit.connection import Connection
from dronectl.audit.postgres import PostgresConnection, is_postgres_url, redact
from dronectl.audit.writer import AuditWriter
from dronectl.domain.leases import AUTOMATIONS, Lease

_NOW = "extract(epoch FROM clock_timestamp())::float8"
_LEASE_COLS = "nest_id, owner, token, expires_at_unix_s"
# in acquire's upsert: the row is our own lease, not expired yet (EXCLUDED.acquired_at_unix_s is now),
# or expired with the token this process held last (the ? parameter): nobody took it in between (a
# takeover raises the token), so its tenure goes on under the same token and what it spooled while
# the database was away is still fenced right when replayed (a PostgreSQL restart)
_STILL_OURS = (
    "l.owner = EXCLUDED.owner AND (l.expires_at_unix_s > EXCLUDED.acquired_at_unix_s OR l.token = ?)"
)


@dataclass(frozen=True, slots=True)
class LeaseSnapshot:
    """What the database holds at one instant of its clock."""

    now_unix_s: float
    live_instances: frozenset[str]
    leases: Mapping[int, Lease]


@dataclass(frozen=True, slots=True)
class InstanceRow:
    instance_id: str
    started_at_unix_s: float
    expires_at_unix_s: float
    info: dict[str, Any]
    nests: tuple[int, ...]  # the nests it holds a valid lease on
    leader: bool = False  # it holds the automations lease (dronectl/domain/leases.py)


def _lease(row: Any) -> Lease:
    return Lease(int(row[0]), str(row[1]), int(row[2]), float(row[3]))


class LeaseBook:
    """Heartbeats, lease reads and changes, each one transaction on the book's own thread."""

    def __init__(self, writer: AuditWriter) -> None:
        self._writer = writer

    @classmethod
    async def open(cls, url: str) -> LeaseBook:
        """Connect (and migrate: the lease tables are schema v3) to ``url``, a postgresql:// URL."""
        if not is_postgres_url(url):
            raise ValueError("nest leases need the PostgreSQL audit store (--audit postgresql://...)")
        pg = PostgresConnection(url)

        def opener() -> tuple[Connection, int]:
            try:
                return pg, pg.open()
            except BaseException:
                pg.close()
                raise

        writer = AuditWriter(opener, redact(url))
        await writer.start()
        return cls(writer)

    async def close(self) -> None:
        await self._writer.close()

    async def heartbeat(self, instance_id: str, ttl_s: float, info: Mapping[str, Any]) -> None:
        info_json = json.dumps(dict(info), sort_keys=True)

        def beat(conn: Connection) -> None:
            conn.execute(
                f"INSERT INTO instances (instance_id, started_at_unix_s, expires_at_unix_s, info_json)"
                f" SELECT ?, n.s, n.s + ?, ? FROM (SELECT {_NOW} AS s) AS n"
                " ON CONFLICT (instance_id) DO UPDATE SET expires_at_unix_s = EXCLUDED.expires_at_unix_s,"
                " info_json = EXCLUDED.info_json",
                (instance_id, ttl_s, info_json),
            )

        await self._writer.submit(beat, write=True)

    async def leave(self, instance_id: str) -> None:
        """A clean stop: the instance is no longer live and its leases are free at once."""

        def leave(conn: Connection) -> None:
            conn.execute(
                f"UPDATE instances SET expires_at_unix_s = {_NOW} WHERE instance_id = ?", (instance_id,)
            )
            conn.execute(
                f"UPDATE nest_leases SET expires_at_unix_s = {_NOW}"
                f" WHERE owner = ? AND expires_at_unix_s > {_NOW}",
                (instance_id,),
            )

        await self._writer.submit(leave, write=True)

    async def snapshot(self) -> LeaseSnapshot:
        def read(conn: Connection) -> LeaseSnapshot:
            now = float(conn.execute(f"SELECT {_NOW}").fetchone()[0])
            live = conn.execute("SELECT instance_id FROM instances WHERE expires_at_unix_s > ?", (now,))
            leases = conn.execute(f"SELECT {_LEASE_COLS} FROM nest_leases")
            return LeaseSnapshot(
                now,
                frozenset(str(r[0]) for r in live),
                {lease.nest_id: lease for lease in map(_lease, leases)},
            )

        return await self._writer.submit(read, write=False)

    async def acquire(
        self, nest_id: int, owner: str, ttl_s: float, last_token: int | None = None
    ) -> Lease | None:
        """Take the nest if its lease is free or expired (a new token), or extend our own valid one
        (same token); None if another instance holds it. ``last_token``: the token this process
        last held for the nest; an expired row still ours with it is taken back with the same token
        (nobody held the nest in between), not a new one."""
        keep = -1 if last_token is None else last_token  # tokens start at 1

        def take(conn: Connection) -> Lease | None:
            row = conn.execute(
                "INSERT INTO nest_leases AS l (nest_id, owner, token, expires_at_unix_s, acquired_at_unix_s)"
                f" SELECT ?, ?, 1, n.s + ?, n.s FROM (SELECT {_NOW} AS s) AS n"
                " ON CONFLICT (nest_id) DO UPDATE SET"
                f" token = CASE WHEN {_STILL_OURS} THEN l.token ELSE l.token + 1 END,"
                f" acquired_at_unix_s = CASE WHEN {_STILL_OURS}"
                " THEN l.acquired_at_unix_s ELSE EXCLUDED.acquired_at_unix_s END,"
                " owner = EXCLUDED.owner, expires_at_unix_s = EXCLUDED.expires_at_unix_s"
                " WHERE l.expires_at_unix_s <= EXCLUDED.acquired_at_unix_s OR l.owner = EXCLUDED.owner"
                f" RETURNING {_LEASE_COLS}",
                (nest_id, owner, ttl_s, keep, keep),
            ).fetchone()
            return None if row is None else _lease(row)

        return await self._writer.submit(take, write=True)

    async def renew(self, lease: Lease, ttl_s: float) -> Lease | None:
        """Extend a lease still valid and still ours with this token; None if it was lost."""

        def renew(conn: Connection) -> Lease | None:
            row = conn.execute(
                f"UPDATE nest_leases SET expires_at_unix_s = {_NOW} + ?"
                f" WHERE nest_id = ? AND owner = ? AND token = ? AND expires_at_unix_s > {_NOW}"
                f" RETURNING {_LEASE_COLS}",
                (ttl_s, lease.nest_id, lease.owner, lease.token),
            ).fetchone()
            return None if row is None else _lease(row)

        return await self._writer.submit(renew, write=True)

    async def release(self, lease: Lease) -> None:
        """Give the nest up now (a rebalance): it is free for the next acquire."""
        await self._writer.submit(
            lambda conn: conn.execute(
                f"UPDATE nest_leases SET expires_at_unix_s = {_NOW}"
                " WHERE nest_id = ? AND owner = ? AND token = ?",
                (lease.nest_id, lease.owner, lease.token),
            ),
            write=True,
        )

    async def instances(self) -> list[InstanceRow]:
        """Live instances and the nests each holds, for ``dronectl instances``."""

        def read(conn: Connection) -> list[InstanceRow]:
            now = float(conn.execute(f"SELECT {_NOW}").fetchone()[0])
            held: dict[str, list[int]] = {}
            leader: str | None = None
            for row in conn.execute(
                "SELECT owner, nest_id FROM nest_leases WHERE expires_at_unix_s > ? ORDER BY nest_id", (now,)
            ):
                if int(row[1]) == AUTOMATIONS:
                    leader = str(row[0])
                else:
                    held.setdefault(str(row[0]), []).append(int(row[1]))
            rows = conn.execute(
                "SELECT instance_id, started_at_unix_s, expires_at_unix_s, info_json FROM instances"
                " WHERE expires_at_unix_s > ? ORDER BY instance_id",
                (now,),
            ).fetchall()
            return [
                InstanceRow(
                    r[0],
                    float(r[1]),
                    float(r[2]),
                    json.loads(r[3]),
                    tuple(held.get(r[0], ())),
                    leader=r[0] == leader,
                )
                for r in rows
            ]

        return await self._writer.submit(read, write=False)
