"""The audit database schema, its version (``PRAGMA user_version``) and the migration to it.

Append-only is enforced by the database itself, for every connection (the sqlite3 shell
included): each table has triggers that ``RAISE(ABORT)`` on UPDATE and DELETE, and a BEFORE
INSERT trigger that refuses a row whose key already exists -- without it ``INSERT OR REPLACE``
would delete the old row silently, since SQLite fires no delete trigger for REPLACE unless
``recursive_triggers`` is on. (DROP TABLE and editing the file are not stopped: the triggers
guard against mistakes and casual tampering, not against someone who owns the file.)

A migration is a list of statements run in one transaction together with the new
``user_version``. A future migration that must rewrite rows has to drop and re-create the
guarding triggers inside that same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from dronectl.audit.errors import SchemaError

APPLICATION_ID = 0x44524E41  # "DRNA": marks the file as a dronectl audit database

_OUTCOMES = "('accepted','in_progress','succeeded','failed','refused','cancelled')"
_FLIGHT_OUTCOMES = "('completed','landed_away','aborted','lost')"

# table -> the column(s) that identify a row, for the duplicate-insert guard
_KEYS: dict[str, str] = {
    "commands": "command_id",
    "command_outcomes": "seq",
    "transitions": "seq",
    "flights": "flight_id",
    "flight_ends": "flight_id",
    "track": "seq",
    "flight_events": "seq",
}

_V1_TABLES: tuple[str, ...] = (
    """CREATE TABLE commands (
        command_id TEXT PRIMARY KEY NOT NULL,
        at_unix_s REAL NOT NULL,
        actor_id TEXT NOT NULL,
        actor_role TEXT NOT NULL,
        nest_id INTEGER,
        method TEXT NOT NULL,
        args_json TEXT NOT NULL
    )""",
    "CREATE INDEX commands_by_time ON commands(at_unix_s)",
    "CREATE INDEX commands_by_nest ON commands(nest_id, at_unix_s)",
    "CREATE INDEX commands_by_actor ON commands(actor_id, at_unix_s)",
    f"""CREATE TABLE command_outcomes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        command_id TEXT NOT NULL REFERENCES commands(command_id),
        at_unix_s REAL NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN {_OUTCOMES}),
        code TEXT,
        message TEXT
    )""",
    "CREATE INDEX outcomes_by_command ON command_outcomes(command_id, seq)",
    """CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        nest_id INTEGER NOT NULL,
        at_unix_s REAL NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        cause TEXT NOT NULL
    )""",
    "CREATE INDEX transitions_by_nest ON transitions(nest_id, seq)",
    """CREATE TABLE flights (
        flight_id TEXT PRIMARY KEY NOT NULL,
        nest_id INTEGER NOT NULL,
        started_at_unix_s REAL NOT NULL,
        command_id TEXT,
        target_lat_deg REAL,
        target_lon_deg REAL,
        target_alt_m REAL
    )""",
    "CREATE INDEX flights_by_nest ON flights(nest_id, started_at_unix_s)",
    f"""CREATE TABLE flight_ends (
        flight_id TEXT PRIMARY KEY NOT NULL REFERENCES flights(flight_id),
        ended_at_unix_s REAL NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN {_FLIGHT_OUTCOMES}),
        note TEXT
    )""",
    """CREATE TABLE track (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        flight_id TEXT NOT NULL REFERENCES flights(flight_id),
        at_unix_s REAL NOT NULL,
        lat_deg REAL NOT NULL,
        lon_deg REAL NOT NULL,
        alt_m REAL NOT NULL,
        speed_mps REAL NOT NULL,
        battery_pct REAL NOT NULL
    )""",
    "CREATE INDEX track_by_flight ON track(flight_id, seq)",
    """CREATE TABLE flight_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        flight_id TEXT NOT NULL REFERENCES flights(flight_id),
        at_unix_s REAL NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data_json TEXT
    )""",
    "CREATE INDEX events_by_flight ON flight_events(flight_id, seq)",
)


def append_only_triggers(table: str, key: str) -> tuple[str, ...]:
    """The three triggers that make ``table`` append-only."""
    return (
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit is append-only: UPDATE of {table} refused'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit is append-only: DELETE from {table} refused'); END""",
        f"""CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
            WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key})
            BEGIN SELECT RAISE(ABORT, 'audit is append-only: {table} row exists'); END""",
    )


_V1: tuple[str, ...] = _V1_TABLES + tuple(
    stmt for table, key in _KEYS.items() for stmt in append_only_triggers(table, key)
)

# v2: patrol missions. One row per transition (the mission as it stood after it); a mission's
# latest row is its current state, so a restart finds the unfinished ones (append-only too).
_V2_KEYS: dict[str, str] = {"missions": "seq"}
_V2: tuple[str, ...] = (
    """CREATE TABLE missions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        mission_id TEXT NOT NULL,
        at_unix_s REAL NOT NULL,
        kind TEXT NOT NULL,
        stretch_id TEXT NOT NULL,
        state TEXT NOT NULL,
        nest_id INTEGER,
        reason TEXT NOT NULL,
        data_json TEXT NOT NULL
    )""",
    "CREATE INDEX missions_by_id ON missions(mission_id, seq)",
    *(stmt for table, key in _V2_KEYS.items() for stmt in append_only_triggers(table, key)),
)

# v3: nest leases (issue 14). Coordination state, not history, so rows are updated -- but never
# deleted (a new row would restart the nest's fencing token at 1) and a token never goes down.
# `instances`: each running dronectl's heartbeat. `spool_applied`: the outage spool's records the
# database holds already (spool.py), so a replay never applies one twice. Used with PostgreSQL
# (several instances); on SQLite the tables exist so that one schema version means the same
# tables on both backends.
_V3: tuple[str, ...] = (
    """CREATE TABLE spool_applied (spool_key TEXT PRIMARY KEY NOT NULL)""",
    """CREATE TABLE nest_leases (
        nest_id INTEGER PRIMARY KEY NOT NULL,
        owner TEXT NOT NULL,
        token INTEGER NOT NULL CHECK (token > 0),
        expires_at_unix_s REAL NOT NULL,
        acquired_at_unix_s REAL NOT NULL
    )""",
    """CREATE TRIGGER nest_leases_token_grows BEFORE UPDATE OF token ON nest_leases
        WHEN NEW.token < OLD.token
        BEGIN SELECT RAISE(ABORT, 'a fencing token only grows'); END""",
    """CREATE TRIGGER nest_leases_no_delete BEFORE DELETE ON nest_leases
        BEGIN SELECT RAISE(ABORT, 'a nest lease is never deleted (its token would restart)'); END""",
    """CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY NOT NULL,
        started_at_unix_s REAL NOT NULL,
        expires_at_unix_s REAL NOT NULL,
        info_json TEXT NOT NULL
    )""",
)

# v4: the channel a command came by (mqtt, http, console, automation; issue 12). actor_id is the user the
# service authenticated. Rows from before say '' (unknown).
_V4: tuple[str, ...] = ("ALTER TABLE commands ADD COLUMN channel TEXT NOT NULL DEFAULT ''",)

# v5: refused logins (issue 12): MQTT broker, web login, unknown bearer tokens. One row per burst:
# ``attempts`` failures of one user name from one address on one channel, from ``first_at_unix_s``
# to ``at_unix_s`` (operations.login_audit folds a brute force into a few rows). Never a password.
_V5_KEYS: dict[str, str] = {"login_failures": "seq"}
_V5: tuple[str, ...] = (
    """CREATE TABLE login_failures (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_unix_s REAL NOT NULL,
        first_at_unix_s REAL NOT NULL,
        channel TEXT NOT NULL,
        user_name TEXT NOT NULL,
        remote_addr TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL CHECK (attempts > 0)
    )""",
    "CREATE INDEX login_failures_by_time ON login_failures(at_unix_s)",
    *(stmt for table, key in _V5_KEYS.items() for stmt in append_only_triggers(table, key)),
)

# MIGRATIONS[n] takes the database from user_version n to n + 1.
MIGRATIONS: tuple[Sequence[str], ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES: tuple[str, ...] = (*_KEYS, *_V2_KEYS, *_V5_KEYS)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Bring the database up to ``len(migrations)``; return the version it had before.

    Each step runs in its own transaction with its ``user_version``, so a crash mid-way leaves
    the database at a whole version. ``conn`` must be in autocommit mode (isolation_level=None).
    """
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    before = schema_version(conn)
    foreign = app_id == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    if app_id not in (0, APPLICATION_ID) or foreign:
        raise SchemaError(f"not a dronectl audit database (application_id={app_id}, user_version={before})")
    if before > len(migrations):
        raise SchemaError(
            f"audit database is at schema {before}, newer than this dronectl ({len(migrations)})"
        )
    for version in range(before, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return before
