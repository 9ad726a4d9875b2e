"""The console's MQTT client (aiomqtt): the fleet from the retained state, and requests with replies.

    async with ConsoleClient(settings) as client:
        await client.wait_online(3.0)
        result = await client.run(Send("launch", 7, {...}), wait=True)

Subscriptions: ``{root}/status``, ``{root}/nests/+/state``, ``{root}/nests/+/telemetry``,
``{root}/events``, ``{root}/incidents/+`` and this session's replies,
``{root}/replies/{username}/{session}/#``. Every request carries ``reply_to`` =
``.../{session}/{request id}``; the reply and then the progress messages arrive there.
A connection loss ends the session (``closed`` is set) and fails the requests still waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from aiomqtt import Client, MqttError, TLSParameters
from pydantic import ValidationError

from dronectl.domain.errors import DronectlError
from dronectl.operations.models import (
    FLEET_METHOD_ARGS,
    NEST_METHOD_ARGS,
    TERMINAL_STATES,
    Actor,
    Method,
    Progress,
    Reply,
    Request,
    Role,
)
from dronectl.operations.topics import DEFAULT_ROOT, Topics
from dronectl.transports.console.commands import Send
from dronectl.transports.console.fleet import Feed, FleetModel
from dronectl.transports.console.outcome import CommandResult, ExitCode, exit_code_for
from dronectl.transports.console.parsing import UsageError
from dronectl.transports.mqtt.settings import parse_broker_url, redact_url

log = structlog.get_logger("dronectl.transports.console")

DEFAULT_TTL_S = 10.0
REPLY_TIMEOUT_S = 10.0
DONE_TIMEOUT_S = 600.0


class ConsoleConnectionError(DronectlError):
    """No broker, or the connection to it was lost."""


@dataclass(frozen=True)
class ClientSettings:
    """``user`` logs in to the broker with ``password`` and is who the service sees (the topics
    end in it). ``role``: the role the user expects to have; when given it goes in the envelope's
    ``actor`` and the service refuses the request if the roles file says otherwise."""

    user: str
    password: str | None = field(default=None, repr=False)
    role: Role | None = None
    broker: str = "mqtt://127.0.0.1:1883"
    root: str = DEFAULT_ROOT
    ca_file: str | None = None
    ttl_s: float = DEFAULT_TTL_S
    connect_timeout_s: float = 5.0

    @property
    def actor(self) -> Actor:
        """Who we are, for the console's own display and hints (role: the expected one, if any)."""
        return Actor(id=self.user, role=self.role or Role.OBSERVER)

    def who(self) -> str:
        return f"{self.user} ({self.role.value})" if self.role is not None else self.user


def _level(text: str) -> str:
    """A safe topic level (no wildcards, no slashes) from a user name or actor id."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:64] or "anonymous"


@dataclass(frozen=True)
class _Lost:
    reason: str


Incoming = Reply | Progress | _Lost


class ConsoleClient:
    def __init__(
        self,
        settings: ClientSettings,
        fleet: FleetModel | None = None,
        *,
        on_update: Callable[[Feed], None] | None = None,
        on_answer: Callable[[Reply | Progress], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.root)
        self.fleet = fleet if fleet is not None else FleetModel(self.topics)
        self.on_update = on_update
        self.on_answer = on_answer
        self.session = uuid.uuid4().hex[:12]
        self.reply_prefix = f"{self.topics.replies(settings.user)}/{self.session}"
        self.closed = asyncio.Event()
        self.lost_reason: str | None = None
        self._pending: dict[str, asyncio.Queue[Incoming]] = {}
        self._changed = asyncio.Condition()
        self._stack = contextlib.AsyncExitStack()
        self._client: Client | None = None
        self._reader: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def _make_client(self) -> Client:
        address = parse_broker_url(self.settings.broker)
        tls_params = None
        if address.tls:
            tls_params = TLSParameters(ca_certs=self.settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        return Client(
            address.host,
            address.port,
            username=self.settings.user,
            password=self.settings.password,
            identifier=f"dronectl-console-{_level(self.settings.user)}-{self.session}",
            clean_session=True,
            keepalive=15,
            timeout=self.settings.connect_timeout_s,
            tls_params=tls_params,
        )

    async def __aenter__(self) -> ConsoleClient:
        try:
            client = await self._stack.enter_async_context(self._make_client())
            for topic in (
                self.topics.status(),
                f"{self.topics.root}/nests/+/state",
                f"{self.topics.root}/nests/+/telemetry",
                self.topics.events(),
                self.topics.all_incidents(),
                f"{self.reply_prefix}/#",
            ):
                await client.subscribe(topic, qos=1)
        except (MqttError, ValueError) as exc:
            await self._stack.aclose()
            hint = ""
            if "authori" in str(exc).lower() or "password" in str(exc).lower():
                hint = f" (user {self.settings.user}: wrong password or no such user?)"
            where = redact_url(self.settings.broker)
            raise ConsoleConnectionError(f"cannot connect to {where}: {exc}{hint}") from exc
        self._client = client
        self._reader = asyncio.create_task(self._read(client), name="console.mqtt.read")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._client = None
        with contextlib.suppress(MqttError):
            await self._stack.aclose()

    async def _read(self, client: Client) -> None:
        try:
            async for message in client.messages:
                payload = (
                    message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                )
                await self._take(message.topic.value, payload)
        except MqttError as exc:
            self.lost_reason = f"connection to the broker lost: {exc}"
        else:
            self.lost_reason = "connection to the broker closed"
        finally:
            self.closed.set()
            for queue in self._pending.values():
                queue.put_nowait(_Lost(self.lost_reason or "connection closed"))
            async with self._changed:
                self._changed.notify_all()

    async def _take(self, topic: str, payload: bytes) -> None:
        if topic.startswith(self.reply_prefix + "/"):
            answer = _parse_answer(payload)
            if answer is None:
                return
            queue = self._pending.get(answer.id or "")
            if queue is not None:
                queue.put_nowait(answer)
            if self.on_answer is not None:
                self.on_answer(answer)
            return
        feed = self.fleet.apply(topic, payload)
        if feed is None:
            return
        if self.on_update is not None:
            self.on_update(feed)
        async with self._changed:
            self._changed.notify_all()

    # --- waiting for the fleet --------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """True once ``predicate`` holds (checked on every message); False after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: predicate() or self.closed.is_set())
        except TimeoutError:
            return False
        return predicate()

    async def wait_online(self, timeout_s: float) -> bool:
        """The service's retained status says online (and we have every nest's retained state)."""

        def ready() -> bool:
            status = self.fleet.status
            if status is None or status.state != "online":
                return False
            return all(self.fleet.state(n) is not None for n in status.nests)

        return await self.wait_until(ready, timeout_s)

    # --- requests ---------------------------------------------------------------------------

    def build_request(self, action: Send) -> Request:
        """The request envelope; the args are checked as the service will check them."""
        request_id = uuid.uuid4().hex
        known = NEST_METHOD_ARGS if action.nest_id is not None else FLEET_METHOD_ARGS
        if action.method in known:
            model = known[Method(action.method)]
            try:
                model.model_validate_json(json.dumps(dict(action.args)))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors()
                )
                raise UsageError(f"{action.method}: {problems}") from None
        return Request(
            id=request_id,
            method=str(action.method),
            args=dict(action.args),
            actor=Actor(id=self.settings.user, role=self.settings.role) if self.settings.role else None,
            issued_at=datetime.now(UTC),
            ttl_s=self.settings.ttl_s,
            reply_to=f"{self.reply_prefix}/{request_id}",
            client="console",  # the audit's channel: console (informational; the user is the login)
        )

    async def run(
        self,
        action: Send,
        *,
        wait: bool = False,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        done_timeout_s: float = DONE_TIMEOUT_S,
        on_progress: Callable[[CommandResult], None] | None = None,
    ) -> CommandResult:
        """Send ``action`` and collect its reply (and with ``wait``, its progress to the end)."""
        request = self.build_request(action)
        result = CommandResult(request.id, str(action.method), action.nest_id, action.summary)
        queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self._pending[request.id] = queue
        try:
            if self._client is None or self.closed.is_set():
                raise ConsoleConnectionError(self.lost_reason or "not connected")
            topic = (
                self.topics.nest_commands(action.nest_id, self.settings.user)
                if action.nest_id is not None
                else self.topics.commands(self.settings.user)
            )
            try:
                await self._client.publish(topic, request.model_dump_json(), qos=1)
            except MqttError as exc:
                raise ConsoleConnectionError(f"could not send: {exc}") from exc
            await self._collect(result, queue, wait, reply_timeout_s, done_timeout_s, on_progress)
        except ConsoleConnectionError as exc:
            result.local_error = str(exc)
            result.exit_code = ExitCode.NO_CONNECTION
        finally:
            del self._pending[request.id]
        return result

    async def _collect(
        self,
        result: CommandResult,
        queue: asyncio.Queue[Incoming],
        wait: bool,
        reply_timeout_s: float,
        done_timeout_s: float,
        on_progress: Callable[[CommandResult], None] | None,
    ) -> None:
        holder = self.fleet.holder(result.nest_id) if result.nest_id is not None else None
        me = self.settings.user
        deadline = asyncio.get_running_loop().time() + reply_timeout_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    item = await queue.get()
            except TimeoutError:
                if result.reply is None:
                    result.local_error = f"no reply within {reply_timeout_s:g} s (is the service online?)"
                else:
                    result.local_error = f"not finished within {done_timeout_s:g} s (state {result.state})"
                result.exit_code = ExitCode.TIMEOUT
                return
            if isinstance(item, _Lost):
                raise ConsoleConnectionError(item.reason)
            if isinstance(item, Reply):
                if result.reply is not None:
                    continue  # a repeated reply (QoS 1 redelivery)
                result.reply = item
                if not item.ok:
                    assert item.error is not None
                    result.exit_code = exit_code_for(item.error, holder, me)
                    return
                deadline = asyncio.get_running_loop().time() + done_timeout_s
            else:
                result.progress.append(item)
                if on_progress is not None:
                    on_progress(result)
            if result.reply is None:
                continue
            last = result.progress[-1] if result.progress else None
            if last is not None and last.state in TERMINAL_STATES:
                if last.error is not None:
                    result.exit_code = exit_code_for(last.error, holder, me)
                elif last.state.value != "succeeded":
                    result.exit_code = ExitCode.FAILED
                return
            if not wait:
                return


def _parse_answer(payload: bytes) -> Reply | Progress | None:
    try:
        data: Any = json.loads(payload)
        if not isinstance(data, dict):
            return None
        if data.get("kind") == "reply":
            return Reply.model_validate(data)
        if data.get("kind") == "progress":
            return Progress.model_validate(data)
    except (ValueError, ValidationError):
        log.warning("console.bad_answer", payload=payload[:200])
    return None
