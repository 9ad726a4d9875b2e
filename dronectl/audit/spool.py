"""The outage spool: flight facts kept on the local disk while the shared database is unreachable.

With PostgreSQL, the database can go away (restart, failover, a cut link) while drones fly. The
service keeps flying them, and what it learns meanwhile -- transitions, track, flight events and
ends, later outcomes of commands already recorded, mission states -- must not be lost nor stop
the nest that reports it. Those records go to this spool, a SQLite file on the instance's disk
(committed with fsync before the caller goes on, so a kill -9 loses nothing either), and are
replayed into the database in their order once it answers again. While the spool holds anything,
new facts go behind them, so the database receives everything in the order it happened.

New commands are *not* spooled: their idempotency (a repeated id answered with its first
outcome) needs the shared store, so they are refused while it is unreachable (AuditUnavailableError).

Each spooled record has a key; the database keeps the keys it applied (``spool_applied``, in the
same transaction as the record), so a crash between the database's commit and the spool's delete
replays nothing twice. A record the database refuses on replay (a stale fencing token: the nest
was taken over during the outage) is moved to ``rejected`` in the spool file and logged, never
silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from dronectl.audit.connection import Connection, Durability, SqliteConnection
from dronectl.audit.records import (
    CommandOutcome,
    Fence,
    FlightEnd,
    FlightEvent,
    FlightOutcome,
    FlightStart,
    LoginFailureRecord,
    MissionRecord,
    OutcomeRecord,
    TrackSample,
    TransitionRecord,
)
from dronectl.audit.writer import AuditWriter

Spoolable = (
    OutcomeRecord
    | TransitionRecord
    | FlightStart
    | FlightEnd
    | TrackSample
    | FlightEvent
    | MissionRecord
    | LoginFailureRecord
)
KINDS: dict[str, type[Any]] = {
    "outcome": OutcomeRecord,
    "transition": TransitionRecord,
    "flight_start": FlightStart,
    "flight_end": FlightEnd,
    "track": TrackSample,
    "event": FlightEvent,
    "mission": MissionRecord,
    "login_failure": LoginFailureRecord,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}

_TABLES = (
    "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL, record_json TEXT NOT NULL, fence_json TEXT)",
    "CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,"
    " kind TEXT NOT NULL, record_json TEXT NOT NULL, fence_json TEXT, error TEXT NOT NULL)",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Spooled:
    key: str
    record: Spoolable
    fence: Fence | None


def encode(record: Spoolable) -> tuple[str, str]:
    return _KIND_OF[type(record)], json.dumps(dataclasses.asdict(record), allow_nan=False)


def decode(kind: str, record_json: str, fence_json: str | None) -> Spooled:
    fields = json.loads(record_json)
    cls = KINDS[kind]
    if cls is OutcomeRecord:
        fields["outcome"] = CommandOutcome(fields["outcome"])
    elif cls is FlightEnd:
        fields["outcome"] = FlightOutcome(fields["outcome"])
    fence = None if fence_json is None else Fence(**json.loads(fence_json))
    return Spooled("", cls(**fields), fence)


class Spool:
    """The spool file, on its own writer thread (the same machinery as the store's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending = 0  # records in the spool, not yet replayed
        self._writer = AuditWriter(self._open, str(path))

    def _open(self) -> tuple[Connection, int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute(f"PRAGMA synchronous={Durability.FULL.value}")
        for sql in _TABLES:
            raw.execute(sql)
        return SqliteConnection(raw), 0

    async def start(self) -> None:
        await self._writer.start()
        self.pending = await self._writer.submit(
            lambda c: int(c.execute("SELECT count(*) FROM spool").fetchone()[0]), write=False
        )

    async def close(self) -> None:
        await self._writer.close()

    async def append(self, record: Spoolable, fence: Fence | None) -> None:
        kind, record_json = encode(record)
        fence_json = None if fence is None else json.dumps(dataclasses.asdict(fence))
        key = uuid.uuid4().hex
        self.pending += 1
        try:
            await self._writer.submit(
                lambda c: c.execute(
                    "INSERT INTO spool (key, kind, record_json, fence_json) VALUES (?, ?, ?, ?)",
                    (key, kind, record_json, fence_json),
                ),
                write=True,
            )
        except BaseException:
            self.pending -= 1
            raise

    async def oldest(self, limit: int) -> list[Spooled]:
        def read(c: Connection) -> list[Spooled]:
            rows = c.execute(
                "SELECT key, kind, record_json, fence_json FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            return [dataclasses.replace(decode(r[1], r[2], r[3]), key=r[0]) for r in rows]

        return await self._writer.submit(read, write=False)

    async def done(self, key: str) -> None:
        await self._writer.submit(lambda c: c.execute("DELETE FROM spool WHERE key = ?", (key,)), write=True)
        self.pending -= 1

    async def reject(self, key: str, error: str) -> None:
        def move(c: Connection) -> None:
            c.execute(
                "INSERT INTO rejected (key, kind, record_json, fence_json, error)"
                " SELECT key, kind, record_json, fence_json, ? FROM spool WHERE key = ?",
                (error, key),
            )
            c.execute("DELETE FROM spool WHERE key = ?", (key,))

        await self._writer.submit(move, write=True)
        self.pending -= 1

    async def rejected(self) -> list[tuple[str, str]]:
        """(kind, error) of every record the database refused on replay."""
        return await self._writer.submit(
            lambda c: [(r[0], r[1]) for r in c.execute("SELECT kind, error FROM rejected ORDER BY seq")],
            write=False,
        )
