"""The one connection shape the writer thread, the records and the queries use, for both backends.

Both backends run the same job functions (store.py) and the same queries (queries.py) on one
writer thread (writer.py): statements are written once with ``?`` placeholders; the few places
where the two SQL dialects differ ask ``conn.dialect``. Driver errors leave a connection as
AuditWriteError (AuditUnavailableError when the database cannot be reached), so nothing above
this module knows sqlite3 or psycopg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from dronectl.audit.errors import AuditError, AuditWriteError
from dronectl.audit.schema import migrate


class Durability(StrEnum):
    FULL = "FULL"
    NORMAL = "NORMAL"


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A database connection owned by the writer thread (never used from the event loop)."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...

    def reconnect_if_broken(self) -> None:
        """Called between batches, with nothing uncommitted: re-open a lost connection (or raise)."""
        ...

    def close(self) -> None: ...


class SqliteConnection:
    """sqlite3 behind the Connection shape (the embedded default backend)."""

    dialect = Dialect.SQLITE

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.Error as exc:
            raise AuditWriteError(str(exc)) from exc

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def reconnect_if_broken(self) -> None:
        """A file does not go away between two batches."""

    def close(self) -> None:
        self.raw.close()


def open_sqlite(path: Path, durability: Durability, busy_timeout_s: float) -> tuple[SqliteConnection, int]:
    """Open (create, WAL, migrate) the file on the calling (writer) thread; the version it had."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=True)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AuditError(f"{path}: cannot use WAL journal (got {mode!r})")
        conn.execute(f"PRAGMA synchronous={durability.value}")
        conn.execute("PRAGMA foreign_keys=ON")
        before = migrate(conn)
    except BaseException:
        conn.close()
        raise
    return SqliteConnection(conn), before
