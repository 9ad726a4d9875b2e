"""Fixtures for the HTTP API tests: the web server over the fake controller, a real audit store
(with the replay and evidence routes over it, recordings and snapshots in the test's directory),
one token per role, and an MQTT API sharing the same command gateway (publishes captured)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore
from dronectl.automations.lookout.snapshots import SnapshotStore
from dronectl.domain.config import CityConfig, load_config
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import Actor, Role
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.mqtt.settings import MqttSettings
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.replay import add_replay_routes
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import Sessions
from dronectl.transports.web.snapshots import add_snapshot_routes
from dronectl.transports.web.updates import TelemetryRates
from tests.api.capturing import CapturingMqttApi
from tests.api.fake_controller import FakeController

NESTS = (1, 2, 3)
TOKENS = {role: f"token-of-the-{role.value}-0123456789" for role in Role}


class CapturingMqtt(CapturingMqttApi):
    """The MQTT API on the same gateway, with publishes captured instead of sent."""

    def __init__(self, controller: Any, gateway: CommandGateway) -> None:
        users = {f"{role.value}-1": role for role in Role}  # the token holders, as the roles file
        super().__init__(
            MqttSettings(broker="mqtt://127.0.0.1:1"), controller, gateway=gateway, role_of=users.get
        )


@dataclass
class Web:
    client: TestClient[Any, Any]
    controller: FakeController
    gateway: CommandGateway
    mqtt: CapturingMqtt
    audit: AuditStore
    server: WebServer
    recordings: Path
    snapshots: Path
    sessions: Sessions | None = None
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


@contextlib.asynccontextmanager
async def serving(
    config: CityConfig, controller: Any, audit: AuditStore, recordings: Path, snapshots: Path, users: Path
) -> AsyncIterator[Web]:
    """The page and the HTTP API over ``controller`` (the fake one, or a real service's), with the
    replay and evidence routes over ``audit``, ``recordings`` and ``snapshots``: what
    dronectl/app/up.py serves, with a token per role and page sessions over the users file."""
    auth = TokenAuthority({token: Actor(id=f"{role.value}-1", role=role) for role, token in TOKENS.items()})
    rates = TelemetryRates(airborne_hz=20.0, docked_hz=10.0, max_age_s=3.0)
    gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
    mqtt = CapturingMqtt(controller, gateway)
    sessions = Sessions(Directory(users))  # the page's sign-in (browser.signed_in)
    server = WebServer(config, controller, gateway, auth, rates=rates, sessions=sessions)
    # added, not mounted: a mount would tell the page there is live video (config "video")
    add_replay_routes(server.app, audit, recordings, SnapshotStore(snapshots), auth.authorize)
    add_snapshot_routes(server.app, SnapshotStore(snapshots), auth.authorize)
    async with TestClient(TestServer(server.app)) as client:
        yield Web(client, controller, gateway, mqtt, audit, server, recordings, snapshots, sessions)


@pytest.fixture
async def web_api(tmp_path: Path) -> AsyncIterator[Web]:
    base = load_config()
    config = base.model_copy(update={"nests": [n for n in base.nests if n.id in NESTS]})
    controller = FakeController(NESTS, step_s=0.05)
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        recordings, snapshots = tmp_path / "recordings", tmp_path / "snapshots"
        recordings.mkdir()
        snapshots.mkdir()
        async with serving(config, controller, audit, recordings, snapshots, tmp_path / "users") as web:
            yield web
