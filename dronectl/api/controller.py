"""What the MQTT API needs from the controller: one small Protocol and the types it speaks.

The API validates and authorises a request and hands the controller a :class:`Command`; the
controller answers with :class:`CommandUpdate` items (the first says accepted or refused) and
feeds state snapshots and events back. Telemetry is pulled at the API's configured rates, so a
sample is never queued: whatever is current when the API publishes is what goes out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from dronectl.api.models import ErrorCode, Event, Incident, Method, NestState, ProgressState, Role, Telemetry


@dataclass(frozen=True)
class Command:
    """A validated, authorised, unexpired request: what the controller executes.

    ``args`` is the method's frozen args model (``LaunchArgs`` for launch, ...); ``nest_id`` is None
    for fleet methods. ``deadline_unix_s`` is issued_at + ttl_s: a command must not *start* after it.
    """

    id: str
    method: Method
    nest_id: int | None
    args: BaseModel
    actor_id: str
    actor_role: Role
    issued_at_unix_s: float
    deadline_unix_s: float
    received_at_unix_s: float


@dataclass(frozen=True)
class CommandUpdate:
    """One step of a command. The first update is ACCEPTED or a refusal (FAILED with an error code);
    after ACCEPTED: any IN_PROGRESS, then one of SUCCEEDED / FAILED / CANCELLED."""

    state: ProgressState
    message: str = ""
    error: ErrorCode | None = None  # set with FAILED / CANCELLED
    reasons: Sequence[str] = ()  # every reason of a refusal, in words an operator understands
    result: Mapping[str, Any] | None = field(default=None, hash=False)  # JSON-ready, with SUCCEEDED


class Controller(Protocol):
    """The controller as the MQTT API sees it."""

    def nest_ids(self) -> Sequence[int]:
        """The nests it manages (fixed for its lifetime)."""
        ...

    def snapshot(self, nest_id: int) -> NestState:
        """The nest's current state (cheap; no I/O)."""
        ...

    def telemetry(self, nest_id: int) -> Telemetry | None:
        """The latest telemetry sample, or None when there is none (no link, nothing yet)."""
        ...

    def updates(self) -> AsyncIterator[NestState | Event]:
        """A new subscription to state changes (the new snapshot) and events, from now on.
        Must not block the controller: a slow reader may miss intermediate snapshots, not events."""
        ...

    def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        """Run a command; yields its updates (see CommandUpdate) and ends after the last one.
        The API may stop iterating (shutdown); the operation itself must go on safely."""
        ...

    def report_incident(self, incident: Incident) -> None:
        """An incident from the command center (non-blocking hand-off)."""
        ...
