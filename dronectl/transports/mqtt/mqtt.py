"""The asyncio side of the MQTT API (aiomqtt): connect, reconnect, receive, publish.

One :class:`MqttApi` per service. :meth:`MqttApi.run` owns a TaskGroup that outlives broker
connections: commands keep running (and the drones keep flying) while the broker is away.
Per connection it

- connects with a retained last will (``status`` = offline) and publishes ``status`` = online;
- keeps a persistent session (clean session off, a client id stable for the instance, QoS 1
  subscriptions): commands published while the service was away are kept by the broker and
  delivered on reconnection, then judged by their expiry like any other;
- subscribes to the command and incident topics, and re-checks the topic of every message
  against those filters before anything else (a broker that sends more must not confuse us);
- republishes every nest's retained state, then state on change, events as they come, and
  telemetry at the configured rates (sampled when sent: nothing is queued while offline);
- on loss, reconnects with exponential back-off and jitter, capped at ``reconnect_max_s``.

Receiving is split in two so a flood costs no command. The reader only stamps each message with
the time it was read and queues it in the bounded :class:`~.backlog.Backlog` (per sender and
overall; what overflows is refused in bulk). The decider takes messages from it one sender after
another and has the pure :class:`~dronectl.operations.requests.Dispatcher` judge each against its
receive time (expired, issued in the future); retained command messages are never executed.
Refusals are recorded in bursts by the gateway, and their replies and events go out through a
bounded outbox of their own: nothing a refusal costs in I/O waits in front of the next message.
A copy of a command whose first outcome is pending is answered once it exists.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import structlog
from aiomqtt import Client, Message, MqttError, ProtocolVersion, TLSParameters, Will
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel

from dronectl.domain.roles import Channel, Role
from dronectl.operations.gateway import CommandGateway, RefusalNotRecordedError
from dronectl.operations.models import (
    AIRBORNE_PHASES,
    MAX_TTL_S,
    ControllerStatus,
    ErrorBody,
    ErrorCode,
    Event,
    EventKind,
    NestState,
    Progress,
    Reply,
)
from dronectl.operations.port import YIELD_EVERY_NESTS, Command, Controller
from dronectl.operations.requests import (
    AwaitFirst,
    Delivery,
    Execute,
    Ignore,
    IncidentAccepted,
    OutcomeStore,
    Refuse,
    Repeat,
    Sender,
)
from dronectl.operations.topics import Incidents, Topics
from dronectl.transports.mqtt.backlog import Backlog, Received
from dronectl.transports.mqtt.settings import MqttSettings

log = structlog.get_logger("dronectl.transports.mqtt.mqtt")

_TELEMETRY_TICK_MAX_S = 0.25
OUTBOX_SIZE = 2048  # refusal replies and events waiting to be published (oldest dropped beyond)
REFUSAL_REPLIES_PER_S = 20  # per sender, for refusals counted in a burst (the burst's event says the rest)
MAX_WAITING_COPIES = 1024  # copies of pending commands waiting for their first outcome
FIRST_OUTCOME_WAIT_S = 30.0  # how long a copy waits for its command's first outcome
KEPT_PER_NEST = 256  # requests kept per nest another instance holds (docs/deployment.md)


def _no_delay(client: Client) -> None:
    """Send small MQTT packets at once (TCP_NODELAY): paho leaves Nagle on, and a command or reply
    queued behind an unacknowledged PUBACK then waits for the peer's delayed ACK (tens of ms)."""
    paho_client = getattr(client, "_client", None)  # aiomqtt's paho client; no public accessor
    sock = paho_client.socket() if paho_client is not None else None
    if isinstance(sock, socket.socket):
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop.

    On Python 3.11, ``asyncio.wait_for`` (which aiomqtt's ``publish`` awaits) swallows a
    cancellation that races with the completion of the future it waits for (CPython gh-86296,
    fixed in 3.12 by ``asyncio.timeout``): the task carries on with ``cancelling() == 1`` and a loop
    that publishes would never end, so a TaskGroup waiting for it (and the service's shutdown)
    would hang. The publishing loops of the session's and the service's child tasks call this
    after their awaits (not the connection loop's own task: a TaskGroup whose child failed leaves
    a cancellation count on its parent in 3.11, and the connection loop reconnects after that)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _Intake(asyncio.Queue[Message]):
    """aiomqtt's queue of incoming messages, replaced: paho's callback hands each message straight
    to :meth:`MqttApi._take_in` (stamped with the time it was read, queued in the backlog). A
    message waiting in aiomqtt's own queue would cost a task per message to take out, and its
    receive time would be when it was taken out, not when it was read."""

    def __init__(self, api: MqttApi, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._api = api

    def put_nowait(self, item: Message) -> None:
        try:
            self._api._take_in(item)
        except Exception:  # raised into paho's read, it would end the connection; logged
            log.exception("mqtt.take_in_failed", topic=str(item.topic))


def _payload_bytes(message: Message) -> bytes:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return str(payload if payload is not None else "").encode()


def _delivery(message: Message) -> tuple[Delivery | None, bytes | None]:
    """An MQTT 5 message's Response Topic and expiry (for the request), and its Correlation Data
    (given back on the answers). User properties are not read: they name no one."""
    props = message.properties
    if props is None:
        return None, None
    response_topic = getattr(props, "ResponseTopic", None)
    expiry = getattr(props, "MessageExpiryInterval", None)
    correlation = getattr(props, "CorrelationData", None)
    delivery = None
    if response_topic is not None or expiry is not None:
        delivery = Delivery(
            response_topic=str(response_topic) if response_topic is not None else None,
            expiry_s=float(expiry) if expiry is not None else None,
        )
    return delivery, bytes(correlation) if correlation is not None else None


def _answer_properties(correlation: bytes | None) -> Properties | None:
    if correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = correlation
    return props


def make_client(
    settings: MqttSettings,
    identifier: str,
    will: Will,
    *,
    clean_session: bool = True,
    queue_type: type[asyncio.Queue[Message]] | None = None,
) -> Client:
    """A client of the configured broker (address, credentials, TLS) with ``will`` as its last will.
    ``clean_session`` False: a persistent session (the broker keeps QoS 1 messages while it is away);
    ``queue_type``: where aiomqtt puts what it reads (default: its own queue)."""
    address = settings.address()
    tls_params: TLSParameters | None = None
    tls = settings.tls
    if address.tls or tls is not None:
        tls_params = TLSParameters(
            ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
            certfile=str(tls.cert_file) if tls and tls.cert_file else None,
            keyfile=str(tls.key_file) if tls and tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    username, password = settings.credentials()
    version: dict[str, Any] = {"clean_session": clean_session}
    if settings.protocol == "5":  # a session kept for session_expiry_s instead of clean session off
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = 0 if clean_session else settings.session_expiry_s
        version = {"protocol": ProtocolVersion.V5, "clean_start": clean_session, "properties": connect}
    return Client(
        address.host,
        address.port,
        username=username,
        password=password,
        identifier=identifier,
        will=will,
        keepalive=settings.keepalive_s,
        **version,
        timeout=5.0,
        queue_type=queue_type,
        tls_params=tls_params,
        tls_insecure=tls.insecure if tls is not None else None,
    )


class MqttApi:
    def __init__(
        self,
        settings: MqttSettings,
        controller: Controller,
        *,
        clock: Callable[[], float] = time.time,
        outcomes: OutcomeStore | None = None,
        version: str | None = None,
        gateway: CommandGateway | None = None,
        role_of: Callable[[str], Role | None] | None = None,
    ) -> None:
        """``gateway``: the command path shared with other transports (HTTP); by default one of
        its own over ``controller``, ``clock`` and ``outcomes``. ``role_of``: a user's role from
        the roles file (None: no such user, or no role); without it every request is refused."""
        self.settings = settings
        self.controller = controller
        self.clock = clock
        self.version = version
        self.topics = Topics(settings.root)
        self.nest_ids = tuple(controller.nest_ids())
        self.gateway = gateway or CommandGateway(
            controller, self.topics, clock=clock, outcomes=outcomes, dedupe_memory=settings.dedupe_memory
        )
        if self.gateway.topics != self.topics:
            raise ValueError("the gateway's topic root differs from the MQTT settings' root")
        self.gateway.event_sinks.append(self._publish_event)
        self.gateway.snapshot_sinks.append(self._publish_snapshot)
        self.outcomes = self.gateway.outcomes
        self.dispatcher = self.gateway.dispatcher
        self.role_of = role_of or (lambda _user: None)
        self.client_id = settings.client_id or f"dronectl-{uuid.uuid4().hex[:12]}"
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (for status and tests)
        self._client: Client | None = None
        self._published_state: dict[int, dict[str, object]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._backoff_s = settings.reconnect_min_s
        self.backlog = Backlog(per_sender=settings.backlog_per_sender, total=settings.backlog_total)
        self._backlog_ready = asyncio.Event()
        self._outbox: deque[Callable[[], Awaitable[object]]] = deque()
        self._outbox_ready = asyncio.Event()
        self.outbox_dropped = 0  # refusal replies and events dropped because the outbox was full
        self.replies_limited = 0  # refusal replies not sent: over REFUSAL_REPLIES_PER_S for a sender
        self._reply_budget: dict[str, tuple[int, int]] = {}  # sender -> (second, replies in it)
        self.received = 0  # command and incident messages read (for tests and the bench)
        self.decided = 0  # of which decided
        self._waiting_copies = 0
        self._subscribed = self.topics.subscriptions()
        # several instances: requests for a nest another instance (or none, during a takeover)
        # holds, kept until this one gains it or they could no longer run (MAX_TTL_S)
        self._kept: dict[int, deque[Received]] = {}
        self.gateway.gained_sinks.append(self._nest_gained)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled; on cancellation say offline and disconnect cleanly."""
        await self.gateway.load_recent()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(self._follow_controller(), name="mqtt.updates")
            tasks.create_task(self._decide_loop(), name="mqtt.decide")
            tasks.create_task(self._outbox_loop(), name="mqtt.outbox")
            tasks.create_task(self.gateway.run_bursts(), name="mqtt.refusal_bursts")
            await self._connection_loop()

    def _make_client(self) -> Client:
        offline = ControllerStatus(state="offline", version=self.version, nests=list(self.nest_ids))
        will = Will(self.topics.status(), offline.model_dump_json().encode(), qos=1, retain=True)
        return make_client(
            self.settings,
            self.client_id,
            will,
            clean_session=not self.settings.persistent_session,
            queue_type=cast("type[asyncio.Queue[Message]]", partial(_Intake, self)),
        )

    async def _connection_loop(self) -> None:
        address = self.settings.address()
        while True:
            lost: str | None = None
            try:
                async with self._make_client() as client:
                    try:
                        await self._session(client)
                    except asyncio.CancelledError:
                        await self._goodbye(client)
                        raise
            except* MqttError as group:
                lost = "; ".join(str(exc) for exc in group.exceptions)
            self._client = None
            self.connected.clear()
            delay_s = min(self._backoff_s * random.uniform(0.8, 1.2), self.settings.reconnect_max_s)
            self._backoff_s = min(self._backoff_s * 2, self.settings.reconnect_max_s)
            log.warning(
                "mqtt.disconnected", broker=f"{address.host}:{address.port}", error=lost, retry_in_s=delay_s
            )
            await asyncio.sleep(delay_s)

    async def _session(self, client: Client) -> None:
        _no_delay(client)
        online = ControllerStatus(
            state="online", at=_utc_now(self.clock), version=self.version, nests=list(self.nest_ids)
        )
        await client.publish(self.topics.status(), online.model_dump_json(), qos=1, retain=True)
        for topic_filter in self.topics.subscriptions():
            await client.subscribe(topic_filter, qos=1)
        self._client = client
        self._published_state.clear()
        for nest_id in self.nest_ids:  # retained state, fresh after every (re)connection
            await self._publish_state(self.controller.snapshot(nest_id))
        self.connections += 1
        self._backoff_s = self.settings.reconnect_min_s
        self.connected.set()
        log.info(
            "mqtt.connected", client_id=self.client_id, root=self.topics.root, connections=self.connections
        )
        async with asyncio.TaskGroup() as session:
            session.create_task(self._telemetry_loop(client), name="mqtt.telemetry")
            session.create_task(self._receive(client), name="mqtt.receive")

    async def _goodbye(self, client: Client) -> None:
        """A clean shutdown: the last will is not sent then, so say offline ourselves."""
        offline = ControllerStatus(state="offline", at=_utc_now(self.clock), version=self.version)
        with suppress(MqttError, TimeoutError):
            async with asyncio.timeout(2.0):
                await client.publish(self.topics.status(), offline.model_dump_json(), qos=1, retain=True)

    # --- incoming ---------------------------------------------------------------------------

    async def _receive(self, client: Client) -> None:
        """Until the connection is lost (aiomqtt raises MqttError then). Messages never wait in
        aiomqtt's queue: :class:`_Intake` takes each in as paho hands it over (:meth:`_take_in`)."""
        async for message in client.messages:  # only if a message got past the intake
            self._take_in(message)
            _stop_if_cancelled()

    def _take_in(self, message: Message) -> None:
        """Stamp, check the topic, queue in the backlog: nothing here waits, nothing is decided."""
        received_at = self.clock()
        topic = message.topic.value
        if not any(message.topic.matches(topic_filter) for topic_filter in self._subscribed):
            log.warning("mqtt.unexpected_topic", topic=topic)
            return
        self.received += 1
        delivery, correlation = _delivery(message)
        item = Received(
            topic,
            _payload_bytes(message),
            message.retain,
            received_at,
            self.topics.sender(topic) or "",
            delivery,
            correlation,
        )
        dropped = self.backlog.put(item)
        if dropped is not None:
            self._refuse_unread(dropped)
        self._backlog_ready.set()

    def _refuse_unread(self, item: Received) -> None:
        self.decided += 1
        sender = self._sender(item.topic)
        role = sender.role.value if sender is not None else "unknown"
        self.gateway.refuse_unread(
            item.sender or "unknown", role, Channel.MQTT.value, item.received_at_unix_s
        )

    async def _decide_loop(self) -> None:
        """Decide what the reader queued, one sender after another; outlives connections."""
        while True:
            # answers need a connection: what was read waits for it (judged at its receive time
            # still); a persistent session's messages come before the session is set up
            await self.connected.wait()
            item = self.backlog.take()
            if item is None:
                self._backlog_ready.clear()
                await self._backlog_ready.wait()
                continue
            try:
                await self._handle(
                    item.topic,
                    item.payload,
                    retained=item.retained,
                    received_at=item.received_at_unix_s,
                    delivery=item.delivery,
                    correlation=item.correlation,
                    kept=item.kept,
                )
            except Exception:  # one bad message, a bug or an audit write error: logged, never silent
                log.exception("mqtt.handle_failed", topic=item.topic)
            finally:
                self.decided += 1
            await asyncio.sleep(0)  # let the reader read
            _stop_if_cancelled()

    def _later(self, send: Callable[[], Awaitable[object]]) -> None:
        """Publish from the outbox (refusals' replies and events): bounded, oldest dropped."""
        self._outbox.append(send)
        if len(self._outbox) > OUTBOX_SIZE:
            self._outbox.popleft()
            self.outbox_dropped += 1
            if self.outbox_dropped % 1000 == 1:
                log.warning("mqtt.outbox_full", dropped=self.outbox_dropped)
        self._outbox_ready.set()

    async def _outbox_loop(self) -> None:
        while True:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            send = self._outbox.popleft()
            try:
                await send()
            except Exception:  # a publishing bug must not stop the outbox; logged
                log.exception("mqtt.outbox_failed")
            _stop_if_cancelled()

    def _sender(self, topic: str) -> Sender | None:
        """The topic's last level is the user the broker authenticated (its ACL lets a user write
        only under its own name); the role is that user's in the roles file."""
        user = self.topics.sender(topic)
        role = self.role_of(user) if user is not None else None
        return Sender(user, role, Channel.MQTT) if user is not None and role is not None else None

    async def _handle(
        self,
        topic: str,
        payload: bytes,
        *,
        retained: bool,
        received_at: float | None = None,
        delivery: Delivery | None = None,
        correlation: bytes | None = None,
        kept: bool = False,
    ) -> None:
        """``delivery``, ``correlation``: an MQTT 5 message's properties (Response Topic, expiry;
        Correlation Data, on every answer to it). ``kept``: a request kept while another instance
        held its nest, decided now that this one does (left alone if that one took it)."""
        if kept:
            command_id = self.dispatcher.request_id(payload)
            if command_id is not None and await self.gateway.answered_elsewhere(command_id):
                log.info("mqtt.kept_taken_elsewhere", topic=topic, id=command_id)
                return
        sender = self._sender(topic)
        if isinstance(self.topics.parse(topic, self.nest_ids), Incidents):
            if retained:
                return  # an old incident replayed by the broker is not a new report
            result = self.dispatcher.incident(payload, sender)
            if isinstance(result, IncidentAccepted):
                self.controller.report_incident(result.incident)
            else:
                log.info("mqtt.incident_refused", topic=topic, error=result.event.message)
                self._later(partial(self._publish_event, result.event))
            return
        try:
            decision = await self.gateway.decide(
                topic, payload, sender, retained=retained, received_at_unix_s=received_at, delivery=delivery
            )  # audited there
        except RefusalNotRecordedError as exc:  # logged with its cause; the sender still answered
            log.error("mqtt.refusal_not_recorded", topic=topic, id=exc.decision.reply.id, exc_info=exc)
            decision = exc.decision
        if isinstance(decision, Ignore):
            log.info("mqtt.ignored", topic=topic, reason=decision.reason)
            if decision.nest_elsewhere is not None and not retained:
                item = Received(
                    topic, payload, retained, received_at or self.clock(), "", delivery, correlation
                )
                self._keep(decision.nest_elsewhere, item)
        elif isinstance(decision, Refuse):
            if decision.alone:  # the rest of a burst: one log line and one event when it ends
                log.info("mqtt.refused", topic=topic, id=decision.reply.id, error=decision.event.message)
                self._later(partial(self.gateway.announce, decision.event))  # here and on every transport
            if decision.reply_to is not None and (decision.alone or self._may_answer(decision.user or "")):
                answer = partial(
                    self._publish, decision.reply_to, decision.reply, qos=1, correlation=correlation
                )
                self._later(answer)
        elif isinstance(decision, Repeat):
            log.info("mqtt.repeated", topic=topic, id=decision.reply.id)
            if decision.reply_to is not None:
                answer = partial(
                    self._publish, decision.reply_to, decision.reply, qos=1, correlation=correlation
                )
                self._later(answer)
        elif isinstance(decision, AwaitFirst):
            self._answer_copy(decision, correlation)
        elif isinstance(decision, Execute):
            assert self._tasks is not None
            self._tasks.create_task(
                self._execute(decision.command, decision.reply_to, correlation),
                name=f"mqtt.command[{decision.command.id}]",
            )

    def _keep(self, nest_id: int, item: Received) -> None:
        """Keep a request for a nest another instance holds: if that instance dies before it
        answers, this one may gain the nest and must not have lost the request (bounded: the
        oldest go first; none older than the longest ttl)."""
        if self.dispatcher.request_id(item.payload) is None:
            return  # no id to tell whether the holder answered it: it could only be refused twice
        kept = self._kept.setdefault(nest_id, deque(maxlen=KEPT_PER_NEST))
        oldest = self.clock() - MAX_TTL_S - self.dispatcher.max_future_skew_s
        while kept and kept[0].received_at_unix_s < oldest:
            kept.popleft()
        kept.append(item)

    def _nest_gained(self, nest_id: int) -> None:
        """This instance holds ``nest_id`` now: the requests kept for it are decided as if read
        now (expired ones refused as such), each left alone if the last holder took it."""
        kept = self._kept.pop(nest_id, None)
        if not kept:
            return
        now = self.clock()
        oldest = now - MAX_TTL_S - self.dispatcher.max_future_skew_s
        again = [item for item in kept if item.received_at_unix_s >= oldest]
        log.info("mqtt.kept_requests", nest=nest_id, count=len(again))
        for item in again:
            sender = self.topics.sender(item.topic) or ""
            delivery = item.delivery
            if delivery is not None and delivery.expiry_s is not None:  # what is left of it now
                waited_s = now - item.received_at_unix_s
                delivery = replace(delivery, expiry_s=delivery.expiry_s - waited_s)
            dropped = self.backlog.put(
                Received(item.topic, item.payload, False, now, sender, delivery, item.correlation, kept=True)
            )
            if dropped is not None:
                self._refuse_unread(dropped)
        self._backlog_ready.set()

    def _may_answer(self, user: str) -> bool:
        """Whether a refusal counted in a burst is answered: up to REFUSAL_REPLIES_PER_S a second
        per sender. A flood is not answered message by message (each answer costs a publish and
        its acknowledgement): the burst's event, on ``events``, says how many were refused."""
        second = int(time.monotonic())
        start, used = self._reply_budget.get(user, (second, 0))
        if start != second:
            start, used = second, 0
        if used >= REFUSAL_REPLIES_PER_S:
            self.replies_limited += 1
            return False
        self._reply_budget[user] = (start, used + 1)
        if len(self._reply_budget) > 10_000:  # senders of past seconds, forgotten
            self._reply_budget = {u: b for u, b in self._reply_budget.items() if b[0] == second}
        return True

    def _answer_copy(self, copy: AwaitFirst, correlation: bytes | None = None) -> None:
        """A copy of a command still waiting for its first outcome: answered once that exists."""
        log.info("mqtt.repeated", id=copy.command_id, pending=True)
        reply_to = copy.reply_to
        if reply_to is None:
            return  # nowhere to answer
        if self._waiting_copies >= MAX_WAITING_COPIES:
            message = f"{self._waiting_copies} copies already wait for a first answer; ask again shortly"
            busy = Reply(
                id=copy.command_id,
                ok=False,
                error=ErrorBody(code=ErrorCode.BUSY, message=message),
                repeated=True,
            )
            self._later(partial(self._publish, reply_to, busy, qos=1, correlation=correlation))
            return
        assert self._tasks is not None
        self._waiting_copies += 1
        self._tasks.create_task(
            self._answer_when_first(copy.command_id, reply_to, correlation),
            name=f"mqtt.copy[{copy.command_id}]",
        )

    async def _answer_when_first(self, command_id: str, reply_to: str, correlation: bytes | None) -> None:
        try:
            async with asyncio.timeout(FIRST_OUTCOME_WAIT_S):
                first = await self.gateway.first_outcome_of(command_id)
            answer = first.model_copy(update={"repeated": True})
        except TimeoutError:
            message = f"no first answer after {FIRST_OUTCOME_WAIT_S:g} s; the command may still run"
            answer = Reply(
                id=command_id,
                ok=False,
                error=ErrorBody(code=ErrorCode.TIMEOUT, message=message),
                repeated=True,
            )
        finally:
            self._waiting_copies -= 1
        await self._publish(reply_to, answer, qos=1, correlation=correlation)

    async def _execute(
        self, command: Command, reply_to: str | None, correlation: bytes | None = None
    ) -> None:
        """Relay the controller's updates to ``reply_to``: the first as the Reply, then Progress
        (each with the request's MQTT 5 Correlation Data, if it had any)."""

        async def send(answer: Reply | Progress) -> None:
            if reply_to is not None:
                await self._publish(reply_to, answer, qos=1, correlation=correlation)

        await self.gateway.execute(command, send, send)

    # --- outgoing ---------------------------------------------------------------------------

    async def _publish(
        self,
        topic: str,
        model: BaseModel,
        *,
        qos: int,
        retain: bool = False,
        correlation: bytes | None = None,
    ) -> bool:
        """Publish if connected; while offline the message is dropped (never queued for later).
        ``correlation``: MQTT 5 Correlation Data of the request answered."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(
                topic,
                model.model_dump_json(),
                qos=qos,
                retain=retain,
                properties=_answer_properties(correlation),
            )
        except MqttError as exc:
            log.info("mqtt.publish_dropped", topic=topic, error=str(exc))
            return False
        return True

    async def _publish_state(self, state: NestState) -> None:
        comparable = state.model_dump(exclude={"at"})
        if self._published_state.get(state.nest_id) == comparable:
            return
        if await self._publish(self.topics.nest_state(state.nest_id), state, qos=1, retain=True):
            self._published_state[state.nest_id] = comparable

    async def _publish_snapshot(self, nest_id: int, snapshot_id: str, jpeg: bytes) -> None:
        """A detection's picture as raw JPEG bytes (QoS 1, not retained); dropped while offline."""
        client = self._client
        topic = self.topics.nest_snapshot(nest_id, snapshot_id)
        if client is None:
            return
        try:
            await client.publish(topic, jpeg, qos=1)
        except MqttError as exc:
            log.info("mqtt.publish_dropped", topic=topic, error=str(exc))

    async def _publish_event(self, event: Event) -> None:
        stretch_id = event.data.get("stretch_id")
        if event.kind is EventKind.CONGESTION and isinstance(stretch_id, str):
            await self._publish(self.topics.traffic(stretch_id), event, qos=1, retain=True)
        if event.nest_id is not None:
            await self._publish(self.topics.nest_events(event.nest_id), event, qos=1)
        await self._publish(self.topics.events(), event, qos=1)

    async def _follow_controller(self) -> None:
        async for item in self.controller.updates():
            if isinstance(item, NestState):
                await self._publish_state(item)
            else:
                await self._publish_event(item)
            _stop_if_cancelled()

    async def _telemetry_loop(self, client: Client) -> None:
        airborne_s = 1.0 / self.settings.telemetry_airborne_hz
        docked_s = 1.0 / self.settings.telemetry_docked_hz
        tick_s = min(_TELEMETRY_TICK_MAX_S, airborne_s / 2, docked_s / 2)
        last_sent: dict[int, float] = {}
        while True:
            now = time.monotonic()
            for i, nest_id in enumerate(self.nest_ids, 1):
                if i % YIELD_EVERY_NESTS == 0:
                    await asyncio.sleep(0)  # hundreds of nests: let the loop in between
                airborne = self.controller.snapshot(nest_id).phase in AIRBORNE_PHASES
                interval_s = airborne_s if airborne else docked_s
                if now - last_sent.get(nest_id, -interval_s) < interval_s:
                    continue
                sample = self.controller.telemetry(nest_id)
                if sample is None or self.clock() - sample.at.timestamp() > self.settings.telemetry_max_age_s:
                    continue  # nothing current to say; a stale sample is dropped, not sent late
                await client.publish(self.topics.nest_telemetry(nest_id), sample.model_dump_json(), qos=0)
                _stop_if_cancelled()
                last_sent[nest_id] = now
            await asyncio.sleep(tick_s)


def _utc_now(clock: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock(), tz=UTC)
