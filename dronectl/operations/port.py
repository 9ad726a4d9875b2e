"""The operations port: what transports and automations may ask of the fleet, and the types it speaks.

- :class:`Controller`: the port as a transport sees it. A transport validates and authorises a
  request and hands it a :class:`Command`; the answer is a stream of :class:`CommandUpdate` items
  (the first says accepted or refused), and state snapshots and events come back. Telemetry is
  pulled at the transport's configured rates, so a sample is never queued.
- :class:`Operations`: the port as an automation sees it, in-process: the same ``execute``, plus
  reading the nests, publishing events, owning tasks, the manual-control authority and the
  :class:`~dronectl.operations.tasking.Tasking` board that automations share.
- :class:`IncidentDesk`, :class:`PatrolDesk`: what an automation offers back to the port when it
  runs (incident confirmation, patrol start/stop/list), so that commands can reach it without the
  port importing any automation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from dronectl.domain.clock import Clock
from dronectl.domain.control_authority import Change, ControlAuthority
from dronectl.domain.dispatch import DispatchSettings, Option
from dronectl.domain.patrols.missions import Mission, MissionKind
from dronectl.domain.roles import Channel
from dronectl.operations.models import (
    ErrorCode,
    Event,
    Incident,
    Method,
    NestState,
    ProgressState,
    Role,
    Telemetry,
)
from dronectl.operations.tasking import Tasking

if TYPE_CHECKING:
    from dronectl.nest.fleet import Fleet


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
    channel: Channel = Channel.AUTOMATION  # how it came: mqtt, http, console; in-process: automation


@dataclass(frozen=True)
class CommandUpdate:
    """One step of a command. The first update is ACCEPTED or a refusal (FAILED with an error code);
    after ACCEPTED: any IN_PROGRESS, then one of SUCCEEDED / FAILED / CANCELLED."""

    state: ProgressState
    message: str = ""
    error: ErrorCode | None = None  # set with FAILED / CANCELLED
    reasons: Sequence[str] = ()  # every reason of a refusal, in words an operator understands
    result: Mapping[str, Any] | None = field(default=None, hash=False)  # JSON-ready, with SUCCEEDED


# Whoever walks every nest in one go (a snapshot each, rebuilt when stale) yields to the event
# loop after this many: at 256 nests one pass would otherwise hold commands up (issue 15).
YIELD_EVERY_NESTS = 16


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


class AutomationError(Exception):
    """A request to an automation that cannot be honoured (unknown incident or mission, not
    waiting for a confirmation, stretch already covered...); the message says why."""


class IncidentDesk(Protocol):
    """What incident dispatch offers the port while it runs."""

    def submit(self, incident: Incident) -> None:
        """Take an incident (non-blocking): plan now, carry it out in a task."""
        ...

    def check_confirm(self, incident_id: str, nest_id: int | None) -> str | None:
        """Why ``incident.confirm`` cannot be honoured now, or None."""
        ...

    def confirm(self, incident_id: str, nest_id: int | None, actor_id: str) -> Option:
        """A commander's go for a proposed incident; raises :class:`AutomationError`."""
        ...

    async def aclose(self) -> None: ...


class PatrolDesk(Protocol):
    """What the patrol service offers the port while it runs."""

    def missions(self, *, active_only: bool = False) -> list[Mission]: ...

    def check_start(self, kind: MissionKind, stretch_id: str) -> str | None: ...

    async def start(self, kind: MissionKind, stretch_id: str, *, actor_id: str) -> Mission:
        """Plan a mission (raises :class:`AutomationError` when it cannot)."""
        ...

    def check_stop(self, mission_id: str) -> str | None: ...

    def stop(self, mission_id: str, *, by: str) -> Mission:
        """End a mission (raises :class:`AutomationError` when it cannot)."""
        ...


class Operations(Controller, Protocol):
    """The port as an in-process automation sees it: everything a remote client has, and no more
    of the fleet than reading it (commands still go through :meth:`execute`, checked and audited)."""

    fleet: Fleet  # read the nests' state; never drive a nest controller directly
    clock: Clock
    authority: ControlAuthority
    tasking: Tasking
    dispatch_settings: DispatchSettings
    control_listeners: list[Callable[[Change], None]]
    incidents: IncidentDesk | None
    patrols: PatrolDesk | None

    def publish(self, event: Event) -> None:
        """An event to every subscriber (MQTT ``events``, the page)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` owned by the port (cancelled at its close; a crash is logged)."""
        ...
