"""A fresh PostgreSQL database per test, on the server at 127.0.0.1:5432 (trust auth, user postgres).

Several people run tests on one machine at once: every database is named uniquely, created for the
test and dropped after it (``WITH (FORCE)``: a connection a failed test left open does not keep it).
``.ci/run`` starts a PostgreSQL 15 where none answers. ``DRONECTL_TEST_PG`` overrides the server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import psycopg

SERVER_DSN = os.environ.get("DRONECTL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(database: str) -> str:
    """The ``postgresql://`` URL form, as ``dronectl up --audit`` takes it."""
    base = SERVER_DSN.rsplit("/", 1)[0]
    return f"{base}/{database}"


@contextmanager
def fresh_database(prefix: str = "dronectl_t") -> Iterator[str]:
    """Create a uniquely named database; yield its URL; drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(SERVER_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(f"the tests need PostgreSQL at {SERVER_DSN} (.ci/run starts one): {exc}") from exc
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield url_for(name)
    finally:
        with psycopg.connect(SERVER_DSN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def terminate_connections(database_url: str) -> int:
    """pg_terminate_backend every session on that database (the server stays up): a lost connection."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(SERVER_DSN, autocommit=True, connect_timeout=5) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def is_pg(location: str) -> bool:
    return location.startswith("postgresql://")


def query(location: str, sql: str) -> list[tuple[object, ...]]:
    """Run one statement outside the store (SQLite file or PostgreSQL URL); its rows."""
    if is_pg(location):
        with psycopg.connect(location, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description is not None else []
    import sqlite3

    with sqlite3.connect(location) as conn:
        return conn.execute(sql).fetchall()


def allow_connections(database_url: str, allowed: bool) -> None:
    """Open or shut the database to new sessions (shut + terminate_connections: an outage)."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(SERVER_DSN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'.encode())


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, period_s: float = 0.05) -> None:
    """Poll ``check`` (a database read: nothing to wait on but the rows) until true; TimeoutError after."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(period_s)
