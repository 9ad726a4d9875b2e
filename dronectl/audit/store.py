"""AuditStore: the append-only record of commands, nest transitions and flights.

Use it from the event loop::

    async with await AuditStore.open(path) as store:
        await store.record_command(CommandRecord(...))   # returns once the row is committed
        first = await store.first_outcome(command_id)

Every ``record_*`` returns only after its row is durably committed (see writer.py for the
durability choice and the group commit); no call blocks the loop on disk I/O. Cancelling the
awaiting task does not withdraw a record that is already queued.

Track samples are thinned to one per ``track_interval_s`` per flight before they reach the
disk (``record_track`` returns False for a sample it dropped).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import TracebackType

from dronectl.audit import queries
from dronectl.audit.errors import DuplicateCommandError, UnknownRecordError
from dronectl.audit.records import (
    CommandRecord,
    FlightEnd,
    FlightEvent,
    FlightStart,
    MissionRecord,
    OutcomeRecord,
    TrackSample,
    TransitionRecord,
    args_to_json,
)
from dronectl.audit.rows import CommandRow, FlightDetail, FlightRow, MissionRow, OutcomeRow, TransitionRow
from dronectl.audit.writer import Durability, SqliteWriter


class AuditStore:
    def __init__(self, writer: SqliteWriter, track_interval_s: float) -> None:
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
    ) -> AuditStore:
        """Open (create, migrate) the store at ``path``; raises AuditError if it cannot."""
        writer = SqliteWriter(Path(path), durability=durability, busy_timeout_s=busy_timeout_s)
        await writer.start()
        return cls(writer, track_interval_s)

    @property
    def path(self) -> Path:
        return self._writer.path

    @property
    def backlog(self) -> int:
        """Records and queries queued or running, not yet answered (a health figure)."""
        return self._writer.backlog

    @property
    def schema_version_before(self) -> int | None:
        """The file's schema version when it was opened (0: it was created now)."""
        return self._writer.schema_version_before

    async def close(self) -> None:
        """Commit everything queued, then close. Idempotent."""
        await self._writer.close()

    async def __aenter__(self) -> AuditStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- commands -----------------------------------------------------------------------------

    async def record_command(self, command: CommandRecord) -> None:
        """Record a new command with its first outcome.

        Raises DuplicateCommandError (carrying the first outcome) if the id was recorded before;
        check and insert are one step on the writer thread, so two deliveries of the same id
        racing each other still yield exactly one record.
        """
        args_json = args_to_json(command.args)  # bad arguments fail here, in the caller

        def insert(conn: sqlite3.Connection) -> None:
            first = queries.first_outcome(conn, command.command_id)
            if first is not None:
                raise DuplicateCommandError(command.command_id, first)
            conn.execute(
                "INSERT INTO commands (command_id, at_unix_s, actor_id, actor_role, nest_id, method,"
                " args_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    command.command_id,
                    command.at_unix_s,
                    command.actor_id,
                    command.actor_role,
                    command.nest_id,
                    command.method,
                    args_json,
                ),
            )
            _insert_outcome(
                conn,
                OutcomeRecord(
                    command.command_id, command.at_unix_s, command.outcome, command.code, command.message
                ),
            )

        await self._writer.submit(insert, write=True)

    async def record_outcome(self, outcome: OutcomeRecord) -> None:
        """Append a later outcome of a recorded command (raises UnknownRecordError otherwise)."""

        def insert(conn: sqlite3.Connection) -> None:
            if (
                conn.execute("SELECT 1 FROM commands WHERE command_id = ?", (outcome.command_id,)).fetchone()
                is None
            ):
                raise UnknownRecordError(f"no command {outcome.command_id!r} to add an outcome to")
            _insert_outcome(conn, outcome)

        await self._writer.submit(insert, write=True)

    # ---- nest transitions ---------------------------------------------------------------------

    async def record_transition(self, transition: TransitionRecord) -> None:
        t = transition

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO transitions (nest_id, at_unix_s, from_state, to_state, cause)"
                " VALUES (?, ?, ?, ?, ?)",
                (t.nest_id, t.at_unix_s, t.from_state, t.to_state, t.cause),
            )

        await self._writer.submit(insert, write=True)

    # ---- flights ------------------------------------------------------------------------------

    async def start_flight(self, start: FlightStart) -> None:
        """Record that a flight began (raises AuditWriteError if the flight id exists)."""
        s = start

        def insert(conn: sqlite3.Connection) -> None:
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

        await self._writer.submit(insert, write=True)

    async def end_flight(self, end: FlightEnd) -> None:
        """Close a flight; it leaves open_flights(). A flight ends once (AuditWriteError after)."""
        e = end

        def insert(conn: sqlite3.Connection) -> None:
            _require_flight(conn, e.flight_id)
            conn.execute(
                "INSERT INTO flight_ends (flight_id, ended_at_unix_s, outcome, note) VALUES (?, ?, ?, ?)",
                (e.flight_id, e.ended_at_unix_s, e.outcome.value, e.note),
            )

        await self._writer.submit(insert, write=True)
        self._last_sample_s.pop(end.flight_id, None)

    async def record_track(self, sample: TrackSample) -> bool:
        """Record a track point unless one of this flight was kept less than track_interval_s ago."""
        last = self._last_sample_s.get(sample.flight_id)
        if last is not None and sample.at_unix_s - last < self.track_interval_s:
            return False
        self._last_sample_s[sample.flight_id] = sample.at_unix_s
        p = sample

        def insert(conn: sqlite3.Connection) -> None:
            _require_flight(conn, p.flight_id)
            conn.execute(
                "INSERT INTO track (flight_id, at_unix_s, lat_deg, lon_deg, alt_m, speed_mps, battery_pct)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (p.flight_id, p.at_unix_s, p.lat_deg, p.lon_deg, p.alt_m, p.speed_mps, p.battery_pct),
            )

        try:
            await self._writer.submit(insert, write=True)
        except BaseException:
            if self._last_sample_s.get(sample.flight_id) == sample.at_unix_s:
                del self._last_sample_s[sample.flight_id]  # not kept: let the next sample in
            raise
        return True

    async def record_event(self, event: FlightEvent) -> None:
        data_json = None if event.data is None else args_to_json(event.data)
        e = event

        def insert(conn: sqlite3.Connection) -> None:
            _require_flight(conn, e.flight_id)
            conn.execute(
                "INSERT INTO flight_events (flight_id, at_unix_s, kind, message, data_json)"
                " VALUES (?, ?, ?, ?, ?)",
                (e.flight_id, e.at_unix_s, e.kind, e.message, data_json),
            )

        await self._writer.submit(insert, write=True)

    # ---- patrol missions -----------------------------------------------------------------------

    async def record_mission(self, mission: MissionRecord) -> None:
        """Append the mission's state after a transition (its latest row is its current state)."""
        data_json = args_to_json(mission.data)
        m = mission

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO missions (mission_id, at_unix_s, kind, stretch_id, state, nest_id, reason,"
                " data_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (m.mission_id, m.at_unix_s, m.kind, m.stretch_id, m.state, m.nest_id, m.reason, data_json),
            )

        await self._writer.submit(insert, write=True)

    async def missions(self, *, unfinished_only: bool = False, limit: int = 1000) -> list[MissionRow]:
        """Each mission's current state (its latest row), oldest mission first."""
        return await self._writer.submit(
            lambda conn: queries.latest_missions(conn, unfinished_only, limit), write=False
        )

    async def mission_history(self, mission_id: str) -> list[MissionRow]:
        """Every recorded state of one mission, in order."""
        return await self._writer.submit(lambda conn: queries.mission_history(conn, mission_id), write=False)

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
        self, nest_id: int, *, since_unix_s: float | None = None, until_unix_s: float | None = None
    ) -> list[TransitionRow]:
        """A nest's transitions in recording order."""
        return await self._writer.submit(
            lambda conn: queries.transitions(conn, nest_id, since_unix_s, until_unix_s), write=False
        )

    async def flight(self, flight_id: str) -> FlightDetail | None:
        """A flight with its track and events, or None."""
        return await self._writer.submit(lambda conn: queries.flight(conn, flight_id), write=False)

    async def flights(self, *, nest_id: int | None = None, limit: int = 100) -> list[FlightRow]:
        """The latest flights (of one nest, or all), newest first."""
        return await self._writer.submit(lambda conn: queries.flights(conn, nest_id, limit), write=False)

    async def open_flights(self, *, nest_id: int | None = None) -> list[FlightRow]:
        """Flights started and never ended: on restart, the drones to re-attach to."""
        return await self._writer.submit(lambda conn: queries.open_flights(conn, nest_id), write=False)

    async def open_incidents(self) -> list[CommandRow]:
        """Incidents (method ``incident``) with no final outcome: on restart, those to pick up."""
        return await self._writer.submit(queries.open_incidents, write=False)

    async def incident_flights(self, incident_id: str) -> list[str]:
        """The flights an incident's milestones were recorded with, in order."""
        return await self._writer.submit(
            lambda conn: queries.incident_flights(conn, incident_id), write=False
        )


def _insert_outcome(conn: sqlite3.Connection, o: OutcomeRecord) -> None:
    conn.execute(
        "INSERT INTO command_outcomes (command_id, at_unix_s, outcome, code, message) VALUES (?, ?, ?, ?, ?)",
        (o.command_id, o.at_unix_s, o.outcome.value, o.code, o.message),
    )


def _require_flight(conn: sqlite3.Connection, flight_id: str) -> None:
    if conn.execute("SELECT 1 FROM flights WHERE flight_id = ?", (flight_id,)).fetchone() is None:
        raise UnknownRecordError(f"no flight {flight_id!r}")
