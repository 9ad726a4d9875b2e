"""The PostgreSQL backend: a psycopg 3 connection behind the Connection shape (connection.py).

Why psycopg 3, and its synchronous API on the writer thread (not asyncpg, not psycopg's async
API): the store's records and queries are plain functions of a connection run in order on one
writer thread (writer.py) -- group commit with a savepoint per record, reads that see every write
queued before them, check-then-insert idempotency without locks. Running the same functions on
PostgreSQL keeps one code path and those guarantees for both backends; asyncpg has no synchronous
API to do that with. psycopg is the PostgreSQL adapter maintained with the project's own
libpq, and releases the GIL while it waits on the network, so the loop does not feel it. One
connection per store is what a single writer needs: no pool.

Losing the database: a statement on a broken connection raises AuditUnavailableError at once
(libpq's TCP keepalives and ``tcp_user_timeout`` bound how long a cut connection can hang a
statement; ``statement_timeout`` bounds a stuck server). Between batches the writer calls
``reconnect_if_broken``, which tries again at most every ``retry_s``; meanwhile records fail
fast with the same clear error, and the service refuses new commands (nothing could be audited).

The DSN may carry a password: it is never logged or put in an error (``redact``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import structlog

from dronectl.audit.connection import Cursor, Dialect
from dronectl.audit.errors import AuditUnavailableError, AuditWriteError
from dronectl.audit.schema_pg import migrate_pg

log = structlog.get_logger("dronectl.audit")

_SCHEMES = ("postgresql://", "postgres://")
# libpq options that bound how long a dead peer can hold a statement (see the module docstring)
_CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}
STATEMENT_TIMEOUT_MS = 10_000
# a writer paused mid-transaction (SIGSTOP, GC) would hold its lease row's share lock and stall a
# takeover: the server ends such a session after this long (the paused writer's batch fails)
IDLE_IN_TRANSACTION_TIMEOUT_MS = 3_000


def is_postgres_url(location: str) -> bool:
    return location.startswith(_SCHEMES)


def redact(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (URL or ``password=`` keyword form)."""
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password=)[^&\s]*", r"\1***", dsn)


def _error_text(exc: BaseException, dsn: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password") if dsn else None
    return text.replace(str(password), "***") if password else text


class PostgresConnection:
    """One psycopg connection (autocommit; the writer issues BEGIN/COMMIT itself), re-opened when lost."""

    dialect = Dialect.POSTGRESQL

    def __init__(self, dsn: str, synchronous_commit: bool = True, retry_s: float = 1.0) -> None:
        self.dsn = dsn
        self.synchronous_commit = synchronous_commit
        self.retry_s = retry_s
        self._raw: psycopg.Connection[Any] | None = None
        self._last_attempt_s = float("-inf")
        self._last_error = "not connected yet"
        self.schema_version_before: int | None = None

    @property
    def where(self) -> str:
        return redact(self.dsn)

    @property
    def connected(self) -> bool:
        return self._raw is not None and not self._raw.broken and not self._raw.closed

    def open(self) -> int:
        """Connect and migrate; the schema version found. Raises AuditUnavailableError, SchemaError."""
        self._connect()
        assert self._raw is not None
        try:
            self.schema_version_before = migrate_pg(self._raw)
        except psycopg.Error as exc:
            raise AuditWriteError(f"cannot migrate the audit database: {_error_text(exc, self.dsn)}") from exc
        return self.schema_version_before

    def _connect(self) -> None:
        self._last_attempt_s = time.monotonic()
        try:
            raw = psycopg.connect(self.dsn, autocommit=True, **_CONNECT_OPTIONS)
            raw.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            raw.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_TIMEOUT_MS}")
            raw.execute(f"SET synchronous_commit = {'on' if self.synchronous_commit else 'off'}")
        except psycopg.Error as exc:
            self._last_error = _error_text(exc, self.dsn)
            raise AuditUnavailableError(
                f"audit database {self.where} unreachable: {self._last_error}; nothing recorded"
            ) from exc
        self._raw = raw

    def reconnect_if_broken(self) -> None:
        if self.connected:
            return
        if self._raw is not None:
            self._raw.close()
            self._raw = None
            log.warning("audit.db_connection_lost", database=self.where)
        if time.monotonic() - self._last_attempt_s < self.retry_s:
            raise AuditUnavailableError(
                f"audit database {self.where} unreachable: {self._last_error}; nothing recorded"
            )
        self._connect()
        log.info("audit.db_reconnected", database=self.where)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raw = self._raw
        if raw is None or raw.broken or raw.closed:
            raise AuditUnavailableError(
                f"audit database {self.where} unreachable: {self._last_error}; nothing recorded"
            )
        if params:
            query = sql.replace("%", "%%").replace("?", "%s")
            args: Sequence[Any] | None = params
        else:
            query, args = sql, None
        try:
            return raw.execute(query.encode(), args)
        except psycopg.OperationalError as exc:
            self._last_error = _error_text(exc, self.dsn)
            if raw.broken:
                raise AuditUnavailableError(
                    f"audit database {self.where} unreachable: {self._last_error}; nothing recorded"
                ) from exc
            raise AuditWriteError(self._last_error) from exc
        except psycopg.Error as exc:
            raise AuditWriteError(_error_text(exc, self.dsn)) from exc

    @property
    def in_transaction(self) -> bool:
        raw = self._raw
        if raw is None or raw.broken:
            return False
        status = raw.info.transaction_status
        return status in (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
