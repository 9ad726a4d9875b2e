"""Read queries over the audit tables; plain functions of a connection, run on the writer thread.

Written once for both backends (connection.py); where the dialects differ, ``conn.dialect`` says.
"""

from __future__ import annotations

import json
from typing import Any

from dronectl.audit.connection import Connection, Dialect
from dronectl.audit.rows import (
    CommandRow,
    EventRow,
    FlightDetail,
    FlightRow,
    LoginFailureRow,
    MissionRow,
    OutcomeRow,
    TrackRow,
    TransitionRow,
)

_OUTCOME_COLS = "seq, command_id, at_unix_s, outcome, code, message"
_FLIGHT_SELECT = (
    "SELECT f.flight_id, f.nest_id, f.started_at_unix_s, f.command_id, f.target_lat_deg, f.target_lon_deg,"
    " f.target_alt_m, e.ended_at_unix_s, e.outcome, e.note"
    " FROM flights f LEFT JOIN flight_ends e ON e.flight_id = f.flight_id"
)


def _outcome(row: tuple[Any, ...]) -> OutcomeRow:
    return OutcomeRow(
        seq=row[0], command_id=row[1], at_unix_s=row[2], outcome=row[3], code=row[4], message=row[5]
    )


def first_outcome(conn: Connection, command_id: str) -> OutcomeRow | None:
    row = conn.execute(
        f"SELECT {_OUTCOME_COLS} FROM command_outcomes WHERE command_id = ? ORDER BY seq LIMIT 1",
        (command_id,),
    ).fetchone()
    return None if row is None else _outcome(row)


def _outcomes(conn: Connection, command_id: str) -> list[OutcomeRow]:
    rows = conn.execute(
        f"SELECT {_OUTCOME_COLS} FROM command_outcomes WHERE command_id = ? ORDER BY seq", (command_id,)
    )
    return [_outcome(r) for r in rows]


_COMMAND_SELECT = (
    "SELECT command_id, at_unix_s, actor_id, actor_role, nest_id, method, args_json, channel FROM commands"
)


def _command(conn: Connection, row: tuple[Any, ...]) -> CommandRow:
    return CommandRow(
        command_id=row[0],
        at_unix_s=row[1],
        actor_id=row[2],
        actor_role=row[3],
        nest_id=row[4],
        method=row[5],
        args=json.loads(row[6]),
        outcomes=_outcomes(conn, row[0]),
        channel=row[7],
    )


def command(conn: Connection, command_id: str) -> CommandRow | None:
    row = conn.execute(f"{_COMMAND_SELECT} WHERE command_id = ?", (command_id,)).fetchone()
    return None if row is None else _command(conn, row)


def _time_range(
    where: list[str], params: list[Any], column: str, since_unix_s: float | None, until_unix_s: float | None
) -> None:
    if since_unix_s is not None:
        where.append(f"{column} >= ?")
        params.append(since_unix_s)
    if until_unix_s is not None:
        where.append(f"{column} < ?")
        params.append(until_unix_s)


def commands(
    conn: Connection,
    nest_id: int | None,
    actor_id: str | None,
    since_unix_s: float | None,
    until_unix_s: float | None,
    limit: int,
) -> list[CommandRow]:
    where: list[str] = []
    params: list[Any] = []
    if nest_id is not None:
        where.append("nest_id = ?")
        params.append(nest_id)
    if actor_id is not None:
        where.append("actor_id = ?")
        params.append(actor_id)
    _time_range(where, params, "at_unix_s", since_unix_s, until_unix_s)
    sql = (
        _COMMAND_SELECT
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY at_unix_s, rowid LIMIT ?"
    )
    rows = conn.execute(sql, (*params, limit)).fetchall()
    return [_command(conn, r) for r in rows]


def transitions(
    conn: Connection, nest_id: int | None, since_unix_s: float | None, until_unix_s: float | None
) -> list[TransitionRow]:
    """One nest's transitions (every nest's with ``nest_id`` None) in recording order."""
    where: list[str] = []
    params: list[Any] = []
    if nest_id is not None:
        where.append("nest_id = ?")
        params.append(nest_id)
    _time_range(where, params, "at_unix_s", since_unix_s, until_unix_s)
    rows = conn.execute(
        "SELECT seq, nest_id, at_unix_s, from_state, to_state, cause FROM transitions"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY seq",
        params,
    )
    return [
        TransitionRow(seq=r[0], nest_id=r[1], at_unix_s=r[2], from_state=r[3], to_state=r[4], cause=r[5])
        for r in rows
    ]


def _flight(row: tuple[Any, ...]) -> FlightRow:
    return FlightRow(
        flight_id=row[0],
        nest_id=row[1],
        started_at_unix_s=row[2],
        command_id=row[3],
        target_lat_deg=row[4],
        target_lon_deg=row[5],
        target_alt_m=row[6],
        ended_at_unix_s=row[7],
        outcome=row[8],
        note=row[9],
    )


def flight(conn: Connection, flight_id: str) -> FlightDetail | None:
    row = conn.execute(f"{_FLIGHT_SELECT} WHERE f.flight_id = ?", (flight_id,)).fetchone()
    if row is None:
        return None
    track = [
        TrackRow(at_unix_s=r[0], lat_deg=r[1], lon_deg=r[2], alt_m=r[3], speed_mps=r[4], battery_pct=r[5])
        for r in conn.execute(
            "SELECT at_unix_s, lat_deg, lon_deg, alt_m, speed_mps, battery_pct FROM track"
            " WHERE flight_id = ? ORDER BY seq",
            (flight_id,),
        )
    ]
    events = [
        EventRow(
            seq=r[0], at_unix_s=r[1], kind=r[2], message=r[3], data=None if r[4] is None else json.loads(r[4])
        )
        for r in conn.execute(
            "SELECT seq, at_unix_s, kind, message, data_json FROM flight_events"
            " WHERE flight_id = ? ORDER BY seq",
            (flight_id,),
        )
    ]
    return FlightDetail(flight=_flight(row), track=track, events=events)


def flights(conn: Connection, nest_id: int | None, limit: int) -> list[FlightRow]:
    where = "" if nest_id is None else " WHERE f.nest_id = ?"
    params: tuple[Any, ...] = () if nest_id is None else (nest_id,)
    rows = conn.execute(
        f"{_FLIGHT_SELECT}{where} ORDER BY f.started_at_unix_s DESC, f.rowid DESC LIMIT ?", (*params, limit)
    )
    return [_flight(r) for r in rows]


def flights_between(
    conn: Connection, since_unix_s: float, until_unix_s: float, limit: int
) -> list[FlightRow]:
    """The flights in the air at some moment of [since, until): started before ``until``, not
    ended before ``since`` (a flight not ended yet counts), first started first. The same SQL on
    both dialects: a plain join and comparisons."""
    rows = conn.execute(
        f"{_FLIGHT_SELECT} WHERE f.started_at_unix_s < ?"
        " AND (e.ended_at_unix_s IS NULL OR e.ended_at_unix_s >= ?)"
        " ORDER BY f.started_at_unix_s, f.rowid LIMIT ?",
        (until_unix_s, since_unix_s, limit),
    )
    return [_flight(r) for r in rows]


def open_flights(conn: Connection, nest_id: int | None) -> list[FlightRow]:
    where = " WHERE e.flight_id IS NULL" + ("" if nest_id is None else " AND f.nest_id = ?")
    params: tuple[Any, ...] = () if nest_id is None else (nest_id,)
    rows = conn.execute(f"{_FLIGHT_SELECT}{where} ORDER BY f.started_at_unix_s, f.rowid", params)
    return [_flight(r) for r in rows]


_MISSION_SELECT = (
    "SELECT seq, mission_id, at_unix_s, kind, stretch_id, state, nest_id, reason, data_json FROM missions"
)


def _mission(row: tuple[Any, ...]) -> MissionRow:
    return MissionRow(
        seq=row[0],
        mission_id=row[1],
        at_unix_s=row[2],
        kind=row[3],
        stretch_id=row[4],
        state=row[5],
        nest_id=row[6],
        reason=row[7],
        data=json.loads(row[8]),
    )


def mission_history(conn: Connection, mission_id: str) -> list[MissionRow]:
    rows = conn.execute(f"{_MISSION_SELECT} WHERE mission_id = ? ORDER BY seq", (mission_id,))
    return [_mission(r) for r in rows]


def latest_missions(conn: Connection, unfinished_only: bool, limit: int) -> list[MissionRow]:
    """Each mission's latest row (its current state), oldest mission first."""
    where = " WHERE state != 'ended'" if unfinished_only else ""
    rows = conn.execute(
        f"SELECT * FROM ({_MISSION_SELECT} WHERE seq IN"
        " (SELECT max(seq) FROM missions GROUP BY mission_id)) AS latest"
        f"{where} ORDER BY seq DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [_mission(r) for r in reversed(rows)]


# the dispatcher's incidents (method ``incident``): those a restart must pick up again
_FINAL_OUTCOMES = "('succeeded','failed','refused','cancelled')"


def open_incidents(conn: Connection) -> list[CommandRow]:
    """Incidents with no final outcome yet, oldest first (with all their outcomes)."""
    rows = conn.execute(
        f"{_COMMAND_SELECT} WHERE method = 'incident' AND command_id NOT IN"
        f" (SELECT command_id FROM command_outcomes WHERE outcome IN {_FINAL_OUTCOMES})"
        " ORDER BY at_unix_s, rowid"
    ).fetchall()
    return [_command(conn, r) for r in rows]


def incidents(conn: Connection, limit: int) -> list[CommandRow]:
    """The latest incidents (method ``incident``), newest first, with all their outcomes."""
    rows = conn.execute(
        f"{_COMMAND_SELECT} WHERE method = 'incident' ORDER BY at_unix_s DESC, rowid DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_command(conn, r) for r in rows]


def incident_flights(conn: Connection, incident_id: str) -> list[str]:
    """The flights that carry an incident's milestones (``incident.*`` events), first used first."""
    incident = (
        "json_extract(data_json, '$.incident_id')"
        if conn.dialect is Dialect.SQLITE
        else "(data_json::jsonb ->> 'incident_id')"
    )
    rows = conn.execute(
        f"SELECT flight_id FROM flight_events WHERE kind LIKE 'incident.%' AND {incident} = ? ORDER BY seq",
        (incident_id,),
    )
    return list(dict.fromkeys(r[0] for r in rows))


def open_commands(conn: Connection, nest_id: int) -> list[CommandRow]:
    """A nest's commands with no final outcome (incidents apart), oldest first: those a new owner
    of the nest records as interrupted."""
    rows = conn.execute(
        f"{_COMMAND_SELECT} WHERE nest_id = ? AND method != 'incident' AND command_id NOT IN"
        f" (SELECT command_id FROM command_outcomes WHERE outcome IN {_FINAL_OUTCOMES})"
        " ORDER BY at_unix_s, rowid",
        (nest_id,),
    ).fetchall()
    return [_command(conn, r) for r in rows]


def login_failures(conn: Connection, since_unix_s: float, limit: int) -> list[LoginFailureRow]:
    """Refused logins recorded at or after ``since_unix_s``, oldest first."""
    rows = conn.execute(
        "SELECT seq, at_unix_s, first_at_unix_s, channel, user_name, remote_addr, reason, attempts"
        " FROM login_failures WHERE at_unix_s >= ? ORDER BY seq LIMIT ?",
        (since_unix_s, limit),
    )
    return [
        LoginFailureRow(
            seq=r[0],
            at_unix_s=r[1],
            first_at_unix_s=r[2],
            channel=r[3],
            user_name=r[4],
            remote_addr=r[5],
            reason=r[6],
            attempts=r[7],
        )
        for r in rows
    ]
