"""The audit store: records, queries, idempotency, append-only triggers, schema, threading."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dronectl.audit import (
    SCHEMA_VERSION,
    AuditClosedError,
    AuditError,
    AuditStore,
    AuditWriteError,
    CommandOutcome,
    CommandRecord,
    CommandRow,
    DuplicateCommandError,
    Durability,
    FlightEnd,
    FlightEvent,
    FlightOutcome,
    FlightStart,
    LoginFailureRecord,
    MissionRecord,
    OutcomeRecord,
    SchemaError,
    TrackSample,
    TransitionRecord,
    UnknownRecordError,
    migrate,
)
from dronectl.audit.connection import Connection
from dronectl.audit.schema import MIGRATIONS, TABLES
from tests.pg import is_pg, query

T0 = 1_760_000_000.0


def cmd(
    command_id: str,
    *,
    at: float = T0,
    nest_id: int | None = 3,
    actor: str = "alice",
    outcome: CommandOutcome = CommandOutcome.ACCEPTED,
    method: str = "launch",
) -> CommandRecord:
    return CommandRecord(
        command_id=command_id,
        at_unix_s=at,
        actor_id=actor,
        actor_role="pilot",
        nest_id=nest_id,
        method=method,
        args={"target": {"lat": 43.88, "lon": 125.35, "alt_m": 120.0}},
        outcome=outcome,
        code=None if outcome is not CommandOutcome.REFUSED else "wind",
        message=None if outcome is not CommandOutcome.REFUSED else "wind 14 m/s above limit 10 m/s",
    )


@pytest.fixture
async def store(location: str) -> AsyncIterator[AuditStore]:
    async with await AuditStore.open(location) as s:
        yield s


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# ---- commands and idempotency ------------------------------------------------------------------


async def test_command_with_later_outcomes_appended(store: AuditStore) -> None:
    await store.record_command(cmd("c1"))
    await store.record_outcome(
        OutcomeRecord("c1", T0 + 1, CommandOutcome.IN_PROGRESS, message="cover opening")
    )
    await store.record_outcome(OutcomeRecord("c1", T0 + 90, CommandOutcome.SUCCEEDED))

    row = await store.command("c1")
    assert row is not None
    assert row["actor_id"] == "alice" and row["actor_role"] == "pilot" and row["nest_id"] == 3
    assert row["args"] == {"target": {"lat": 43.88, "lon": 125.35, "alt_m": 120.0}}
    assert [o["outcome"] for o in row["outcomes"]] == ["accepted", "in_progress", "succeeded"]
    assert [o["at_unix_s"] for o in row["outcomes"]] == [T0, T0 + 1, T0 + 90]
    assert row["outcomes"][1]["message"] == "cover opening"

    first = await store.first_outcome("c1")
    assert first is not None and first["outcome"] == "accepted"
    assert await store.first_outcome("never-seen") is None


async def test_repeated_command_id_is_refused_with_first_outcome(store: AuditStore) -> None:
    await store.record_command(cmd("dup", outcome=CommandOutcome.REFUSED))
    with pytest.raises(DuplicateCommandError) as info:
        await store.record_command(cmd("dup", at=T0 + 5, outcome=CommandOutcome.ACCEPTED))
    assert info.value.first_outcome["outcome"] == "refused"
    assert info.value.first_outcome["code"] == "wind"
    row = await store.command("dup")
    assert row is not None and len(row["outcomes"]) == 1 and row["at_unix_s"] == T0


async def test_racing_duplicates_record_exactly_once(store: AuditStore) -> None:
    results = await asyncio.gather(
        *(store.record_command(cmd("race", at=T0 + i)) for i in range(20)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, DuplicateCommandError) for r in results if r is not None)


async def test_a_failing_record_does_not_take_its_batch_down(store: AuditStore) -> None:
    await store.record_command(cmd("taken"))
    records = [cmd(f"ok{i}") for i in range(5)] + [cmd("taken")] + [cmd(f"ok{i}") for i in range(5, 10)]
    results = await asyncio.gather(*(store.record_command(r) for r in records), return_exceptions=True)
    assert isinstance(results[5], DuplicateCommandError)
    assert [r for i, r in enumerate(results) if i != 5] == [None] * 10
    assert len(await store.commands()) == 11


async def test_outcome_of_unknown_command_is_refused(store: AuditStore) -> None:
    with pytest.raises(UnknownRecordError):
        await store.record_outcome(OutcomeRecord("ghost", T0, CommandOutcome.SUCCEEDED))


async def test_arguments_that_are_not_json_fail_in_the_caller(store: AuditStore) -> None:
    bad = CommandRecord(
        "nan", T0, "bob", "pilot", 1, "goto", {"alt_m": float("nan")}, CommandOutcome.ACCEPTED
    )
    with pytest.raises(ValueError):
        await store.record_command(bad)
    assert await store.command("nan") is None


async def test_commands_by_nest_actor_and_time_range(store: AuditStore) -> None:
    await store.record_command(cmd("a", at=T0, nest_id=1, actor="alice"))
    await store.record_command(cmd("b", at=T0 + 10, nest_id=2, actor="bob"))
    await store.record_command(cmd("c", at=T0 + 20, nest_id=1, actor="bob"))
    await store.record_command(cmd("d", at=T0 + 30, nest_id=None, actor="alice", method="return_all"))

    def ids(rows: list[CommandRow]) -> list[str]:
        return [r["command_id"] for r in rows]

    assert ids(await store.commands()) == ["a", "b", "c", "d"]
    assert ids(await store.commands(nest_id=1)) == ["a", "c"]
    assert ids(await store.commands(actor_id="bob")) == ["b", "c"]
    assert ids(await store.commands(since_unix_s=T0 + 10, until_unix_s=T0 + 30)) == ["b", "c"]
    assert ids(await store.commands(nest_id=1, actor_id="bob")) == ["c"]
    assert ids(await store.commands(limit=2)) == ["a", "b"]
    fleet = await store.commands(actor_id="alice", since_unix_s=T0 + 1)
    assert ids(fleet) == ["d"] and fleet[0]["nest_id"] is None


# ---- transitions and flights -------------------------------------------------------------------


async def test_transitions_of_a_nest_in_order(store: AuditStore) -> None:
    steps = [
        ("standby", "ready", "charged"),
        ("ready", "preflight", "launch c1"),
        ("preflight", "launching", "ok"),
    ]
    for i, (a, b, cause) in enumerate(steps):
        await store.record_transition(TransitionRecord(7, T0 + i, a, b, cause))
    await store.record_transition(TransitionRecord(8, T0, "offline", "standby", "link up"))
    rows = await store.transitions(7)
    assert [(r["from_state"], r["to_state"], r["cause"]) for r in rows] == steps
    assert [r["cause"] for r in await store.transitions(7, since_unix_s=T0 + 1)] == ["launch c1", "ok"]
    assert [r["to_state"] for r in await store.transitions(8)] == ["standby"]


async def test_flight_with_track_events_and_end(store: AuditStore) -> None:
    await store.record_command(cmd("launch-1"))
    start = FlightStart(
        "f1", 3, T0, command_id="launch-1", target_lat_deg=43.9, target_lon_deg=125.3, target_alt_m=80
    )
    await store.start_flight(start)
    await store.start_flight(FlightStart("f2", 4, T0 + 1))
    assert [f["flight_id"] for f in await store.open_flights()] == ["f1", "f2"]
    assert [f["flight_id"] for f in await store.open_flights(nest_id=4)] == ["f2"]

    kept = []
    for i in range(50):  # 10 Hz telemetry for 5 s: about one sample a second is kept
        t = T0 + i * 0.1
        sample = TrackSample("f1", t, 43.88 + i * 1e-5, 125.35, 300.0 + i, 12.0, 95.0 - i * 0.01)
        kept.append(await store.record_track(sample))
    assert sum(kept) == 5 and kept[0] is True
    await store.record_event(FlightEvent("f1", T0 + 2, "on_station", "holding", {"distance_m": 3.5}))
    await store.end_flight(FlightEnd("f1", T0 + 600, FlightOutcome.COMPLETED, "landed in dock"))

    detail = await store.flight("f1")
    assert detail is not None
    assert detail["flight"]["ended_at_unix_s"] == T0 + 600 and detail["flight"]["outcome"] == "completed"
    assert detail["flight"]["command_id"] == "launch-1" and detail["flight"]["target_alt_m"] == 80
    times = [p["at_unix_s"] for p in detail["track"]]
    assert len(times) == 5 and all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times))
    assert detail["events"] == [
        {
            "seq": 1,
            "at_unix_s": T0 + 2,
            "kind": "on_station",
            "message": "holding",
            "data": {"distance_m": 3.5},
        }
    ]
    assert [f["flight_id"] for f in await store.open_flights()] == ["f2"]
    assert [f["flight_id"] for f in await store.flights()] == ["f2", "f1"]
    assert await store.flight("nope") is None

    with pytest.raises(AuditWriteError):
        await store.end_flight(FlightEnd("f1", T0 + 700, FlightOutcome.LOST))
    with pytest.raises(AuditWriteError):
        await store.start_flight(FlightStart("f1", 3, T0))
    with pytest.raises(UnknownRecordError):
        await store.record_track(TrackSample("nope", T0, 0, 0, 0, 0, 0))
    with pytest.raises(UnknownRecordError):
        await store.record_event(FlightEvent("nope", T0, "landed"))


# ---- append-only -------------------------------------------------------------------------------

APPEND_TRANSITION = (
    "INSERT INTO transitions (nest_id, at_unix_s, from_state, to_state, cause) VALUES (1, 0, 'a', 'b', 'c')"
)

TAMPERING = {
    "commands": (
        "UPDATE commands SET actor_id = 'mallory'",
        "DELETE FROM commands",
        "INSERT OR REPLACE INTO commands SELECT command_id, at_unix_s, 'mallory', actor_role, nest_id,"
        " method, args_json, channel FROM commands",
    ),
    "command_outcomes": (
        "UPDATE command_outcomes SET outcome = 'succeeded'",
        "DELETE FROM command_outcomes",
        "INSERT OR REPLACE INTO command_outcomes SELECT seq, command_id, at_unix_s, 'succeeded',"
        " code, message FROM command_outcomes",
    ),
    "transitions": (
        "UPDATE transitions SET cause = 'x'",
        "DELETE FROM transitions",
        "INSERT OR REPLACE INTO transitions SELECT seq, nest_id, at_unix_s, from_state, to_state, 'x'"
        " FROM transitions",
    ),
    "flights": (
        "UPDATE flights SET nest_id = 9",
        "DELETE FROM flights",
        "INSERT OR REPLACE INTO flights (flight_id, nest_id, started_at_unix_s) VALUES ('f1', 9, 0)",
    ),
    "flight_ends": (
        "UPDATE flight_ends SET outcome = 'completed'",
        "DELETE FROM flight_ends",
        "INSERT OR REPLACE INTO flight_ends VALUES ('f1', 0, 'completed', NULL)",
    ),
    "track": (
        "UPDATE track SET alt_m = 0",
        "DELETE FROM track",
        "INSERT OR REPLACE INTO track SELECT seq, flight_id, at_unix_s, 0, 0, 0, 0, 0 FROM track",
    ),
    "flight_events": (
        "UPDATE flight_events SET kind = 'x'",
        "DELETE FROM flight_events",
        "INSERT OR REPLACE INTO flight_events SELECT seq, flight_id, at_unix_s, 'x', '', NULL"
        " FROM flight_events",
    ),
    "missions": (
        "UPDATE missions SET state = 'ended'",
        "DELETE FROM missions",
        "INSERT OR REPLACE INTO missions SELECT seq, mission_id, at_unix_s, kind, stretch_id, 'ended',"
        " nest_id, reason, data_json FROM missions",
    ),
    "login_failures": (
        "UPDATE login_failures SET attempts = 1",
        "DELETE FROM login_failures",
        "INSERT OR REPLACE INTO login_failures SELECT seq, at_unix_s, first_at_unix_s, channel,"
        " 'nobody', remote_addr, reason, 1 FROM login_failures",
    ),
}


# PostgreSQL has no INSERT OR REPLACE; its upsert is an UPDATE, and TRUNCATE empties a table at once
TAMPERING_PG = {
    t: (
        statements[0],
        statements[1],
        f"TRUNCATE {t} CASCADE",
    )
    for t, statements in TAMPERING.items()
} | {
    "commands": (
        "UPDATE commands SET actor_id = 'mallory'",
        "DELETE FROM commands",
        "TRUNCATE commands CASCADE",
        "INSERT INTO commands (command_id, at_unix_s, actor_id, actor_role, method, args_json)"
        " VALUES ('c1', 0, 'mallory', 'pilot', 'hold', '{}')"
        " ON CONFLICT (command_id) DO UPDATE SET actor_id = 'mallory'",
    )
}


def dump(location: str) -> dict[str, list[tuple[object, ...]]]:
    return {t: query(location, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES}


async def test_every_table_refuses_update_delete_and_replace(location: str) -> None:
    assert set(TAMPERING) == set(TABLES) == set(TAMPERING_PG)
    path = location
    async with await AuditStore.open(path) as store:
        await store.record_command(cmd("c1"))
        await store.record_outcome(
            OutcomeRecord("c1", T0 + 1, CommandOutcome.FAILED, "link_lost", "link lost")
        )
        await store.record_transition(TransitionRecord(1, T0, "ready", "fault", "link lost"))
        await store.start_flight(FlightStart("f1", 1, T0))
        await store.record_track(TrackSample("f1", T0, 43.0, 125.0, 250.0, 5.0, 80.0))
        await store.record_event(FlightEvent("f1", T0, "launched"))
        await store.end_flight(FlightEnd("f1", T0 + 1, FlightOutcome.LOST))
        await store.record_mission(
            MissionRecord("m1", T0, "black_ice", "s1", "patrolling", 1, "on the route", {"leg": 0})
        )
        await store.record_login_failure(
            LoginFailureRecord(T0 + 5, "mqtt", "li.wei", "10.0.0.9", "wrong password", 7, T0)
        )
    before = dump(path)
    assert {t: len(rows) for t, rows in before.items()} == {
        t: 2 if t == "command_outcomes" else 1 for t in TABLES
    }

    if is_pg(location):
        import psycopg

        with psycopg.connect(location, autocommit=True) as pg:
            for statements in TAMPERING_PG.values():
                for sql in statements:
                    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                        pg.execute(sql.encode())
            pg.execute(APPEND_TRANSITION.encode())
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            for statements in TAMPERING.values():
                for sql in statements:
                    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                        conn.execute(sql)
            # appending stays possible for anyone; the triggers stop only rewriting history
            conn.execute(APPEND_TRANSITION)
        finally:
            conn.close()
    after = dump(path)
    assert {t: rows for t, rows in after.items() if t != "transitions"} == {
        t: rows for t, rows in before.items() if t != "transitions"
    }
    assert after["transitions"][0] == before["transitions"][0] and len(after["transitions"]) == 2


# ---- schema and durability settings ------------------------------------------------------------


async def test_schema_version_and_reopen(location: str) -> None:
    path = location
    async with await AuditStore.open(path) as store:
        assert store.schema_version_before == 0
        await store.record_command(cmd("keep"))
    async with await AuditStore.open(path) as store:
        assert store.schema_version_before == SCHEMA_VERSION
        assert await store.command("keep") is not None
    if is_pg(location):
        assert query(location, "SELECT max(version) FROM audit_schema") == [(SCHEMA_VERSION,)]
        return
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_step_applies_once_and_keeps_data(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        assert migrate(conn) == 0
        conn.execute(APPEND_TRANSITION)
        v2 = (*MIGRATIONS, ("ALTER TABLE transitions ADD COLUMN flight_id TEXT",))
        assert migrate(conn, v2) == SCHEMA_VERSION
        assert migrate(conn, v2) == SCHEMA_VERSION + 1  # already there: nothing to do
        assert conn.execute("SELECT cause, flight_id FROM transitions").fetchall() == [("c", None)]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("DELETE FROM transitions")
        # a failing step leaves the database at the last whole version
        broken = (*v2, ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, broken)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    finally:
        conn.close()


async def test_refuses_newer_schema_and_foreign_database(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    async with await AuditStore.open(newer):
        pass
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaError, match="newer"):
        await AuditStore.open(newer)

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(SchemaError, match="not a dronectl audit"):
        await AuditStore.open(foreign)


@pytest.mark.parametrize(("durability", "expected"), [(Durability.FULL, 2), (Durability.NORMAL, 1)])
async def test_durability_setting_reaches_the_connection(
    tmp_path: Path, durability: Durability, expected: int
) -> None:
    async with await AuditStore.open(tmp_path / "audit.db", durability=durability) as store:
        # the connection belongs to the writer thread; ask it there
        level = await store._writer.submit(
            lambda c: c.execute("PRAGMA synchronous").fetchone()[0], write=False
        )
        assert level == expected


# ---- threading and lifecycle -------------------------------------------------------------------


async def test_a_blocked_disk_does_not_block_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    async with await AuditStore.open(path) as store:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # the writer thread now waits on the lock (busy timeout)
        try:
            pending = asyncio.create_task(
                store.record_transition(TransitionRecord(2, T0, "a", "b", "blocked"))
            )
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            tick_task = asyncio.create_task(ticker())
            await wait_for(lambda: ticks >= 100)  # the loop keeps turning while the write waits
            assert not pending.done()
            assert store.backlog == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await asyncio.wait_for(pending, timeout=5)
        tick_task.cancel()
        assert [r["cause"] for r in await store.transitions(2)] == ["blocked"]
        assert store.backlog == 0


async def test_reads_see_writes_queued_before_them(store: AuditStore) -> None:
    writes = [asyncio.create_task(store.record_command(cmd(f"q{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # each task queues its record
    rows = await store.commands()  # queued after the 50 writes, answered after they committed
    assert len(rows) == 50
    await asyncio.gather(*writes)


async def test_close_commits_what_was_queued_and_then_refuses(location: str) -> None:
    store = await AuditStore.open(location)
    writes = [asyncio.create_task(store.record_command(cmd(f"late{i}"))) for i in range(200)]
    await asyncio.sleep(0)  # each task queues its record
    await store.close()
    await store.close()  # idempotent
    await asyncio.gather(*writes)
    with pytest.raises(AuditClosedError):
        await store.record_command(cmd("after-close"))
    assert query(location, "SELECT count(*) FROM commands") == [(200,)]


async def test_cancelled_caller_does_not_withdraw_a_queued_record(store: AuditStore) -> None:
    task = asyncio.create_task(store.record_command(cmd("cancelled-caller")))
    await asyncio.sleep(0)  # let it queue the record
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.command("cancelled-caller") is not None
    assert store.backlog == 0


async def test_open_fails_cleanly_on_unusable_path(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(AuditError, match=r"dir\.db"):
        await AuditStore.open(tmp_path / "dir.db")


class _WriterBug(BaseException):
    """Stands for a bug or an interrupt on the writer thread."""


async def test_a_crashed_writer_fails_every_caller_and_closes(store: AuditStore) -> None:
    def crash(conn: Connection) -> None:
        raise _WriterBug

    before = asyncio.create_task(store.record_command(cmd("before")))
    await asyncio.sleep(0)
    crashing = store._writer.submit(crash, write=True)
    after = asyncio.create_task(store.record_command(cmd("after")))
    results = await asyncio.wait_for(
        asyncio.gather(before, crashing, after, return_exceptions=True), timeout=5
    )
    assert isinstance(results[1], AuditWriteError) and "crashed" in str(results[1])
    assert isinstance(results[2], AuditWriteError | AuditClosedError)
    assert results[0] is None or isinstance(results[0], AuditWriteError)
    await wait_for(lambda: store.backlog == 0)
    with pytest.raises(AuditClosedError):
        await store.record_command(cmd("later"))
    await asyncio.wait_for(store.close(), timeout=5)


def test_audit_errors_hang_under_the_service_root() -> None:
    from dronectl.domain.errors import DronectlError

    assert issubclass(AuditError, DronectlError)
    assert issubclass(DuplicateCommandError, AuditWriteError)


# ---- patrol missions ---------------------------------------------------------------------------


def mission(mission_id: str, state: str, at: float, nest_id: int | None = 3) -> MissionRecord:
    return MissionRecord(mission_id, at, "congestion", "s1", state, nest_id, f"now {state}", {"state": state})


async def test_missions_latest_state_and_history(location: str) -> None:
    async with await AuditStore.open(location) as store:
        await store.record_mission(mission("m1", "planned", T0, None))
        await store.record_mission(mission("m2", "planned", T0 + 1, None))
        await store.record_mission(mission("m1", "patrolling", T0 + 2))
        await store.record_mission(mission("m2", "ended", T0 + 3))
        latest = await store.missions()
        assert [(m["mission_id"], m["state"]) for m in latest] == [("m1", "patrolling"), ("m2", "ended")]
        unfinished = await store.missions(unfinished_only=True)
        assert [m["mission_id"] for m in unfinished] == ["m1"]
        assert unfinished[0]["data"] == {"state": "patrolling"} and unfinished[0]["nest_id"] == 3
        history = await store.mission_history("m1")
        assert [h["state"] for h in history] == ["planned", "patrolling"]


async def test_a_version_1_database_gains_the_missions_table(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:1])  # a database made before patrol missions existed
        conn.execute("INSERT INTO commands VALUES ('old', 0, 'a', 'pilot', 1, 'hold', '{}')")
    finally:
        conn.close()
    async with await AuditStore.open(path) as store:
        assert store.schema_version_before == 1
        assert await store.command("old") is not None  # kept
        await store.record_mission(mission("m1", "planned", T0, None))
        assert [m["mission_id"] for m in await store.missions()] == ["m1"]


async def test_login_failures_are_kept_and_read_back(location: str) -> None:
    async with await AuditStore.open(location) as store:
        await store.record_login_failure(
            LoginFailureRecord(T0, "http", "li.wei", "10.0.0.9", "wrong password")
        )
        await store.record_login_failure(
            LoginFailureRecord(T0 + 60, "mqtt", "ghost", "10.0.0.7", "unknown user", 12, T0 + 1)
        )
        rows = await store.login_failures()
        assert [(r["channel"], r["user_name"], r["remote_addr"], r["attempts"]) for r in rows] == [
            ("http", "li.wei", "10.0.0.9", 1),
            ("mqtt", "ghost", "10.0.0.7", 12),
        ]
        assert rows[0]["first_at_unix_s"] == T0  # one attempt: first is last
        assert rows[1]["first_at_unix_s"] == T0 + 1
        assert [r["user_name"] for r in await store.login_failures(since_unix_s=T0 + 30)] == ["ghost"]
