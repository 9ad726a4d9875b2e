"""What comes out of the audit store: plain dicts (JSON-ready), typed for mypy."""

from __future__ import annotations

from typing import Any, TypedDict


class OutcomeRow(TypedDict):
    seq: int  # order of recording across all outcomes
    command_id: str
    at_unix_s: float
    outcome: str
    code: str | None
    message: str | None


class CommandRow(TypedDict):
    command_id: str
    at_unix_s: float
    actor_id: str
    actor_role: str
    nest_id: int | None
    method: str
    args: dict[str, Any]
    outcomes: list[OutcomeRow]  # first is the first outcome, in recording order
    channel: str  # mqtt, http, console, automation; '' for records from before it was kept


class TransitionRow(TypedDict):
    seq: int
    nest_id: int
    at_unix_s: float
    from_state: str
    to_state: str
    cause: str


class TrackRow(TypedDict):
    at_unix_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float
    speed_mps: float
    battery_pct: float


class EventRow(TypedDict):
    seq: int
    at_unix_s: float
    kind: str
    message: str
    data: dict[str, Any] | None


class FlightRow(TypedDict):
    flight_id: str
    nest_id: int
    started_at_unix_s: float
    command_id: str | None
    target_lat_deg: float | None
    target_lon_deg: float | None
    target_alt_m: float | None
    ended_at_unix_s: float | None  # None while the flight is open
    outcome: str | None
    note: str | None


class FlightDetail(TypedDict):
    flight: FlightRow
    track: list[TrackRow]
    events: list[EventRow]


class MissionRow(TypedDict):
    seq: int
    mission_id: str
    at_unix_s: float
    kind: str
    stretch_id: str
    state: str
    nest_id: int | None
    reason: str
    data: dict[str, Any]


class LoginFailureRow(TypedDict):
    seq: int
    at_unix_s: float
    first_at_unix_s: float
    channel: str
    user_name: str
    remote_addr: str
    reason: str
    attempts: int
