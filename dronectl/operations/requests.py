"""Pure request handling: from (topic, payload) to a decision. No I/O, no await, time injected.

For every incoming message :meth:`Dispatcher.decide` returns exactly one of:

- :class:`Execute`: a valid, authorised, unexpired command for the controller;
- :class:`Refuse`: an error reply (sent when a reply_to could be read) and an event;
- :class:`Repeat`: the id was seen before: the first outcome again, nothing executed;
- :class:`AwaitFirst`: the id was seen before and its first outcome is still pending: answer the
  copy with it once it exists (never drop it);
- :class:`Ignore`: not ours, or a retained replay.

Time is judged at receipt: ``received_at_unix_s`` (when the transport read the message) decides
whether a request has expired or was issued in the future, however long it waited in a backlog.

A repeated id is recognised from in-memory LRUs of first outcomes, one for the commands that ran
and one for refusals (so a flood of refused ids never pushes out a command that ran); the asyncio
side can seed them from the audit store (:class:`OutcomeStore`) so a restart does not forget.
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

from dronectl.domain.roles import INCIDENT_REPORTERS, Channel, Role, may_call, may_report_incident, roles_for
from dronectl.operations.models import (
    FLEET_METHOD_ARGS,
    NEST_METHOD_ARGS,
    Actor,
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
from dronectl.operations.port import Command, CommandUpdate
from dronectl.operations.topics import FleetCommands, Incidents, NestCommands, Topics, UnknownNest

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
    """An OutcomeStore that also records the requests refused here (expired, forbidden, ...),
    under the user who sent them (``user``, ``role``: the authenticated sender, never the claim)."""

    async def record_refusal(
        self, request: Request, user: str, role: str, channel: str, nest_id: int | None, reply: Reply
    ) -> None: ...


@dataclass(frozen=True)
class Sender:
    """Who sent a request, as the service knows it: the user the broker (or the HTTP session)
    authenticated, its role from the roles file, and the channel it came by."""

    user: str
    role: Role
    channel: Channel

    @property
    def actor(self) -> Actor:
        return Actor(id=self.user, role=self.role)


@dataclass(frozen=True)
class Delivery:
    """What an MQTT 5 message carries beside its payload that a request may use (MQTT 3.1.1
    messages carry none of it). User properties are never read: identity is the authenticated
    sender's, not what a message says.

    ``response_topic``: the Response Topic, where the reply and progress go (it takes the place of
    the payload's ``reply_to`` and obeys the same rule: under the sender's own reply prefix);
    ``expiry_s``: the Message Expiry Interval left when the message was read. The command's
    deadline is the earlier of ``issued_at + ttl_s`` and the message's expiry; a request may leave
    ``ttl_s`` out when its message has an expiry interval."""

    response_topic: str | None = None
    expiry_s: float | None = None


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
    user: str | None = None  # who sent it (the topic's user), to audit the refusal
    role: str | None = None  # that user's role ("unknown" for no such user)
    channel: str = Channel.MQTT.value  # how it came (a sender nobody knows came by MQTT)
    alone: bool = True  # recorded and announced on its own; False: counted in its burst


@dataclass(frozen=True)
class Repeat:
    reply: Reply
    reply_to: str | None


@dataclass(frozen=True)
class AwaitFirst:
    """A copy of a command whose first outcome is still pending: answer it once that exists."""

    command_id: str
    reply_to: str | None


@dataclass(frozen=True)
class Ignore:
    reason: str
    nest_elsewhere: int | None = None  # several instances: the nest is another's now (or no one's)


Decision = Execute | Refuse | Repeat | AwaitFirst | Ignore


@dataclass(frozen=True)
class IncidentAccepted:
    incident: Incident


@dataclass(frozen=True)
class IncidentRejected:
    event: Event


def _utc(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, tz=UTC)


def _lifetime(ttl_s: float | None, expiry_s: float | None) -> str:
    said = [f"ttl {ttl_s:g} s"] if ttl_s is not None else []
    if expiry_s is not None:
        said.append(f"message expiry {expiry_s:g} s left when read")
    return ", ".join(said)


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
        self._outcomes = _FirstOutcomes(memory)  # commands that ran (None: first answer pending)
        self._refused = _FirstOutcomes(memory)  # refusals, apart: a flood cannot evict the above

    # --- dedupe -----------------------------------------------------------------------------

    def request_id(self, payload: bytes) -> str | None:
        """The id of a request, if one can be read (to look it up in the store before deciding)."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            return None
        return _readable_address(payload)[0]

    def knows(self, command_id: str) -> bool:
        return command_id in self._outcomes or command_id in self._refused

    def pending(self, command_id: str) -> bool:
        """Whether ``command_id`` runs and its first outcome is not known yet."""
        return command_id in self._outcomes and self._outcomes.get(command_id) is None

    def first(self, command_id: str) -> Reply | None:
        """The first outcome of ``command_id``, if known."""
        if command_id in self._outcomes:
            return self._outcomes.get(command_id)
        return self._refused.get(command_id) if command_id in self._refused else None

    def remember(self, command_id: str, first: Reply) -> None:
        """Record the first outcome of ``command_id`` (from the controller's first update, or the store)."""
        self._outcomes.put(command_id, first)

    # --- commands ---------------------------------------------------------------------------

    def decide(
        self,
        topic: str,
        payload: bytes,
        sender: Sender | None,
        *,
        retained: bool = False,
        received_at_unix_s: float | None = None,
        delivery: Delivery | None = None,
    ) -> Decision:
        """``sender``: the authenticated sender (None: the topic's user is no user of ours);
        ``received_at_unix_s``: when the message was read (default: now); expiry and the clock
        skew are judged against it. ``delivery``: the MQTT 5 properties the request may use."""
        now = self.clock() if received_at_unix_s is None else received_at_unix_s
        delivery = delivery or Delivery()
        where = self.topics.parse(topic, self.nest_ids)
        if where is None or isinstance(where, Incidents):
            return Ignore(f"not a command topic: {topic!r}")
        if retained:
            return Ignore(
                "a retained command is a replay; commands are never executed from retained messages"
            )
        nest_id = where.nest_id if isinstance(where, NestCommands) else None

        def own(reply_to: str | None) -> str | None:
            """Only ever answer under the sender's own reply prefix."""
            if reply_to is None or sender is None or sender.user != where.user:
                return None
            return reply_to if self.topics.is_reply_topic_of(reply_to, sender.user) else None

        if len(payload) > MAX_PAYLOAD_BYTES:
            return self._refuse(
                None, None, nest_id, None, ErrorCode.MALFORMED, "payload larger than 64 KiB", at=now
            )
        response_topic = delivery.response_topic
        if response_topic is not None and not _REPLY_TO.fullmatch(response_topic):
            command_id, _ = _readable_address(payload)  # nowhere to answer: the event says it
            return self._refuse(
                command_id,
                None,
                nest_id,
                None,
                ErrorCode.MALFORMED,
                "the MQTT 5 Response Topic is no topic to publish to (wildcards, $ or too long)",
                at=now,
            )
        try:
            request = Request.model_validate_json(payload)
        except (ValidationError, ValueError, RecursionError) as exc:
            command_id, reply_to = _readable_address(payload)
            reply_to = response_topic or reply_to
            reasons = _problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
            if command_id is not None and self.knows(command_id):
                return self._repeat(command_id, own(reply_to))
            return self._refuse(
                command_id,
                own(reply_to),
                nest_id,
                None,
                ErrorCode.MALFORMED,
                "not a valid request",
                reasons,
                at=now,
            )
        if response_topic is not None:  # MQTT 5: the Response Topic is where to answer
            request = request.model_copy(update={"reply_to": response_topic})
        if self.knows(request.id):
            return self._repeat(request.id, own(request.reply_to))
        if sender is None or sender.user != where.user:
            return self._refuse_identity(request, where.user, sender, nest_id, now)
        if sender.channel is Channel.MQTT and request.client == "console":
            sender = Sender(sender.user, sender.role, Channel.CONSOLE)  # informational (Channel)
        if request.reply_to is not None and not self.topics.is_reply_topic_of(request.reply_to, sender.user):
            prefix = self.topics.replies(sender.user)
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.IDENTITY,
                f"reply_to {request.reply_to!r} is not under your own reply prefix {prefix}/",
                reply_to=prefix,
                at=now,
            )
        if request.actor is not None and (request.actor.id, request.actor.role) != (sender.user, sender.role):
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.IDENTITY,
                f"actor {request.actor.id} ({request.actor.role.value}) is not the sender: you are "
                f"{sender.user} ({sender.role.value}); leave actor out or give your own",
                at=now,
            )
        if request.ttl_s is None and delivery.expiry_s is None:
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.MALFORMED,
                "not a valid request",
                ["ttl_s: required, unless the MQTT 5 message carries a Message Expiry Interval"],
                at=now,
            )
        return self._check(request, sender, where, nest_id, now, delivery.expiry_s)

    def _refuse_identity(
        self, request: Request, user: str, sender: Sender | None, nest_id: int | None, now: float
    ) -> Refuse:
        if sender is None:
            message = f"{user!r} is no user of this service with a role (dronectl users list)"
        else:  # a transport bug: the topic names someone else than the authenticated sender
            message = f"the topic names user {user!r}, but the sender is {sender.user!r}"
        refusal = self._refuse(request.id, None, nest_id, request.method, ErrorCode.IDENTITY, message, at=now)
        return Refuse(refusal.reply, None, refusal.event, request, user, "unknown")

    def _check(
        self,
        request: Request,
        sender: Sender,
        where: NestCommands | FleetCommands | UnknownNest,
        nest_id: int | None,
        now: float,
        expiry_s: float | None = None,
    ) -> Decision:
        if isinstance(where, UnknownNest):
            known = ", ".join(str(n) for n in sorted(self.nest_ids))
            return self._refuse_request(
                request,
                sender,
                None,
                ErrorCode.UNKNOWN_NEST,
                f"no nest {where.token!r} here (nests: {known})",
                at=now,
            )
        issued_s = request.issued_at.timestamp()
        # the earlier of the payload's ttl and the MQTT 5 message's expiry (what was left of it when
        # read; a broker never delivers an expired message, so that one has not passed yet)
        deadlines = [issued_s + request.ttl_s] if request.ttl_s is not None else []
        if expiry_s is not None:
            deadlines.append(now + expiry_s)
        deadline_s = min(deadlines)
        if now > deadline_s:
            late_s = now - deadline_s
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.EXPIRED,
                f"expired {late_s:.1f} s ago ({_lifetime(request.ttl_s, expiry_s)}); not executed",
                at=now,
            )
        if issued_s > now + self.max_future_skew_s:
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.EXPIRED,
                f"issued_at lies {issued_s - now:.1f} s in the future (more than the "
                f"{self.max_future_skew_s:g} s of clock skew allowed): check the client's clock",
                at=now,
            )
        table = NEST_METHOD_ARGS if isinstance(where, NestCommands) else FLEET_METHOD_ARGS
        method = next((m for m in table if m.value == request.method), None)
        if method is None:
            scope = "a nest" if isinstance(where, NestCommands) else "the fleet"
            names = ", ".join(m.value for m in table)
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.UNKNOWN_METHOD,
                f"{request.method!r} is not a method of {scope}; methods: {names}",
                at=now,
            )
        if not may_call(sender.role, method):
            allowed = ", ".join(r.value for r in roles_for(method)) or "nobody"
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.FORBIDDEN,
                f"{sender.user}: role {sender.role.value} may not call {method.value} (allowed: {allowed})",
                at=now,
            )
        try:
            args: BaseModel = table[method].model_validate(request.args)
        except ValidationError as exc:
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.INVALID_ARGS,
                f"invalid arguments for {method.value}",
                _problems(exc, "args."),
                at=now,
            )
        if request.reply_to is None and sender.channel is not Channel.HTTP:
            # last, so that a request refused for another reason says that reason
            prefix = self.topics.replies(sender.user)
            return self._refuse_request(
                request,
                sender,
                nest_id,
                ErrorCode.NO_REPLY_ADDRESS,
                f"nowhere to answer: give reply_to under {prefix}/ (or, over MQTT 5, a Response "
                "Topic there); a command whose outcome nobody can hear is not run",
                at=now,
            )
        command = Command(
            id=request.id,
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=sender.user,
            actor_role=sender.role,
            issued_at_unix_s=issued_s,
            deadline_unix_s=deadline_s,
            received_at_unix_s=now,
            channel=sender.channel,
        )
        self._outcomes.put(request.id, None)  # pending: a repeat now is ignored, not executed
        return Execute(command, request.reply_to)

    def _repeat(self, command_id: str, reply_to: str | None) -> Decision:
        first = self.first(command_id)
        if first is None:
            return AwaitFirst(command_id, reply_to)  # answered once the first outcome exists
        return Repeat(first.model_copy(update={"repeated": True}), reply_to)

    def _refuse_request(
        self,
        request: Request,
        sender: Sender,
        nest_id: int | None,
        code: ErrorCode,
        message: str,
        reasons: list[str] | None = None,
        *,
        reply_to: str | None = None,
        at: float,
    ) -> Refuse:
        """``reply_to``: where to answer instead of the request's own (a reply_to that is not the
        sender's is never published to: the refusal goes to the sender's reply prefix)."""
        answer_to = reply_to if reply_to is not None else request.reply_to
        refusal = self._refuse(request.id, answer_to, nest_id, request.method, code, message, reasons, at=at)
        return Refuse(
            refusal.reply,
            refusal.reply_to,
            refusal.event,
            request,
            sender.user,
            sender.role.value,
            sender.channel.value,
        )

    def _refuse(
        self,
        command_id: str | None,
        reply_to: str | None,
        nest_id: int | None,
        method: str | None,
        code: ErrorCode,
        message: str,
        reasons: list[str] | None = None,
        *,
        at: float,
    ) -> Refuse:
        reply = Reply(
            id=command_id, ok=False, error=ErrorBody(code=code, message=message, reasons=reasons or [])
        )
        if command_id is not None:
            self._refused.put(command_id, reply)
        event = Event(
            kind=EventKind.COMMAND_REJECTED,
            at=_utc(at),
            nest_id=nest_id,
            message=f"command rejected ({code.value}): {message}",
            command_id=command_id,
            data={"code": code.value, "method": method, "reasons": reasons or []},
        )
        return Refuse(reply, reply_to, event)

    # --- incidents --------------------------------------------------------------------------

    def incident(self, payload: bytes, sender: Sender | None) -> IncidentAccepted | IncidentRejected:
        """An incident from ``sender`` (None: the topic's user is no user of ours)."""
        try:
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError("payload larger than 64 KiB")
            incident = Incident.model_validate_json(payload)
        except (ValidationError, ValueError, RecursionError) as exc:
            reasons = _problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
            return self._reject_incident(ErrorCode.MALFORMED, "not a valid incident", reasons)
        if sender is None:
            return self._reject_incident(ErrorCode.IDENTITY, "the sender is no user of this service")
        if not may_report_incident(sender.role):
            allowed = ", ".join(sorted(r.value for r in INCIDENT_REPORTERS))
            return self._reject_incident(
                ErrorCode.FORBIDDEN,
                f"{sender.user} ({sender.role.value}) may not report incidents (allowed: {allowed})",
            )
        if (incident.actor.id, incident.actor.role) != (sender.user, sender.role):
            return self._reject_incident(
                ErrorCode.IDENTITY,
                f"actor {incident.actor.id} ({incident.actor.role.value}) is not the sender: "
                f"you are {sender.user} ({sender.role.value})",
            )
        return IncidentAccepted(incident)

    def _reject_incident(
        self, code: ErrorCode, message: str, reasons: list[str] | None = None
    ) -> IncidentRejected:
        event = Event(
            kind=EventKind.COMMAND_REJECTED,
            at=_utc(self.clock()),
            message=f"incident rejected: {message}",
            data={"code": code.value, "reasons": reasons or []},
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
