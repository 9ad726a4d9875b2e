"""This instance's own status on MQTT, for several instances sharing one broker (issue 14).

``{root}/status`` says whether *the service* is up; with several instances each also publishes,
retained, ``{root}/instances/{id}/status``: online or offline, its version, the nests it holds
and whether it leads the automations. Its own connection (a client has one last will, and the
API's is ``{root}/status``): the will marks the instance offline when the broker loses it without
a DISCONNECT (kill -9, a machine or network lost: after 1.5 keep-alives at most); a clean stop
publishes offline itself first. Republished on every change of what it holds, and after every
reconnection; reconnects with back-off, like the API's connection.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiomqtt import Client, MqttError, Will

from dronectl.operations.models import InstanceStatus
from dronectl.operations.topics import Topics
from dronectl.transports.mqtt.mqtt import make_client
from dronectl.transports.mqtt.settings import MqttSettings

log = structlog.get_logger("dronectl.transports.mqtt.instance_status")


@dataclass(frozen=True, slots=True)
class Holding:
    """What the instance holds now: its nests, and whether it leads the automations."""

    nests: tuple[int, ...]
    leader: bool


class InstanceStatusPublisher:
    def __init__(
        self,
        settings: MqttSettings,
        instance_id: str,
        holding: Callable[[], Holding],
        *,
        version: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``holding``: read at each publication; call :meth:`changed` when it may have changed."""
        self.settings = settings
        self.instance_id = instance_id
        self.topic = Topics(settings.root).instance_status(instance_id)  # ValueError: not a topic level
        self.holding = holding
        self.version = version
        self.clock = clock
        self.client_id = f"dronectl-{instance_id}-status-{uuid.uuid4().hex[:8]}"[:64]
        self.connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._backoff_s = settings.reconnect_min_s

    def changed(self) -> None:
        """What the instance holds may have changed (a LeaseKeeper listener): publish it again."""
        self._changed.set()

    def _status(self, online: bool, at: datetime | None = None) -> InstanceStatus:
        if not online:  # the will (no time: nobody knows when it will be sent), or a goodbye
            return InstanceStatus(instance=self.instance_id, state="offline", at=at, version=self.version)
        now = self.holding()
        return InstanceStatus(
            instance=self.instance_id,
            state="online",
            at=datetime.fromtimestamp(self.clock(), tz=UTC),
            version=self.version,
            nests=sorted(now.nests),
            automations_leader=now.leader,
        )

    async def run(self) -> None:
        """Publish until cancelled; then say offline and disconnect cleanly."""
        address = self.settings.address()
        will = Will(self.topic, self._status(online=False).model_dump_json().encode(), qos=1, retain=True)
        while True:
            lost: str | None = None
            try:
                async with make_client(self.settings, self.client_id, will) as client:
                    try:
                        await self._session(client)
                    except asyncio.CancelledError:
                        await self._goodbye(client)
                        raise
            except* MqttError as group:
                lost = "; ".join(str(exc) for exc in group.exceptions)
            self.connected.clear()
            delay_s = self._backoff_s * random.uniform(0.8, 1.2)
            self._backoff_s = min(self._backoff_s * 2, self.settings.reconnect_max_s)
            log.warning(
                "mqtt.instance_status_disconnected",
                broker=f"{address.host}:{address.port}",
                error=lost,
                retry_in_s=delay_s,
            )
            await asyncio.sleep(delay_s)

    async def _session(self, client: Client) -> None:
        self._backoff_s = self.settings.reconnect_min_s
        async with asyncio.TaskGroup() as session:
            session.create_task(self._publishing(client), name="mqtt.instance_status")
            # nothing is subscribed: the iteration only ends, with MqttError, when the connection
            # is lost, which ends the session (the publishing would not notice while idle)
            async for _ in client.messages:
                pass

    async def _publishing(self, client: Client) -> None:
        last: InstanceStatus | None = None
        while True:
            self._changed.clear()
            status = self._status(online=True)
            if last is None or status.model_dump(exclude={"at"}) != last.model_dump(exclude={"at"}):
                await client.publish(self.topic, status.model_dump_json(), qos=1, retain=True)
                last = status
                self.connected.set()
                log.info(
                    "mqtt.instance_status",
                    topic=self.topic,
                    nests=status.nests,
                    automations_leader=status.automations_leader,
                )
            await self._changed.wait()

    async def _goodbye(self, client: Client) -> None:
        """A clean stop: the broker sends no will then, so say offline ourselves."""
        offline = self._status(online=False, at=datetime.fromtimestamp(self.clock(), tz=UTC))
        with suppress(MqttError, TimeoutError):
            async with asyncio.timeout(2.0):
                await client.publish(self.topic, offline.model_dump_json(), qos=1, retain=True)
