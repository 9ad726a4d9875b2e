"""The embedded broker: amqtt (pure Python, maintained) in-process, used when no broker is configured.

    async with EmbeddedBroker("127.0.0.1", 1883, users_file=Path("var/users")) as broker:
        ...  # clients connect to broker.url with a user name and password

No anonymous clients: logins are checked against the users file (the ``mosquitto_passwd`` file of
``dronectl users``) and every publish and subscription against the same ACL a Mosquitto gets
(``broker_auth.py``). It binds to loopback by default; with ``tls`` it also listens with TLS
(``dronectl certs`` makes a certificate for a test install); plain TCP beyond loopback gets a
warning.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from amqtt.broker import Broker  # type: ignore[import-untyped]  # amqtt ships no type information

from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.topics import DEFAULT_ROOT
from dronectl.transports.mqtt.broker_auth import OwnTopicsAcl, UsersFileAuth

log = structlog.get_logger("dronectl.transports.mqtt.broker")

LOOPBACK = ("127.0.0.1", "::1", "localhost")
STOP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class BrokerTls:
    """A TLS listener (8883 by default) beside the plain one, from a certificate and its key."""

    cert_file: Path
    key_file: Path
    host: str = "127.0.0.1"
    port: int = 8883


def announce(url: str, host: str, tls: BrokerTls | None, **about: object) -> None:
    """Log an embedded broker's start: its listeners, and a warning for plain TCP beyond loopback."""
    log.info("broker.embedded.started", url=url, **about)
    if tls is not None:
        log.info("broker.embedded.tls", url=f"mqtts://{tls.host}:{tls.port}")
    if host not in LOOPBACK:
        log.warning(
            "broker.embedded.plain_tcp",
            url=url,
            message="plain TCP beyond this machine: passwords cross the network in clear; use TLS",
        )


class EmbeddedBroker:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        users_file: Path,
        root: str = DEFAULT_ROOT,
        tls: BrokerTls | None = None,
        login_audit: LoginAudit | None = None,
    ) -> None:
        """``login_audit``: where refused logins are audited (none: logged only)."""
        self.login_audit = login_audit
        self.host = host
        self.port = port
        self.users_file = users_file
        self.root = root
        self.tls = tls
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        def path(cls: type) -> str:
            return f"{cls.__module__}.{cls.__qualname__}"

        listeners: dict[str, Any] = {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}}
        if self.tls is not None:
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{self.tls.host}:{self.tls.port}",
                "ssl": True,
                "certfile": str(self.tls.cert_file),
                "keyfile": str(self.tls.key_file),
            }
        return {
            "listeners": listeners,
            "plugins": {
                path(UsersFileAuth): {"users_file": str(self.users_file), "login_audit": self.login_audit},
                path(OwnTopicsAcl): {"root": self.root},
            },
        }

    async def start(self) -> None:
        if self._broker is not None:
            raise RuntimeError("the embedded broker is already running")
        if not self.users_file.exists():
            raise FileNotFoundError(f"no users file {self.users_file} (dronectl users add ...)")
        broker = Broker(self._config())
        await broker.start()
        self._broker = broker
        announce(self.url, self.host, self.tls, broker="amqtt", users_file=str(self.users_file))

    async def stop(self) -> None:
        """Close the listener and the sessions. amqtt's shutdown can wait forever for the handler
        of a client that disconnected right after its CONNACK (its task waits for a reader that
        never comes, so the server's wait_closed never returns): bounded, the listener is closed
        by then and what is left is dropped with the loop."""
        broker, self._broker = self._broker, None
        if broker is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await broker.shutdown()
            except TimeoutError:
                log.warning("broker.embedded.stop_overran", url=self.url, timeout_s=STOP_TIMEOUT_S)
            log.info("broker.embedded.stopped", url=self.url)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
