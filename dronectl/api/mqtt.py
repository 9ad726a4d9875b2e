"""The asyncio side of the MQTT API (aiomqtt): connect, reconnect, receive, publish.

One :class:`MqttApi` per service. :meth:`MqttApi.run` owns a TaskGroup that outlives broker
connections: commands keep running (and the drones keep flying) while the broker is away.
Per connection it

- connects with a retained last will (``status`` = offline) and publishes ``status`` = online;
- subscribes to the command and incident topics, and re-checks the topic of every message
  against those filters before anything else (a broker that sends more must not confuse us);
- republishes every nest's retained state, then state on change, events as they come, and
  telemetry at the configured rates (sampled when sent: nothing is queued while offline);
- on loss, reconnects with exponential back-off and jitter.

Commands are decided by the pure :class:`~dronectl.api.dispatch.Dispatcher`; retained command
messages are never executed, and expired ones are refused (nothing sent during an outage runs late).
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

import structlog
from aiomqtt import Client, Message, MqttError, TLSParameters, Will
from pydantic import BaseModel

from dronectl.api.controller import Command, Controller
from dronectl.api.dispatch import Execute, Ignore, IncidentAccepted, OutcomeStore, Refuse, Repeat
from dronectl.api.gateway import CommandGateway
from dronectl.api.models import (
    AIRBORNE_PHASES,
    ControllerStatus,
    Event,
    EventKind,
    NestState,
    Progress,
    Reply,
)
from dronectl.api.settings import MqttSettings
from dronectl.api.topics import Incidents, Topics, matches

log = structlog.get_logger("dronectl.api.mqtt")

_TELEMETRY_TICK_MAX_S = 0.25


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


def _payload_bytes(message: Message) -> bytes:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return str(payload if payload is not None else "").encode()


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
    ) -> None:
        """``gateway``: the command path shared with other transports (HTTP); by default one of
        its own over ``controller``, ``clock`` and ``outcomes``."""
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
        self.client_id = settings.client_id or f"dronectl-{uuid.uuid4().hex[:12]}"
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (for status and tests)
        self._client: Client | None = None
        self._published_state: dict[int, dict[str, object]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._backoff_s = settings.reconnect_min_s

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled; on cancellation say offline and disconnect cleanly."""
        await self.gateway.load_recent()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(self._follow_controller(), name="mqtt.updates")
            await self._connection_loop()

    def _make_client(self) -> Client:
        address = self.settings.address()
        tls_params: TLSParameters | None = None
        tls = self.settings.tls
        if address.tls or tls is not None:
            tls_params = TLSParameters(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(tls.key_file) if tls and tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        offline = ControllerStatus(state="offline", version=self.version, nests=list(self.nest_ids))
        return Client(
            address.host,
            address.port,
            username=self.settings.username,
            password=self.settings.password.get_secret_value() if self.settings.password else None,
            identifier=self.client_id,
            will=Will(self.topics.status(), offline.model_dump_json().encode(), qos=1, retain=True),
            clean_session=True,
            keepalive=self.settings.keepalive_s,
            timeout=5.0,
            tls_params=tls_params,
            tls_insecure=tls.insecure if tls is not None else None,
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
            delay_s = self._backoff_s * random.uniform(0.8, 1.2)
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
        subscribed = self.topics.subscriptions()
        async for message in client.messages:
            topic = message.topic.value
            if not any(matches(topic, topic_filter) for topic_filter in subscribed):
                log.warning("mqtt.unexpected_topic", topic=topic)
                continue
            try:
                await self._handle(topic, _payload_bytes(message), retained=message.retain)
            except Exception:  # one bad message (or a bug) must not stop the API; logged
                log.exception("mqtt.handle_failed", topic=topic)
            _stop_if_cancelled()

    async def _handle(self, topic: str, payload: bytes, *, retained: bool) -> None:
        if isinstance(self.topics.parse(topic, self.nest_ids), Incidents):
            if retained:
                return  # an old incident replayed by the broker is not a new report
            result = self.dispatcher.incident(payload)
            if isinstance(result, IncidentAccepted):
                self.controller.report_incident(result.incident)
            else:
                await self._publish_event(result.event)
            return
        decision = await self.gateway.decide(topic, payload, retained=retained)  # refusals audited there
        if isinstance(decision, Ignore):
            log.info("mqtt.ignored", topic=topic, reason=decision.reason)
        elif isinstance(decision, Refuse):
            log.info("mqtt.refused", topic=topic, id=decision.reply.id, error=decision.event.message)
            if decision.reply_to is not None:
                await self._publish(decision.reply_to, decision.reply, qos=1)
            await self.gateway.announce(decision.event)  # here and on every other transport
        elif isinstance(decision, Repeat):
            log.info("mqtt.repeated", topic=topic, id=decision.reply.id)
            if decision.reply_to is not None:
                await self._publish(decision.reply_to, decision.reply, qos=1)
        elif isinstance(decision, Execute):
            assert self._tasks is not None
            self._tasks.create_task(
                self._execute(decision.command, decision.reply_to),
                name=f"mqtt.command[{decision.command.id}]",
            )

    async def _execute(self, command: Command, reply_to: str | None) -> None:
        """Relay the controller's updates to ``reply_to``: the first as the Reply, then Progress."""

        async def send(answer: Reply | Progress) -> None:
            if reply_to is not None:
                await self._publish(reply_to, answer, qos=1)

        await self.gateway.execute(command, send, send)

    # --- outgoing ---------------------------------------------------------------------------

    async def _publish(self, topic: str, model: BaseModel, *, qos: int, retain: bool = False) -> bool:
        """Publish if connected; while offline the message is dropped (never queued for later)."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, model.model_dump_json(), qos=qos, retain=retain)
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
            for nest_id in self.nest_ids:
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
