"""One thread that owns the database connection; the event loop hands it jobs and awaits their futures.

Why a thread: SQLite calls block (write, fsync, busy waits), so do psycopg's on PostgreSQL (network
round trips), and the service must never block its event loop on I/O. Why one thread: SQLite
allows one writer at a time anyway, and a single owner gives a total order of this instance's
records and makes check-then-insert (idempotency) atomic without locks (on PostgreSQL, shared by
several instances, the primary keys settle a race between them). Reads go through the same
thread, so a read issued after a write sees it. The connection (connection.py: SQLite;
postgres.py: PostgreSQL) is opened by the ``opener`` given, on the thread.

Group commit: the thread takes every job waiting in the queue (up to ``max_batch``), runs each
write in its own SAVEPOINT inside one transaction, COMMITs once, and only then resolves the
writes' futures. A failing job rolls back to its savepoint and fails alone; a failing COMMIT
fails every write of the batch. So a future that resolves without error means the row is
committed, and under load one fsync covers many records.

Durability (``synchronous``), with journal_mode=WAL:

* ``Durability.FULL`` (the default): the WAL is fsynced at every COMMIT. A record whose await
  returned survives kill -9, an OS crash and power loss. This is an audit trail of police
  operations, so we pay for it; group commit keeps the cost to one fsync per batch rather than
  per record (see bench/audit_bench.py).
* ``Durability.NORMAL``: the WAL is written with write(2) at COMMIT but fsynced only at
  checkpoints. Still correct for kill -9 -- the written pages live in the OS page cache, which
  outlives the process, and the next open replays the WAL -- but an OS crash or power loss can
  lose the last transactions (never corrupt the file). For hosts with power protection only.

On PostgreSQL the same two levels map to ``synchronous_commit`` on (FULL: the commit is flushed
to the server's WAL before the await returns) and off (NORMAL). A lost connection fails the
batch (AuditUnavailableError); the next batch tries to reconnect first (postgres.py).

Limits: the queue is unbounded (``backlog`` reports its depth; a stalled disk grows memory, not
loop latency). SQLite releases the GIL during I/O, but the thread's Python part still competes
for it, so under saturation the loop can see a few ms of extra lag (CPython's 5 ms switch
interval); at the service's real rates (tens of records a second) it is negligible.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from dronectl.audit.connection import Connection, Durability
from dronectl.audit.errors import AuditClosedError, AuditError, AuditUnavailableError, AuditWriteError

T = TypeVar("T")
Job = Callable[[Connection], T]
# Opens the connection on the writer thread: (connection, the schema version it had before)
Opener = Callable[[], tuple[Connection, int]]

log = structlog.get_logger("dronectl.audit")


@dataclass(slots=True)
class _Task(Generic[T]):
    fn: Job[T]
    write: bool
    future: asyncio.Future[T]


_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class AuditWriter:
    """Runs jobs ``fn(conn)`` in order on a dedicated thread; see the module docstring."""

    def __init__(self, opener: Opener, where: str, max_batch: int = 512) -> None:
        self.opener = opener
        self.where = where  # for messages: a path, or a DSN without its password
        self.max_batch = max_batch
        self.schema_version_before: int | None = None
        self._queue: queue.SimpleQueue[_Task[Any] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closed = False
        self._backlog = 0

    @property
    def backlog(self) -> int:
        """Jobs submitted whose futures have not resolved yet."""
        return self._backlog

    async def start(self) -> None:
        """Open (creating and migrating as needed) the database on the writer thread."""
        self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[int] = self._loop.create_future()
        self._stopped = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(opened,), name="audit-writer", daemon=True)
        self._thread.start()
        try:
            self.schema_version_before = await opened
        except BaseException:
            self._closed = True
            raise

    def submit(self, fn: Job[T], *, write: bool) -> asyncio.Future[T]:
        """Queue ``fn``; the future resolves after it ran (and, for a write, after COMMIT)."""
        if self._closed or self._loop is None:
            raise AuditClosedError("audit store is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._backlog += 1
        self._queue.put(_Task(fn, write, future))
        return future

    async def close(self) -> None:
        """Finish every queued job, close the connection, end the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        if self._stopped is None or self._thread is None:  # never started
            return
        await self._stopped  # every close() caller waits for the end, not only the first
        self._thread.join(timeout=1.0)  # the thread has only `return` left to run

    # ---- everything below runs on the writer thread -------------------------------------------

    def _run(self, opened: asyncio.Future[int]) -> None:
        try:
            conn, self.schema_version_before = self.opener()
        except Exception as exc:  # noqa: BLE001 -- any failure to open is reported to start()
            err = exc if isinstance(exc, AuditError) else AuditError(f"cannot open {self.where}: {exc}")
            self._resolve([(opened, None, err)], jobs=False)
            self._call_on_loop(self._on_thread_exit)
            return
        self._resolve([(opened, self.schema_version_before, None)], jobs=False)
        try:
            _Batch(conn, self).serve()
        except BaseException:  # callers were failed in serve(); report it, the thread ends
            log.exception("audit_writer_crashed")
        finally:
            conn.close()
            self._call_on_loop(self._on_thread_exit)

    def _on_thread_exit(self) -> None:  # on the loop
        """The thread is gone: refuse new jobs and fail any it will never run."""
        self._closed = True
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                self._deliver([(task.future, None, AuditClosedError("audit writer stopped"))], True)
        assert self._stopped is not None
        if not self._stopped.done():
            self._stopped.set_result(None)

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(fn)

    def _resolve(self, outcomes: list[_Outcome], jobs: bool = True) -> None:
        if not outcomes:
            return
        self._call_on_loop(lambda: self._deliver(outcomes, jobs))

    def _deliver(self, outcomes: list[_Outcome], jobs: bool) -> None:  # on the loop
        if jobs:
            self._backlog -= len(outcomes)
        for future, result, exc in outcomes:
            if future.done():  # the awaiting task was cancelled; the job ran anyway
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)


class _Batch:
    """The writer thread's serving loop: group commit with one savepoint per write job."""

    def __init__(self, conn: Connection, writer: AuditWriter) -> None:
        self.conn = conn
        self.writer = writer
        self.uncommitted: list[tuple[_Task[Any], Any]] = []
        self.done: list[_Outcome] = []

    def serve(self) -> None:
        q = self.writer._queue
        while True:
            batch = [q.get()]
            while len(batch) < self.writer.max_batch:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            stop = False
            try:
                self._reconnect(batch)
                for task in batch:
                    if task is None:
                        stop = True
                    elif task.write:
                        self._write(task)
                    else:
                        self._commit()
                        self._read(task)
                self._commit()
            except BaseException as exc:  # a bug or an interrupt: fail every caller, never leave one hanging
                err = AuditWriteError(f"audit writer crashed: {exc!r}")
                self._fail_uncommitted(err)
                answered = {id(future) for future, _, _ in self.done}
                self.done.extend(
                    (t.future, None, err) for t in batch if t is not None and id(t.future) not in answered
                )
                raise
            finally:
                self.writer._resolve(self.done)
                self.done = []
            if stop:
                return

    def _reconnect(self, batch: list[_Task[Any] | None]) -> None:
        """Nothing is uncommitted here: a lost connection may be re-opened (PostgreSQL)."""
        try:
            self.conn.reconnect_if_broken()
        except AuditUnavailableError as exc:
            self.done.extend((t.future, None, exc) for t in batch if t is not None)
            batch[:] = [t for t in batch if t is None]

    def _write(self, task: _Task[Any]) -> None:
        conn = self.conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE" if conn.dialect == "sqlite" else "BEGIN")
            conn.execute("SAVEPOINT job")
        except AuditError as exc:
            err = exc if isinstance(exc, AuditUnavailableError) else None
            self.done.append(
                (task.future, None, err or AuditWriteError(f"cannot start a transaction: {exc}"))
            )
            return
        try:
            result = task.fn(conn)
        except Exception as exc:  # noqa: BLE001 -- the job fails alone (to its caller); its rows are undone
            self._undo_job(exc)
            self.done.append((task.future, None, exc))
            return
        conn.execute("RELEASE job")
        self.uncommitted.append((task, result))

    def _undo_job(self, cause: Exception) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK TO job")
                self.conn.execute("RELEASE job")
                return
            except AuditError as exc:
                cause = exc
        # SQLite rolled back the whole transaction itself (e.g. disk full): the batch is lost
        self._fail_uncommitted(cause)

    def _commit(self) -> None:
        if not self.conn.in_transaction:  # nothing written, or the database rolled it all back
            self._fail_uncommitted(AuditWriteError("transaction rolled back by the database"))
            return
        try:
            self.conn.execute("COMMIT")
        except AuditError as exc:
            self._fail_uncommitted(exc)
            return
        self.done.extend((task.future, result, None) for task, result in self.uncommitted)
        self.uncommitted = []

    def _fail_uncommitted(self, cause: BaseException | None) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except AuditError:
                log.exception("audit_rollback_failed")
        if self.uncommitted:
            log.error("audit_commit_failed", records=len(self.uncommitted), error=str(cause))
            err = (
                cause
                if isinstance(cause, AuditUnavailableError)
                else AuditWriteError(f"not committed: {cause}")
            )
            self.done.extend((task.future, None, err) for task, _ in self.uncommitted)
            self.uncommitted = []

    def _read(self, task: _Task[Any]) -> None:
        try:
            self.done.append((task.future, task.fn(self.conn), None))
        except Exception as exc:  # noqa: BLE001 -- handed to the awaiting caller
            self.done.append((task.future, None, exc))


__all__ = ["AuditWriter", "Durability", "Job", "Opener"]
