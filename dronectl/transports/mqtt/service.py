"""Run the MQTT API: against the configured broker, or the embedded one when none is configured."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import structlog

from dronectl.operations.gateway import CommandGateway
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.port import Controller
from dronectl.operations.requests import OutcomeStore
from dronectl.operations.users import Directory
from dronectl.transports.mqtt.broker import BrokerTls, EmbeddedBroker
from dronectl.transports.mqtt.mosquitto import MosquittoBroker, find_mosquitto
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings

log = structlog.get_logger("dronectl.transports.mqtt.service")


async def serve_api(
    settings: MqttSettings,
    controller: Controller,
    *,
    clock: Callable[[], float] = time.time,
    outcomes: OutcomeStore | None = None,
    version: str | None = None,
    gateway: CommandGateway | None = None,
    users_file: Path,
    tls: BrokerTls | None = None,
    login_audit: LoginAudit | None = None,
) -> None:
    """Serve until cancelled. With ``settings.broker`` None, an embedded broker runs alongside,
    logging users in from ``users_file`` (with ``tls``, on a TLS listener too); the senders' roles
    come from its roles file either way; its refused logins go to ``login_audit``.
    ``gateway``: the command path shared with the HTTP API (its outcomes then count, not ``outcomes``)."""
    directory = Directory(users_file)
    mosquitto = None
    if settings.broker is None and settings.embedded_broker != "amqtt":
        mosquitto = find_mosquitto()
        if mosquitto is None and settings.embedded_broker == "mosquitto":
            raise FileNotFoundError("no mosquitto 2 on this machine (Debian: apt install mosquitto)")
        if mosquitto is None:
            log.warning(
                "broker.embedded.amqtt",
                message="no Mosquitto on this machine: the embedded broker is amqtt (MQTT 3.1.1 only, "
                "no WebSockets); scripts/system-deps.sh installs Mosquitto",
            )
    if settings.broker is None and mosquitto is None:  # amqtt speaks MQTT 3.1.1, not 5
        settings = settings.model_copy(update={"protocol": "3.1.1"})
    api = MqttApi(
        settings,
        controller,
        clock=clock,
        outcomes=outcomes,
        version=version,
        gateway=gateway,
        role_of=directory.role_of,
    )
    if settings.broker is not None:
        await api.run()
        return
    if mosquitto is not None:
        async with MosquittoBroker(
            settings.embedded_host,
            settings.embedded_port,
            users_file=users_file,
            root=settings.root,
            ws_port=settings.embedded_ws_port,
            tls=tls,
            login_audit=login_audit,
            binary=mosquitto,
        ):
            await api.run()
        return
    async with EmbeddedBroker(
        settings.embedded_host,
        settings.embedded_port,
        users_file=users_file,
        root=settings.root,
        tls=tls,
        login_audit=login_audit,
    ):
        await api.run()
