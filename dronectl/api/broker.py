"""The embedded broker: amqtt (pure Python, maintained) in-process, used when no broker is configured.

    async with EmbeddedBroker("127.0.0.1", 1883) as broker:
        ...  # clients connect to broker.url

It binds to loopback by default and allows anonymous clients (it is the single-machine default;
a deployment points ``--broker`` at Mosquitto or EMQX with the ACL file and TLS).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import structlog
from amqtt.broker import Broker  # type: ignore[import-untyped]  # amqtt ships no type information

log = structlog.get_logger("dronectl.api.broker")


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    async def start(self) -> None:
        if self._broker is not None:
            raise RuntimeError("the embedded broker is already running")
        broker = Broker(self._config())
        await broker.start()
        self._broker = broker
        log.info("broker.embedded.started", url=self.url)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
            log.info("broker.embedded.stopped", url=self.url)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
