"""The two dialects of the audit schema (schema.py for SQLite, schema_pg.py for PostgreSQL) are written
side by side, each as its database's own SQL. This checks that after every version they hold the
same tables with the same columns, the same NOT NULL constraints, the same kind of value in each
column and the same indexes, so a migration added to one dialect only fails here, not in production.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from dronectl.audit.schema import MIGRATIONS, migrate
from dronectl.audit.schema_pg import MIGRATIONS_PG, migrate_pg
from tests.pg import fresh_database

# A column as both databases can say it: its name, whether NULL is refused, and the kind of value.
Column = tuple[str, bool, str]

_SQLITE_KIND = {"INTEGER": "integer", "REAL": "real", "TEXT": "text", "BLOB": "bytes"}
_PG_KIND = {
    "integer": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "double precision": "real",
    "real": "real",
    "text": "text",
    "bytea": "bytes",
}
# Bookkeeping of each dialect's migrations, not audit data: PostgreSQL keeps its version in a table,
# SQLite in PRAGMA user_version; sqlite_sequence is AUTOINCREMENT's counter.
_BOOKKEEPING = {"audit_schema", "sqlite_sequence"}


def _sqlite_schema(path: Path, version: int) -> dict[str, set[Column]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:version])
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in _BOOKKEEPING
        ]
        schema: dict[str, set[Column]] = {}
        for table in tables:
            columns: set[Column] = set()
            for _cid, name, type_, notnull, _default, pk in conn.execute(f"PRAGMA table_info({table})"):
                # SQLite lets a non-INTEGER PRIMARY KEY hold NULL unless NOT NULL is written; an
                # INTEGER PRIMARY KEY is the rowid, never NULL.
                refuses_null = bool(notnull) or (pk > 0 and type_.upper() == "INTEGER")
                columns.add((name, refuses_null, _SQLITE_KIND[type_.upper()]))
            schema[table] = columns
        return schema
    finally:
        conn.close()


def _sqlite_indexes(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return {
            (table, name)
            for name, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    finally:
        conn.close()


def _pg_schema(url: str, version: int) -> tuple[dict[str, set[Column]], set[tuple[str, str]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate_pg(conn, MIGRATIONS_PG[:version])
        rows = conn.execute(
            "SELECT table_name, column_name, is_nullable, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname NOT LIKE '%%_pkey' AND indexname NOT LIKE '%%_key'"
        ).fetchall()
    schema: dict[str, set[Column]] = {}
    for table, name, nullable, type_ in rows:
        if table in _BOOKKEEPING:
            continue
        schema.setdefault(table, set()).add((name, nullable == "NO", _PG_KIND[type_]))
    return schema, {(table, name) for table, name in indexes if table not in _BOOKKEEPING}


def test_both_dialects_have_as_many_versions() -> None:
    assert len(MIGRATIONS) == len(MIGRATIONS_PG)


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS) + 1))
def test_both_dialects_hold_the_same_tables_and_columns_at_each_version(version: int, tmp_path: Path) -> None:
    sqlite_path = tmp_path / "audit.db"
    lite = _sqlite_schema(sqlite_path, version)
    with fresh_database() as url:
        pg, pg_indexes = _pg_schema(url, version)
    assert sorted(lite) == sorted(pg), f"schema {version}: the tables differ"
    for table in lite:
        # SQLite's implicit rowid is written out on PostgreSQL where the queries order by it.
        pg[table].discard(("rowid", True, "integer"))
        only_lite = lite[table] - pg[table]
        only_pg = pg[table] - lite[table]
        assert not only_lite and not only_pg, (
            f"schema {version}, table {table}: SQLite has {sorted(only_lite)}, PostgreSQL {sorted(only_pg)}"
        )
    assert _sqlite_indexes(sqlite_path) == pg_indexes, f"schema {version}: the indexes differ"
