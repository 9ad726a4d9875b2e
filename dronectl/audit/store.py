"""AuditStore: the append-only record of commands, nest transitions and flights.

Use it from the event loop::

    async with await AuditStore.open(path) as store:      # SQLite, or "postgresql://..."
        await store.record_command(CommandRecord(...))   # returns once the row is committed
        first = await store.first_outcome(command_id)

Every ``record_*`` returns only after its row is durably committed (see writer.py for the
durability choice and the group commit); no call blocks the loop on disk I/O. Cancelling the
awaiting task does not withdraw a record that is already queued.

Track samples are thinned to one per ``track_interval_s`` per flight before they reach the
disk (``record_track`` returns False for a sample it dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import structlog

from dronectl.audit import queries
from dronectl.audit.connection import Connection, Dialect, Durability, open_sqlite
from dronectl.audit.errors import (
    AuditClosedError,
    AuditError,
    AuditUnavailableError,
    AuditWriteError,
    DuplicateCommandError,
    StaleFenceError,
    UnknownRecordError,
)
from dronectl.audit.postgres import PostgresConnection, is_postgres_url, redact
from dronectl.audit.records import (
    CommandRecord,
    Fence,
    FlightEnd,
    FlightEvent,
    FlightStart,
    LoginFailureRecord,
    MissionRecord,
    OutcomeRecord,
    TrackSample,
    TransitionRecord,
    args_to_json,
)
from dronectl.audit.rows import (
    CommandRow,
    FlightDetail,
    FlightRow,
    LoginFailureRow,
    MissionRow,
    OutcomeRow,
    TransitionRow,
)
from dronectl.audit.spool import Spool, Spoolable
from dronectl.audit.writer import AuditWriter, Job
from dronectl.domain.leases import AUTOMATIONS

log = structlog.get_logger("dronectl.audit")


_FINAL = frozenset({"succeeded", "failed", "refused", "cancelled"})
_OPEN_COMMANDS_KEPT = 10_000  # commands followed for their latency; the oldest forgotten past this
_REPLAYING: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_replaying", default=None)
SPOOL_RETRY_S = 1.0


class AuditStore:
    def __init__(
        self, writer: AuditWriter, track_interval_s: float, dialect: Dialect, spool: Spool | None = None
    ) -> None:
        self.dialect = dialect
        self._spool = spool
        self._replayer: asyncio.Task[None] | None = None
        # (method, outcome, seconds from the command's first record to this final one, or None for a
        # first outcome): for the metrics; called on the loop after the row is committed
        self.command_observers: list[Callable[[str, str, float | None], None]] = []
        self._open_commands: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # several instances: the fence of a nest this instance holds now (LeaseKeeper.fence), put on
        # every write about a nest that comes without one; None: no leases (one instance)
        self.fence_for: Callable[[int], Fence | None] | None = None
        # several instances: the automations leader's fence (LeaseKeeper.lead_fence), for the
        # automations' own writes (incidents, patrol missions): automation_fence()
        self.lead_for: Callable[[], Fence | None] | None = None
        self._flight_nest: dict[str, int] = {}  # flight -> nest, for the fence of flight records
        self._writer = writer
        self.track_interval_s = track_interval_s
        self._last_sample_s: dict[str, float] = {}

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        durability: Durability = Durability.FULL,
        track_interval_s: float = 1.0,
        busy_timeout_s: float = 10.0,
        spool_path: Path | None = None,
    ) -> AuditStore:
        """Open (create, migrate) the store; raises AuditError if it cannot.

        ``path``: a SQLite file, or a ``postgresql://`` URL (libpq's form; its password is never
        logged). ``busy_timeout_s`` is SQLite's lock wait. ``spool_path`` (PostgreSQL only): where
        flight facts wait while the database is unreachable (spool.py); without it they fail.
        """
        location = str(path)
        if is_postgres_url(location):
            pg = PostgresConnection(location, synchronous_commit=durability is Durability.FULL)

            def open_pg() -> tuple[Connection, int]:
                try:
                    return pg, pg.open()
                except BaseException:
                    pg.close()
                    raise

            writer = AuditWriter(open_pg, redact(location))
            dialect = Dialect.POSTGRESQL
            spool = None if spool_path is None else Spool(Path(spool_path))
        else:
            file = Path(path)
            writer = AuditWriter(lambda: open_sqlite(file, durability, busy_timeout_s), str(file))
            dialect = Dialect.SQLITE
            spool = None  # the file is local: it does not go away between two records
        await writer.start()
        if spool is not None:
            try:
                await spool.start()
            except BaseException:
                await writer.close()
                raise
        store = cls(writer, track_interval_s, dialect, spool)
        if spool is not None and spool.pending:
            store._replay_soon()  # left by an earlier run
        return store

    @property
    def where(self) -> str:
        """The file, or the database URL without its password: safe to log."""
        return self._writer.where

    @property
    def backlog(self) -> int:
        """Records and queries queued or running, not yet answered (a health figure)."""
        return self._writer.backlog

    @property
    def schema_version_before(self) -> int | None:
        """The file's schema version when it was opened (0: it was created now)."""
        return self._writer.schema_version_before

    @property
    def spooled(self) -> int:
        """Flight facts waiting in the outage spool for the database (0 without a spool)."""
        return 0 if self._spool is None else self._spool.pending

    async def close(self) -> None:
        """Commit everything queued, then close (what is still spooled stays for the next start)."""
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        await self._writer.close()
        if self._spool is not None:
            await self._spool.close()

    # ---- writing through the outage spool ------------------------------------------------------

    async def _write(self, job: Job[None], record: Spoolable, fence: Fence | None) -> None:
        """Run a write job; with a spool, keep the record there while the database is unreachable."""
        key = _REPLAYING.get()
        if key is not None:
            await self._writer.submit(_applied_once(key, job), write=True)
            return
        spool = self._spool
        if spool is not None and spool.pending:  # behind what waits already: order is kept
            await spool.append(record, fence)
            self._replay_soon()
            return
        try:
            await self._writer.submit(job, write=True)
        except AuditUnavailableError as exc:
            if spool is None:
                raise
            await spool.append(record, fence)
            log.warning("audit.spooling", database=self.where, error=str(exc))
            self._replay_soon()

    def _replay_soon(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay(), name="audit.spool_replay")

    async def _replay(self) -> None:
        """Move the spool into the database, oldest first, until it is empty."""
        spool = self._spool
        assert spool is not None
        replay = {
            OutcomeRecord: self.record_outcome,
            TransitionRecord: self.record_transition,
            FlightStart: self.start_flight,
            FlightEnd: self.end_flight,
            TrackSample: self.record_track,
            FlightEvent: self.record_event,
            MissionRecord: self.record_mission,
            LoginFailureRecord: self.record_login_failure,
        }
        moved = 0
        while spool.pending:
            try:
                batch = await spool.oldest(256)
            except AuditClosedError:
                return
            for item in batch:
                token = _REPLAYING.set(item.key)
                try:
                    # each record type maps to its own method; mypy cannot pair them through the dict
                    await replay[type(item.record)](item.record, fence=item.fence)  # type: ignore[operator]
                except AuditUnavailableError:
                    break  # still away: try again in a moment
                except AuditWriteError as exc:  # refused for good (a stale fence...): kept aside, logged
                    log.error("audit.spool_rejected", record=type(item.record).__name__, error=str(exc))
                    await spool.reject(item.key, str(exc))
                    continue
                finally:
                    _REPLAYING.reset(token)
                await spool.done(item.key)
                moved += 1
            else:
                continue
            await asyncio.sleep(SPOOL_RETRY_S)  # a retry period, not a wait for state
        log.info("audit.spool_replayed", records=moved, database=self.where)

    async def __aenter__(self) -> AuditStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- commands -----------------------------------------------------------------------------

    async def record_command(self, command: CommandRecord, *, fence: Fence | None = None) -> None:
        """Record a new command with its first outcome.

        Raises DuplicateCommandError (carrying the first outcome) if the id was recorded before;
        check and insert are one step on the writer thread, so two deliveries of the same id
        racing each other still yield exactly one record.
        """
        args_json = args_to_json(command.args)  # bad arguments fail here, in the caller
        fence = self._ambient(command.nest_id, fence)

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            first = queries.first_outcome(conn, command.command_id)
            if first is not None:
                raise DuplicateCommandError(command.command_id, first)
            conn.execute(
                "INSERT INTO commands (command_id, at_unix_s, actor_id, actor_role, nest_id, method,"
                " args_json, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    command.command_id,
                    command.at_unix_s,
                    command.actor_id,
                    command.actor_role,
                    command.nest_id,
                    command.method,
                    args_json,
                    command.channel,
                ),
            )
            _insert_outcome(
                conn,
                OutcomeRecord(
                    command.command_id, command.at_unix_s, command.outcome, command.code, command.message
                ),
            )

        await self._writer.submit(insert, write=True)
        if command.outcome.value not in _FINAL:
            self._open_commands[command.command_id] = (command.method, time.monotonic())
            while len(self._open_commands) > _OPEN_COMMANDS_KEPT:
                self._open_commands.popitem(last=False)
        self._observe(command.method, command.outcome.value, None)

    def _ambient(self, nest_id: int | None, fence: Fence | None) -> Fence | None:
        """The fence for a write about ``nest_id``: the one given, else this instance's lease;
        StaleFenceError when it holds none (it lost the nest: paused, partitioned, released)."""
        if fence is not None or self.fence_for is None or nest_id is None or _REPLAYING.get() is not None:
            return fence
        held = self.fence_for(nest_id)
        if held is None:
            raise StaleFenceError(f"nest {nest_id}: this instance does not hold its lease now; not recorded")
        return held

    def automation_fence(self) -> Fence | None:
        """The fence an automation's write (an incident and its milestones, a patrol mission) carries:
        the automations leader's lease; None with one instance. StaleFenceError when this instance
        does not lead now (a leader that was paused or cut off and replaced records nothing more)."""
        if self.lead_for is None:
            return None
        fence = self.lead_for()
        if fence is None:
            raise StaleFenceError("this instance is not the automations leader now; not recorded")
        return fence

    def _observe(self, method: str, outcome: str, latency_s: float | None) -> None:
        for observer in list(self.command_observers):
            observer(method, outcome, latency_s)

    async def ping(self) -> bool:
        """Does the database answer now (a read through the writer thread)? For /readyz."""
        try:
            await self._writer.submit(lambda conn: conn.execute("SELECT 1").fetchone(), write=False)
        except AuditError:
            return False
        return True

    async def record_outcome(self, outcome: OutcomeRecord, *, fence: Fence | None = None) -> None:
        """Append a later outcome of a recorded command (raises UnknownRecordError otherwise)."""

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            if (
                conn.execute("SELECT 1 FROM commands WHERE command_id = ?", (outcome.command_id,)).fetchone()
                is None
            ):
                raise UnknownRecordError(f"no command {outcome.command_id!r} to add an outcome to")
            _insert_outcome(conn, outcome)

        await self._write(insert, outcome, fence)
        if outcome.outcome.value in _FINAL:
            opened = self._open_commands.pop(outcome.command_id, None)
            if opened is not None:
                self._observe(opened[0], outcome.outcome.value, time.monotonic() - opened[1])

    # ---- nest transitions ---------------------------------------------------------------------

    async def record_transition(self, transition: TransitionRecord, *, fence: Fence | None = None) -> None:
        t = transition
        fence = self._ambient(t.nest_id, fence)

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            conn.execute(
                "INSERT INTO transitions (nest_id, at_unix_s, from_state, to_state, cause)"
                " VALUES (?, ?, ?, ?, ?)",
                (t.nest_id, t.at_unix_s, t.from_state, t.to_state, t.cause),
            )

        await self._write(insert, transition, fence)

    # ---- flights ------------------------------------------------------------------------------

    async def start_flight(self, start: FlightStart, *, fence: Fence | None = None) -> None:
        """Record that a flight began (raises AuditWriteError if the flight id exists)."""
        s = start
        fence = self._ambient(s.nest_id, fence)
        self._flight_nest[s.flight_id] = s.nest_id

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            conn.execute(
                "INSERT INTO flights (flight_id, nest_id, started_at_unix_s, command_id,"
                " target_lat_deg, target_lon_deg, target_alt_m) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    s.flight_id,
                    s.nest_id,
                    s.started_at_unix_s,
                    s.command_id,
                    s.target_lat_deg,
                    s.target_lon_deg,
                    s.target_alt_m,
                ),
            )

        await self._write(insert, start, fence)

    async def end_flight(self, end: FlightEnd, *, fence: Fence | None = None) -> None:
        """Close a flight; it leaves open_flights(). A flight ends once (AuditWriteError after)."""
        e = end
        fence = self._ambient(self._flight_nest.get(e.flight_id), fence)

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            _require_flight(conn, e.flight_id)
            conn.execute(
                "INSERT INTO flight_ends (flight_id, ended_at_unix_s, outcome, note) VALUES (?, ?, ?, ?)",
                (e.flight_id, e.ended_at_unix_s, e.outcome.value, e.note),
            )

        await self._write(insert, end, fence)
        self._last_sample_s.pop(end.flight_id, None)

    async def record_track(self, sample: TrackSample, *, fence: Fence | None = None) -> bool:
        """Record a track point unless one of this flight was kept less than track_interval_s ago."""
        last = self._last_sample_s.get(sample.flight_id)
        replaying = _REPLAYING.get() is not None  # thinned when it was spooled
        if not replaying and last is not None and sample.at_unix_s - last < self.track_interval_s:
            return False
        fence = self._ambient(self._flight_nest.get(sample.flight_id), fence)
        self._last_sample_s[sample.flight_id] = sample.at_unix_s
        p = sample

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            _require_flight(conn, p.flight_id)
            conn.execute(
                "INSERT INTO track (flight_id, at_unix_s, lat_deg, lon_deg, alt_m, speed_mps, battery_pct)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (p.flight_id, p.at_unix_s, p.lat_deg, p.lon_deg, p.alt_m, p.speed_mps, p.battery_pct),
            )

        try:
            await self._write(insert, sample, fence)
        except BaseException:
            if self._last_sample_s.get(sample.flight_id) == sample.at_unix_s:
                del self._last_sample_s[sample.flight_id]  # not kept: let the next sample in
            raise
        return True

    async def record_event(self, event: FlightEvent, *, fence: Fence | None = None) -> None:
        data_json = None if event.data is None else args_to_json(event.data)
        e = event
        fence = self._ambient(self._flight_nest.get(e.flight_id), fence)

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            _require_flight(conn, e.flight_id)
            conn.execute(
                "INSERT INTO flight_events (flight_id, at_unix_s, kind, message, data_json)"
                " VALUES (?, ?, ?, ?, ?)",
                (e.flight_id, e.at_unix_s, e.kind, e.message, data_json),
            )

        await self._write(insert, event, fence)

    # ---- patrol missions -----------------------------------------------------------------------

    async def record_mission(self, mission: MissionRecord, *, fence: Fence | None = None) -> None:
        """Append the mission's state after a transition (its latest row is its current state)."""
        data_json = args_to_json(mission.data)
        m = mission

        def insert(conn: Connection) -> None:
            _check_fence(conn, fence)
            conn.execute(
                "INSERT INTO missions (mission_id, at_unix_s, kind, stretch_id, state, nest_id, reason,"
                " data_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (m.mission_id, m.at_unix_s, m.kind, m.stretch_id, m.state, m.nest_id, m.reason, data_json),
            )

        await self._write(insert, mission, fence)

    async def missions(self, *, unfinished_only: bool = False, limit: int = 1000) -> list[MissionRow]:
        """Each mission's current state (its latest row), oldest mission first."""
        return await self._writer.submit(
            lambda conn: queries.latest_missions(conn, unfinished_only, limit), write=False
        )

    async def mission_history(self, mission_id: str) -> list[MissionRow]:
        """Every recorded state of one mission, in order."""
        return await self._writer.submit(lambda conn: queries.mission_history(conn, mission_id), write=False)

    # ---- refused logins ------------------------------------------------------------------------

    async def record_login_failure(self, failure: LoginFailureRecord, *, fence: Fence | None = None) -> None:
        """Append a burst of refused logins (operations.login_audit folds the bursts). Spooled
        while PostgreSQL is away, as the flight facts are; ``fence`` is unused (not a nest's)."""
        f = failure
        first = f.at_unix_s if f.first_at_unix_s is None else f.first_at_unix_s

        def insert(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO login_failures (at_unix_s, first_at_unix_s, channel, user_name, remote_addr,"
                " reason, attempts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (f.at_unix_s, first, f.channel, f.user_name, f.remote_addr, f.reason, f.attempts),
            )

        await self._write(insert, failure, None)

    async def login_failures(self, *, since_unix_s: float = 0.0, limit: int = 1000) -> list[LoginFailureRow]:
        """Refused logins recorded at or after ``since_unix_s``, oldest first."""
        return await self._writer.submit(
            lambda conn: queries.login_failures(conn, since_unix_s, limit), write=False
        )

    # ---- queries (run on the writer thread, after every record queued before them) ------------

    async def first_outcome(self, command_id: str) -> OutcomeRow | None:
        """The first answer given to ``command_id``, or None if it was never recorded."""
        return await self._writer.submit(lambda conn: queries.first_outcome(conn, command_id), write=False)

    async def command(self, command_id: str) -> CommandRow | None:
        return await self._writer.submit(lambda conn: queries.command(conn, command_id), write=False)

    async def commands(
        self,
        *,
        nest_id: int | None = None,
        actor_id: str | None = None,
        since_unix_s: float | None = None,
        until_unix_s: float | None = None,
        limit: int = 1000,
    ) -> list[CommandRow]:
        """Commands (with all their outcomes) received in [since, until), oldest first."""
        return await self._writer.submit(
            lambda conn: queries.commands(conn, nest_id, actor_id, since_unix_s, until_unix_s, limit),
            write=False,
        )

    async def transitions(
        self, nest_id: int | None, *, since_unix_s: float | None = None, until_unix_s: float | None = None
    ) -> list[TransitionRow]:
        """A nest's transitions (every nest's with ``nest_id`` None) in [since, until), in recording
        order."""
        return await self._writer.submit(
            lambda conn: queries.transitions(conn, nest_id, since_unix_s, until_unix_s), write=False
        )

    async def flight(self, flight_id: str) -> FlightDetail | None:
        """A flight with its track and events, or None."""
        return await self._writer.submit(lambda conn: queries.flight(conn, flight_id), write=False)

    async def flights(self, *, nest_id: int | None = None, limit: int = 100) -> list[FlightRow]:
        """The latest flights (of one nest, or all), newest first."""
        return await self._writer.submit(lambda conn: queries.flights(conn, nest_id, limit), write=False)

    async def flights_between(
        self, since_unix_s: float, until_unix_s: float, *, limit: int = 100
    ) -> list[FlightRow]:
        """The flights in the air at some moment of [since, until) (started before ``until``, not
        ended before ``since``), first started first."""
        return await self._writer.submit(
            lambda conn: queries.flights_between(conn, since_unix_s, until_unix_s, limit), write=False
        )

    async def open_flights(self, *, nest_id: int | None = None) -> list[FlightRow]:
        """Flights started and never ended: on restart, the drones to re-attach to."""
        rows = await self._writer.submit(lambda conn: queries.open_flights(conn, nest_id), write=False)
        self._flight_nest.update((r["flight_id"], r["nest_id"]) for r in rows)  # for their fences
        return rows

    async def open_commands(self, nest_id: int) -> list[CommandRow]:
        """A nest's commands (incidents apart) with no final outcome: running, or cut off."""
        return await self._writer.submit(lambda conn: queries.open_commands(conn, nest_id), write=False)

    async def open_incidents(self) -> list[CommandRow]:
        """Incidents (method ``incident``) with no final outcome: on restart, those to pick up."""
        return await self._writer.submit(queries.open_incidents, write=False)

    async def incidents(self, *, limit: int = 100) -> list[CommandRow]:
        """The latest incidents (method ``incident``), newest first, with all their outcomes."""
        return await self._writer.submit(lambda conn: queries.incidents(conn, limit), write=False)

    async def incident_flights(self, incident_id: str) -> list[str]:
        """The flights an incident's milestones were recorded with, in order."""
        return await self._writer.submit(
            lambda conn: queries.incident_flights(conn, incident_id), write=False
        )


def _applied_once(key: str, job: Job[None]) -> Job[None]:
    """The job, skipped if the database already applied this spooled record (spool.py)."""

    def run(conn: Connection) -> None:
        if conn.execute("SELECT 1 FROM spool_applied WHERE spool_key = ?", (key,)).fetchone() is not None:
            return
        job(conn)
        conn.execute("INSERT INTO spool_applied (spool_key) VALUES (?)", (key,))

    return run


def _check_fence(conn: Connection, fence: Fence | None) -> None:
    """Refuse the write unless ``fence`` is still the nest's lease (same transaction as the write).

    On PostgreSQL the lease row is read FOR SHARE: a takeover (an UPDATE of that row) waits for this
    transaction, or this one sees the new token; either way no write under a lost lease commits.
    """
    if fence is None:
        return
    lock = " FOR SHARE" if conn.dialect is Dialect.POSTGRESQL else ""
    row = conn.execute(
        f"SELECT owner, token FROM nest_leases WHERE nest_id = ?{lock}", (fence.nest_id,)
    ).fetchone()
    if row is None or row[0] != fence.owner or int(row[1]) != fence.token:
        now = "no lease" if row is None else f"now {row[0]!r} with token {row[1]}"
        what = "the automations lease" if fence.nest_id == AUTOMATIONS else f"nest {fence.nest_id}"
        raise StaleFenceError(
            f"{what}: lease token {fence.token} of {fence.owner!r} is stale ({now}); not recorded"
        )


def _insert_outcome(conn: Connection, o: OutcomeRecord) -> None:
    conn.execute(
        "INSERT INTO command_outcomes (command_id, at_unix_s, outcome, code, message) VALUES (?, ?, ?, ?, ?)",
        (o.command_id, o.at_unix_s, o.outcome.value, o.code, o.message),
    )


def _require_flight(conn: Connection, flight_id: str) -> None:
    if conn.execute("SELECT 1 FROM flights WHERE flight_id = ?", (flight_id,)).fetchone() is None:
        raise UnknownRecordError(f"no flight {flight_id!r}")
