"""Fixtures for the HTTP API tests: the web server over the fake controller, a real audit store,
one token per role, and an MQTT API sharing the same command gateway (publishes captured)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from dronectl.api.audit_outcomes import AuditOutcomes
from dronectl.api.gateway import CommandGateway
from dronectl.api.models import Actor, Role
from dronectl.api.mqtt import MqttApi
from dronectl.api.settings import MqttSettings
from dronectl.api.topics import Topics
from dronectl.audit import AuditStore
from dronectl.config import load_config
from dronectl.web.auth import TokenAuthority
from dronectl.web.server import WebServer
from dronectl.web.updates import TelemetryRates
from tests.api.fake_controller import FakeController

NESTS = (1, 2, 3)
TOKENS = {role: f"token-of-the-{role.value}-0123456789" for role in Role}


class CapturingMqtt(MqttApi):
    """The MQTT API on the same gateway, with publishes captured instead of sent."""

    def __init__(self, controller: FakeController, gateway: CommandGateway) -> None:
        super().__init__(MqttSettings(broker="mqtt://127.0.0.1:1"), controller, gateway=gateway)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def _publish(self, topic: str, model: BaseModel, *, qos: int, retain: bool = False) -> bool:
        self.sent.append((topic, json.loads(model.model_dump_json())))
        return True


@dataclass
class Web:
    client: TestClient[Any, Any]
    controller: FakeController
    gateway: CommandGateway
    mqtt: CapturingMqtt
    audit: AuditStore
    server: WebServer
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[role]}"}


def envelope(
    command_id: str, method: str, args: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": command_id,
        "method": method,
        "args": args or {},
        "issued_at": datetime.now(tz=UTC).isoformat(),
        "ttl_s": 30,
        **extra,
    }


def launch_args(nest_id: int = 1) -> dict[str, Any]:
    return {"target": {"lat": 43.90 + nest_id * 0.001, "lon": 125.33, "alt_m": 60.0}}


@pytest.fixture
async def web_api(tmp_path: Path) -> AsyncIterator[Web]:
    base = load_config()
    config = base.model_copy(update={"nests": [n for n in base.nests if n.id in NESTS]})
    controller = FakeController(NESTS, step_s=0.05)
    auth = TokenAuthority({token: Actor(id=f"{role.value}-1", role=role) for role, token in TOKENS.items()})
    rates = TelemetryRates(airborne_hz=20.0, docked_hz=10.0, max_age_s=3.0)
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
        mqtt = CapturingMqtt(controller, gateway)
        server = WebServer(config, controller, gateway, auth, rates=rates)
        async with TestClient(TestServer(server.app)) as client:
            yield Web(client, controller, gateway, mqtt, audit, server)
