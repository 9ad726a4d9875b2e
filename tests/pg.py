"""A fresh PostgreSQL database per test, on the server at 127.0.0.1:5432 (trust auth, user postgres).

Several people run tests on one machine at once: every database is named uniquely, created for the
test and dropped after it (``WITH (FORCE)``: a connection a failed test left open does not keep it).
``.ci/run`` starts a PostgreSQL 15 where none answers. ``DRONECTL_TEST_PG`` overrides the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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


class OwnServer:
    """A PostgreSQL server of the test's own (initdb into a temporary directory, a free port), to
    stop and start again: a real restart, which the shared server at 127.0.0.1:5432 must never see.
    Debian's binaries (the newest /usr/lib/postgresql/*/bin), run as ``postgres`` when we are root,
    as ``.ci/run`` does."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if not found:
            raise RuntimeError("the tests need Debian's postgresql package (/usr/lib/postgresql/*/bin)")
        self.bin = Path(found[-1]).parent
        # not under pytest's tmp_path: the postgres user cannot enter root's 0700 directories
        self.dir = Path(tempfile.mkdtemp(prefix="dronectl-pg-"))
        self.data = self.dir / "data"
        self.as_pg: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_pg, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        log = str(self.dir / "server.log")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url_for(self, database: str) -> str:
        return self.dsn.rsplit("/", 1)[0] + f"/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url_for(name)

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def own_server() -> Iterator[OwnServer]:
    """A running PostgreSQL of the test's own; stopped (immediate) and removed after it."""
    server = OwnServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(server.dir, ignore_errors=True)
