"""Run the MQTT API: against the configured broker, or the embedded one when none is configured."""

from __future__ import annotations

import time
from collections.abc import Callable

from dronectl.api.broker import EmbeddedBroker
from dronectl.api.controller import Controller
from dronectl.api.dispatch import OutcomeStore
from dronectl.api.gateway import CommandGateway
from dronectl.api.mqtt import MqttApi
from dronectl.api.settings import MqttSettings


async def serve_api(
    settings: MqttSettings,
    controller: Controller,
    *,
    clock: Callable[[], float] = time.time,
    outcomes: OutcomeStore | None = None,
    version: str | None = None,
    gateway: CommandGateway | None = None,
) -> None:
    """Serve until cancelled. With ``settings.broker`` None, an embedded broker runs alongside.
    ``gateway``: the command path shared with the HTTP API (its outcomes then count, not ``outcomes``)."""
    api = MqttApi(settings, controller, clock=clock, outcomes=outcomes, version=version, gateway=gateway)
    if settings.broker is not None:
        await api.run()
        return
    async with EmbeddedBroker(settings.embedded_host, settings.embedded_port):
        await api.run()
