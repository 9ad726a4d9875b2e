"""An independent plain MQTT client (paho-mqtt, its own network thread) playing the command center."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at_monotonic_s: float

    def json(self) -> Any:
        return json.loads(self.payload)


def request(
    method: str,
    args: dict[str, Any] | None = None,
    *,
    role: str | None = None,
    user: str = "cc",
    reply_to: str | None = None,
    ttl_s: float = 30.0,
    issued_at: datetime | None = None,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A request envelope. No ``actor`` unless ``role`` is given (then ``user`` with that role:
    the service refuses it unless that is the sender's role in the roles file)."""
    body: dict[str, Any] = {
        "id": command_id or uuid.uuid4().hex,
        "method": method,
        "args": args or {},
        "issued_at": (issued_at or datetime.now(UTC)).isoformat(),
        "ttl_s": ttl_s,
        "reply_to": reply_to,
    }
    if role is not None:
        body["actor"] = {"id": user, "role": role}
    return body


async def poll_until(condition: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "") -> None:
    """Wait for a condition (polled every 20 ms), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


class ConnectRefused(Exception):
    """The broker answered CONNECT with a failure (bad user name or password, not authorised)."""


class CommandCenter:
    def __init__(
        self, host: str, port: int, *, username: str | None = None, password: str | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"cc-{uuid.uuid4().hex[:8]}")
        if username is not None:
            self.client.username_pw_set(username, password)
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subacks: set[int] = set()
        self._granted: dict[int, list[int]] = {}
        self._connack: list[str] = []  # "ok" or the reason the broker gave
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: object, reason: Any, *rest: object
    ) -> None:
        with self._lock:
            self._connack.append("ok" if not reason.is_failure else str(reason))

    def _on_disconnect(self, client: paho.Client, userdata: object, *rest: object) -> None:
        with self._lock:
            if not self._connack:
                self._connack.append("disconnected before CONNACK")

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(
                Received(message.topic, bytes(message.payload), bool(message.retain), time.monotonic())
            )

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int, *rest: object) -> None:
        with self._lock:
            self._subacks.add(mid)
            codes = rest[0] if rest else []
            self._granted[mid] = [getattr(c, "value", c) for c in codes]  # type: ignore[attr-defined]

    async def connect(self) -> None:
        """Connect and wait for the CONNACK; ConnectRefused when the broker says no."""
        await asyncio.to_thread(self.client.connect, self.host, self.port, 30)
        self.client.loop_start()
        await self.wait_until(lambda: bool(self._connack), what="CONNACK")
        if self._connack[0] != "ok":
            self.client.loop_stop()
            raise ConnectRefused(self._connack[0])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    async def subscribe(self, topic_filter: str) -> list[int]:
        """Subscribe and wait for the SUBACK; the granted QoS (128: refused)."""
        _, mid = self.client.subscribe(topic_filter, qos=1)
        await self.wait_until(lambda: mid in self._subacks, what=f"SUBACK for {topic_filter}")
        return self._granted.get(mid, []) if mid is not None else []

    async def publish(
        self, topic: str, payload: dict[str, Any] | bytes | str, *, retain: bool = False
    ) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (off the event loop: the broker may share it)."""
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        info = self.client.publish(topic, data, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)

    def messages(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def payloads(self, topic: str) -> list[Any]:
        return [m.json() for m in self.messages(topic)]

    async def wait_until(
        self, condition: Callable[[], bool], *, timeout_s: float = 10.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await asyncio.sleep(0.02)

    async def wait_for(
        self, topic: str, match: Callable[[Any], bool] = lambda _: True, *, timeout_s: float = 10.0
    ) -> Any:
        """The first JSON payload on ``topic`` that matches."""
        found: list[Any] = []

        def check() -> bool:
            found[:] = [p for p in self.payloads(topic) if match(p)]
            return bool(found)

        await self.wait_until(check, timeout_s=timeout_s, what=f"a message on {topic}")
        return found[0]
