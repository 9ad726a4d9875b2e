"""The audit schema on PostgreSQL: the same tables, versions and append-only rule as schema.py.

``MIGRATIONS_PG[n]`` is the PostgreSQL form of ``schema.MIGRATIONS[n]``: one schema, one version
number for both backends (a test checks the two lists have the same length and the same tables).
The differences are the dialect's: ``DOUBLE PRECISION`` (PostgreSQL's ``REAL`` is 4 bytes: a Unix
time would lose its seconds), identity columns for SQLite's ``AUTOINCREMENT``, and ``rowid``
spelled out on the tables whose queries order by SQLite's implicit insertion order.

Append-only: a trigger function refuses UPDATE, DELETE and TRUNCATE on every audit table (there is
no ``INSERT OR REPLACE`` here, and ``ON CONFLICT DO UPDATE`` is an UPDATE). The version lives in
``audit_schema`` (one row per applied step); each step runs in one transaction under an advisory
lock, so instances starting together migrate once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from dronectl.audit.errors import SchemaError

ADVISORY_LOCK_ID = 0x44524E41  # "DRNA", as schema.APPLICATION_ID

_OUTCOMES = "('accepted','in_progress','succeeded','failed','refused','cancelled')"
_FLIGHT_OUTCOMES = "('completed','landed_away','aborted','lost')"

_FUNCTION = """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only: % of % refused', TG_OP, TG_TABLE_NAME;
END $$"""


def append_only_triggers(table: str) -> tuple[str, ...]:
    return (
        f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
    )


_V1_TABLES: tuple[str, ...] = (
    """CREATE TABLE commands (
        command_id TEXT PRIMARY KEY NOT NULL,
        at_unix_s DOUBLE PRECISION NOT NULL,
        actor_id TEXT NOT NULL,
        actor_role TEXT NOT NULL,
        nest_id INTEGER,
        method TEXT NOT NULL,
        args_json TEXT NOT NULL,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    )""",
    "CREATE INDEX commands_by_time ON commands(at_unix_s)",
    "CREATE INDEX commands_by_nest ON commands(nest_id, at_unix_s)",
    "CREATE INDEX commands_by_actor ON commands(actor_id, at_unix_s)",
    f"""CREATE TABLE command_outcomes (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        command_id TEXT NOT NULL REFERENCES commands(command_id),
        at_unix_s DOUBLE PRECISION NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN {_OUTCOMES}),
        code TEXT,
        message TEXT
    )""",
    "CREATE INDEX outcomes_by_command ON command_outcomes(command_id, seq)",
    """CREATE TABLE transitions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        nest_id INTEGER NOT NULL,
        at_unix_s DOUBLE PRECISION NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        cause TEXT NOT NULL
    )""",
    "CREATE INDEX transitions_by_nest ON transitions(nest_id, seq)",
    """CREATE TABLE flights (
        flight_id TEXT PRIMARY KEY NOT NULL,
        nest_id INTEGER NOT NULL,
        started_at_unix_s DOUBLE PRECISION NOT NULL,
        command_id TEXT,
        target_lat_deg DOUBLE PRECISION,
        target_lon_deg DOUBLE PRECISION,
        target_alt_m DOUBLE PRECISION,
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
    )""",
    "CREATE INDEX flights_by_nest ON flights(nest_id, started_at_unix_s)",
    f"""CREATE TABLE flight_ends (
        flight_id TEXT PRIMARY KEY NOT NULL REFERENCES flights(flight_id),
        ended_at_unix_s DOUBLE PRECISION NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN {_FLIGHT_OUTCOMES}),
        note TEXT
    )""",
    """CREATE TABLE track (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        flight_id TEXT NOT NULL REFERENCES flights(flight_id),
        at_unix_s DOUBLE PRECISION NOT NULL,
        lat_deg DOUBLE PRECISION NOT NULL,
        lon_deg DOUBLE PRECISION NOT NULL,
        alt_m DOUBLE PRECISION NOT NULL,
        speed_mps DOUBLE PRECISION NOT NULL,
        battery_pct DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX track_by_flight ON track(flight_id, seq)",
    """CREATE TABLE flight_events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        flight_id TEXT NOT NULL REFERENCES flights(flight_id),
        at_unix_s DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data_json TEXT
    )""",
    "CREATE INDEX events_by_flight ON flight_events(flight_id, seq)",
)

_V1_NAMES = (
    "commands",
    "command_outcomes",
    "transitions",
    "flights",
    "flight_ends",
    "track",
    "flight_events",
)
_V1: tuple[str, ...] = (
    _FUNCTION,
    *_V1_TABLES,
    *(stmt for table in _V1_NAMES for stmt in append_only_triggers(table)),
)

_V2: tuple[str, ...] = (
    """CREATE TABLE missions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        mission_id TEXT NOT NULL,
        at_unix_s DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        stretch_id TEXT NOT NULL,
        state TEXT NOT NULL,
        nest_id INTEGER,
        reason TEXT NOT NULL,
        data_json TEXT NOT NULL
    )""",
    "CREATE INDEX missions_by_id ON missions(mission_id, seq)",
    *append_only_triggers("missions"),
)

# v3: nest leases and instance heartbeats (schema.py says why they are updated, never deleted).
_V3: tuple[str, ...] = (
    """CREATE TABLE spool_applied (spool_key TEXT PRIMARY KEY NOT NULL)""",
    """CREATE TABLE nest_leases (
        nest_id INTEGER PRIMARY KEY NOT NULL,
        owner TEXT NOT NULL,
        token BIGINT NOT NULL CHECK (token > 0),
        expires_at_unix_s DOUBLE PRECISION NOT NULL,
        acquired_at_unix_s DOUBLE PRECISION NOT NULL
    )""",
    """CREATE FUNCTION nest_lease_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'a nest lease is never deleted (its token would restart)';
    END IF;
    IF NEW.token < OLD.token THEN
        RAISE EXCEPTION 'a fencing token only grows';
    END IF;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER nest_leases_guard BEFORE UPDATE OR DELETE ON nest_leases
        FOR EACH ROW EXECUTE FUNCTION nest_lease_guard()""",
    """CREATE TRIGGER nest_leases_no_truncate BEFORE TRUNCATE ON nest_leases
        FOR EACH STATEMENT EXECUTE FUNCTION nest_lease_guard()""",
    """CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY NOT NULL,
        started_at_unix_s DOUBLE PRECISION NOT NULL,
        expires_at_unix_s DOUBLE PRECISION NOT NULL,
        info_json TEXT NOT NULL
    )""",
)

# v4: the channel a command came by (issue 12), as schema._V4
_V4: tuple[str, ...] = ("ALTER TABLE commands ADD COLUMN channel TEXT NOT NULL DEFAULT ''",)

# v5: refused logins (issue 12), as schema._V5
_V5: tuple[str, ...] = (
    """CREATE TABLE login_failures (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at_unix_s DOUBLE PRECISION NOT NULL,
        first_at_unix_s DOUBLE PRECISION NOT NULL,
        channel TEXT NOT NULL,
        user_name TEXT NOT NULL,
        remote_addr TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL CHECK (attempts > 0)
    )""",
    "CREATE INDEX login_failures_by_time ON login_failures(at_unix_s)",
    *append_only_triggers("login_failures"),
)

MIGRATIONS_PG: tuple[Sequence[str], ...] = (_V1, _V2, _V3, _V4, _V5)

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS audit_schema (
    version INTEGER PRIMARY KEY,
    migrated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


def migrate_pg(conn: psycopg.Connection[Any], migrations: Sequence[Sequence[str]] = MIGRATIONS_PG) -> int:
    """Bring the database up to ``len(migrations)``; return the version it had before.

    ``conn`` is in autocommit mode. Each step is one transaction with its row in ``audit_schema``,
    under an advisory lock: a crash mid-way leaves a whole version, and instances starting at once
    apply each step once.
    """
    before: int | None = None
    while True:
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_ID,))
            version = _version(conn)
            before = version if before is None else before
            if version > len(migrations):
                raise SchemaError(
                    f"audit database is at schema {version}, newer than this dronectl ({len(migrations)})"
                )
            if version == len(migrations):
                conn.execute("COMMIT")
                return before
            conn.execute(_VERSION_TABLE)
            for statement in migrations[version]:
                conn.execute(statement.encode())  # bytes: run as written, no placeholder parsing
            conn.execute("INSERT INTO audit_schema (version) VALUES (%s)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def schema_version_pg(conn: psycopg.Connection[Any]) -> int:
    return _version(conn)


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('audit_schema') IS NOT NULL").fetchone()
    if row is not None and row[0]:
        got = conn.execute("SELECT coalesce(max(version), 0) FROM audit_schema").fetchone()
        return 0 if got is None else int(got[0])
    tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()
    if tables is not None and tables[0]:
        raise SchemaError("not a dronectl audit database (it has tables but no audit_schema)")
    return 0
