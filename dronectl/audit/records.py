"""What goes into the audit store: frozen records, one per fact, with the time the caller saw it.

Times are Unix epoch seconds from the caller's clock (``at_unix_s``); the store never reads a
clock itself, so a simulated or replayed run records its own times.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CommandOutcome(StrEnum):
    """Where a command stands. The first outcome is the answer to a repeated command id."""

    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


class FlightOutcome(StrEnum):
    """How a flight ended."""

    COMPLETED = "completed"  # landed in its dock
    LANDED_AWAY = "landed_away"  # on the ground, but not in its dock
    ABORTED = "aborted"  # never left the dock (launch aborted)
    LOST = "lost"  # the drone was lost (no link, no landing seen)


def args_to_json(args: Mapping[str, Any]) -> str:
    """Canonical JSON of a command's arguments; raises ValueError/TypeError for what JSON cannot hold."""
    return json.dumps(dict(args), sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Fence:
    """The nest lease a write is made under: the store refuses it unless ``owner`` still holds the
    nest with this ``token`` (fencing tokens only grow; a takeover makes a new one)."""

    nest_id: int
    owner: str
    token: int


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command as it was received, with its first outcome (accepted, refused, ...)."""

    command_id: str
    at_unix_s: float
    actor_id: str
    actor_role: str
    nest_id: int | None  # None: a fleet-level command
    method: str
    args: Mapping[str, Any] = field(hash=False)
    outcome: CommandOutcome
    code: str | None = None
    message: str | None = None
    channel: str = ""  # how it came: mqtt, http, console, automation (actor_id: the authenticated user)


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """A later outcome of a command already recorded (in progress, succeeded, failed, cancelled)."""

    command_id: str
    at_unix_s: float
    outcome: CommandOutcome
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """A nest state-machine transition and why it happened."""

    nest_id: int
    at_unix_s: float
    from_state: str
    to_state: str
    cause: str


@dataclass(frozen=True, slots=True)
class FlightStart:
    """A flight begins (the launch was committed to). ``command_id``: the launch command, if any."""

    flight_id: str
    nest_id: int
    started_at_unix_s: float
    command_id: str | None = None
    target_lat_deg: float | None = None
    target_lon_deg: float | None = None
    target_alt_m: float | None = None


@dataclass(frozen=True, slots=True)
class FlightEnd:
    """A flight is over; recorded once per flight."""

    flight_id: str
    ended_at_unix_s: float
    outcome: FlightOutcome
    note: str | None = None


@dataclass(frozen=True, slots=True)
class TrackSample:
    """One point of a flight's track."""

    flight_id: str
    at_unix_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float  # above mean sea level
    speed_mps: float
    battery_pct: float


@dataclass(frozen=True, slots=True)
class FlightEvent:
    """Something that happened during a flight: launched, on_station, returning, landed, ..."""

    flight_id: str
    at_unix_s: float
    kind: str
    message: str = ""
    data: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True)
class MissionRecord:
    """A patrol mission as it stood after one of its transitions (``data``: the whole mission)."""

    mission_id: str
    at_unix_s: float
    kind: str
    stretch_id: str
    state: str
    nest_id: int | None
    reason: str
    data: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class LoginFailureRecord:
    """Refused logins: ``attempts`` of them for ``user_name`` from ``remote_addr`` on ``channel``
    (mqtt, http, token), the first at ``first_at_unix_s``, the last at ``at_unix_s``. ``reason`` says
    why in words (never the password tried; for a token, ``user_name`` is empty)."""

    at_unix_s: float
    channel: str
    user_name: str
    remote_addr: str
    reason: str
    attempts: int = 1
    first_at_unix_s: float | None = None  # None: at_unix_s (one attempt)
