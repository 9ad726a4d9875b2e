"""Pure request handling: from (topic, payload) to a decision. No I/O, no await, time injected.

For every incoming message :meth:`Dispatcher.decide` returns exactly one of:

- :class:`Execute`: a valid, authorised, unexpired command for the controller;
- :class:`Refuse`: an error reply (sent when a reply_to could be read) and an event;
- :class:`Repeat`: the id was seen before: the first outcome again, nothing executed;
- :class:`Ignore`: not ours, a retained replay, or a repeat whose first answer is still pending.

A repeated id is recognised from an in-memory LRU of first outcomes; the asyncio side can seed it
from the audit store (:class:`OutcomeStore`) before deciding, so a restart does not forget.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from dronectl.api.controller import Command, CommandUpdate
from dronectl.api.models import (
    FLEET_METHOD_ARGS,
    NEST_METHOD_ARGS,
    ErrorBody,
    ErrorCode,
    Event,
    EventKind,
    Incident,
    Progress,
    ProgressState,
    Reply,
    Request,
)
from dronectl.api.roles import may_call, roles_for
from dronectl.api.topics import FleetCommands, Incidents, NestCommands, Topics, UnknownNest

MAX_PAYLOAD_BYTES = 64 * 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
_REPLY_TO = re.compile(r"^[^$+#\x00][^+#\x00]{0,255}$")


class OutcomeStore(Protocol):
    """Where first outcomes outlive the process (the audit store, through an adapter)."""

    async def first_outcome(self, command_id: str) -> Reply | None: ...

    async def recent(self, since_unix_s: float) -> list[tuple[str, Reply]]:
        """First outcomes of the commands received since ``since_unix_s``, oldest first."""
        ...


@runtime_checkable
class RefusalLog(Protocol):
    """An OutcomeStore that also records the requests refused here (expired, forbidden, ...)."""

    async def record_refusal(self, request: Request, nest_id: int | None, reply: Reply) -> None: ...


@dataclass(frozen=True)
class Execute:
    command: Command
    reply_to: str | None


@dataclass(frozen=True)
class Refuse:
    reply: Reply
    reply_to: str | None  # None: nowhere to answer; the event still goes out
    event: Event
    request: Request | None = None  # the request, when it could be read (to audit the refusal)


@dataclass(frozen=True)
class Repeat:
    reply: Reply
    reply_to: str | None


@dataclass(frozen=True)
class Ignore:
    reason: str


Decision = Execute | Refuse | Repeat | Ignore


@dataclass(frozen=True)
class IncidentAccepted:
    incident: Incident


@dataclass(frozen=True)
class IncidentRejected:
    event: Event


def _utc(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, tz=UTC)


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        where = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "payload")
        out.append(f"{where}: {error['msg']}")
    return out[:20]


def _readable_address(payload: bytes) -> tuple[str | None, str | None]:
    """Best effort (id, reply_to) from a payload that failed validation."""
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(raw, dict):
        return None, None
    raw_id, raw_reply = raw.get("id"), raw.get("reply_to")
    command_id = raw_id if isinstance(raw_id, str) and _ID.fullmatch(raw_id) else None
    reply_to = raw_reply if isinstance(raw_reply, str) and _REPLY_TO.fullmatch(raw_reply) else None
    return command_id, reply_to


class _FirstOutcomes:
    """LRU of command id -> first reply (None while the controller has not answered yet)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, Reply | None] = OrderedDict()

    def __contains__(self, command_id: str) -> bool:
        return command_id in self._items

    def get(self, command_id: str) -> Reply | None:
        reply = self._items[command_id]
        self._items.move_to_end(command_id)
        return reply

    def put(self, command_id: str, reply: Reply | None) -> None:
        self._items[command_id] = reply
        self._items.move_to_end(command_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class Dispatcher:
    def __init__(
        self,
        topics: Topics,
        nest_ids: Collection[int],
        clock: Callable[[], float],
        *,
        max_future_skew_s: float = 5.0,
        memory: int = 10_000,
    ) -> None:
        self.topics = topics
        self.nest_ids = frozenset(nest_ids)
        self.clock = clock
        self.max_future_skew_s = max_future_skew_s
        self._outcomes = _FirstOutcomes(memory)

    # --- dedupe -----------------------------------------------------------------------------

    def request_id(self, payload: bytes) -> str | None:
        """The id of a request, if one can be read (to look it up in the store before deciding)."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            return None
        return _readable_address(payload)[0]

    def knows(self, command_id: str) -> bool:
        return command_id in self._outcomes

    def remember(self, command_id: str, first: Reply) -> None:
        """Record the first outcome of ``command_id`` (from the controller's first update, or the store)."""
        self._outcomes.put(command_id, first)

    # --- commands ---------------------------------------------------------------------------

    def decide(self, topic: str, payload: bytes, *, retained: bool = False) -> Decision:
        where = self.topics.parse(topic, self.nest_ids)
        if where is None or isinstance(where, Incidents):
            return Ignore(f"not a command topic: {topic!r}")
        if retained:
            return Ignore(
                "a retained command is a replay; commands are never executed from retained messages"
            )
        nest_id = where.nest_id if isinstance(where, NestCommands) else None
        if len(payload) > MAX_PAYLOAD_BYTES:
            return self._refuse(None, None, nest_id, None, ErrorCode.MALFORMED, "payload larger than 64 KiB")
        try:
            request = Request.model_validate_json(payload)
        except (ValidationError, ValueError, RecursionError) as exc:
            command_id, reply_to = _readable_address(payload)
            reasons = _problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
            if command_id is not None and command_id in self._outcomes:
                return self._repeat(command_id, reply_to)
            return self._refuse(
                command_id, reply_to, nest_id, None, ErrorCode.MALFORMED, "not a valid request", reasons
            )
        if request.id in self._outcomes:
            return self._repeat(request.id, request.reply_to)
        return self._check(request, where, nest_id)

    def _check(
        self, request: Request, where: NestCommands | FleetCommands | UnknownNest, nest_id: int | None
    ) -> Decision:
        now = self.clock()
        if isinstance(where, UnknownNest):
            known = ", ".join(str(n) for n in sorted(self.nest_ids))
            return self._refuse_request(
                request, None, ErrorCode.UNKNOWN_NEST, f"no nest {where.token!r} here (nests: {known})"
            )
        issued_s = request.issued_at.timestamp()
        if now > issued_s + request.ttl_s:
            late_s = now - issued_s - request.ttl_s
            return self._refuse_request(
                request,
                nest_id,
                ErrorCode.EXPIRED,
                f"expired {late_s:.1f} s ago (ttl {request.ttl_s:g} s); not executed",
            )
        if issued_s > now + self.max_future_skew_s:
            return self._refuse_request(
                request, nest_id, ErrorCode.EXPIRED, "issued_at lies in the future: check the client's clock"
            )
        table = NEST_METHOD_ARGS if isinstance(where, NestCommands) else FLEET_METHOD_ARGS
        method = next((m for m in table if m.value == request.method), None)
        if method is None:
            scope = "a nest" if isinstance(where, NestCommands) else "the fleet"
            names = ", ".join(m.value for m in table)
            return self._refuse_request(
                request,
                nest_id,
                ErrorCode.UNKNOWN_METHOD,
                f"{request.method!r} is not a method of {scope}; methods: {names}",
            )
        if not may_call(request.actor.role, method):
            allowed = ", ".join(r.value for r in roles_for(method)) or "nobody"
            return self._refuse_request(
                request,
                nest_id,
                ErrorCode.FORBIDDEN,
                f"role {request.actor.role.value} may not call {method.value} (allowed: {allowed})",
            )
        try:
            args: BaseModel = table[method].model_validate(request.args)
        except ValidationError as exc:
            return self._refuse_request(
                request,
                nest_id,
                ErrorCode.INVALID_ARGS,
                f"invalid arguments for {method.value}",
                _problems(exc, "args."),
            )
        command = Command(
            id=request.id,
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=request.actor.id,
            actor_role=request.actor.role,
            issued_at_unix_s=issued_s,
            deadline_unix_s=issued_s + request.ttl_s,
            received_at_unix_s=now,
        )
        self._outcomes.put(request.id, None)  # pending: a repeat now is ignored, not executed
        return Execute(command, request.reply_to)

    def _repeat(self, command_id: str, reply_to: str | None) -> Decision:
        first = self._outcomes.get(command_id)
        if first is None:
            return Ignore(f"repeated id {command_id!r}: its first answer is still pending")
        return Repeat(first.model_copy(update={"repeated": True}), reply_to)

    def _refuse_request(
        self,
        request: Request,
        nest_id: int | None,
        code: ErrorCode,
        message: str,
        reasons: list[str] | None = None,
    ) -> Refuse:
        refusal = self._refuse(request.id, request.reply_to, nest_id, request.method, code, message, reasons)
        return Refuse(refusal.reply, refusal.reply_to, refusal.event, request)

    def _refuse(
        self,
        command_id: str | None,
        reply_to: str | None,
        nest_id: int | None,
        method: str | None,
        code: ErrorCode,
        message: str,
        reasons: list[str] | None = None,
    ) -> Refuse:
        reply = Reply(
            id=command_id, ok=False, error=ErrorBody(code=code, message=message, reasons=reasons or [])
        )
        if command_id is not None:
            self._outcomes.put(command_id, reply)
        event = Event(
            kind=EventKind.COMMAND_REJECTED,
            at=_utc(self.clock()),
            nest_id=nest_id,
            message=f"command rejected ({code.value}): {message}",
            command_id=command_id,
            data={"code": code.value, "method": method, "reasons": reasons or []},
        )
        return Refuse(reply, reply_to, event)

    # --- incidents --------------------------------------------------------------------------

    def incident(self, payload: bytes) -> IncidentAccepted | IncidentRejected:
        try:
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError("payload larger than 64 KiB")
            return IncidentAccepted(Incident.model_validate_json(payload))
        except (ValidationError, ValueError, RecursionError) as exc:
            reasons = _problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
            event = Event(
                kind=EventKind.COMMAND_REJECTED,
                at=_utc(self.clock()),
                message="incident rejected: not a valid incident",
                data={"code": ErrorCode.MALFORMED.value, "reasons": reasons},
            )
            return IncidentRejected(event)


# --- answers built from the controller's updates ----------------------------------------------


def first_reply(command: Command, update: CommandUpdate) -> Reply:
    """The reply to a command from the controller's first update (accepted, or a refusal)."""
    if update.state is ProgressState.ACCEPTED:
        result: dict[str, Any] = {"state": ProgressState.ACCEPTED.value}
        if update.message:
            result["message"] = update.message
        return Reply(id=command.id, ok=True, result=result)
    return Reply(id=command.id, ok=False, error=error_body(update))


def error_body(update: CommandUpdate) -> ErrorBody:
    return ErrorBody(
        code=update.error or ErrorCode.FAILED,
        message=update.message or update.state.value,
        reasons=list(update.reasons),
    )


def progress(command: Command, update: CommandUpdate, now_unix_s: float) -> Progress:
    failed = update.state in (ProgressState.FAILED, ProgressState.CANCELLED)
    return Progress(
        id=command.id,
        method=command.method,
        nest_id=command.nest_id,
        state=update.state,
        at=_utc(now_unix_s),
        message=update.message,
        result=dict(update.result) if update.result is not None else None,
        error=error_body(update) if failed else None,
    )
