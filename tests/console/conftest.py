"""The real service for the console tests: ``python -m dronectl up`` as a child process, with the
simulator, against a Mosquitto of the test's own (so the default topic root is ours alone).

Three nests (3, 5, 7) of the shipped city, on free UDP ports, at 10x simulated speed, with the
service's calendar started at a quiet instant (``tests.pinned.QUIET``: no patrol schedule open),
so that the automations launch nothing by themselves whatever the hour of the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dronectl.domain.config import default_config_path
from tests.api.conftest import Mosquitto, free_tcp_port
from tests.conftest import REPO_ROOT, allocate_port_base
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.pinned import QUIET

NESTS = (3, 5, 7)
SIM_SPEED = 10.0
START_TIMEOUT_S = 60.0


class Watcher:
    """A plain paho client that keeps the latest payload of every topic under dronectl/v1."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.latest: dict[str, Any] = {}
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.subscribe("dronectl/v1/#")
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: object, message: Any) -> None:
        if message.payload:
            self.latest[message.topic] = json.loads(message.payload)

    def state(self, nest_id: int) -> dict[str, Any]:
        return dict(self.latest.get(f"dronectl/v1/nests/{nest_id}/state") or {})

    def wait(self, what: str, check: Callable[[Watcher], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@dataclass
class Service:
    broker: str
    config_path: Path
    control_port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    watcher: Watcher

    def oneshot(
        self, *args: str, actor: str = "pilot-a", role: str | None = "pilot", timeout_s: float = 60.0
    ) -> Any:
        """``python -m dronectl ARGS`` with this broker; returns the CompletedProcess."""
        cmd = [
            sys.executable,
            "-m",
            "dronectl",
            *args,
            "--broker",
            self.broker,
            "--config",
            str(self.config_path),
        ]
        cmd += ["--user", actor, *(["--role", role] if role else [])]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT, env=_env()
        )

    def sim(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A request to the simulator's control port (faults, weather, what the payload played)."""
        from sitl.control import request

        return asyncio.run(request(payload, port=self.control_port))

    def up_line(self) -> dict[str, Any]:
        """The JSON line ``dronectl up`` printed on stdout (the log shares the file: JSON too)."""
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{") and '"mqtt": ' in line and '"page": ' in line:
                return dict(json.loads(line))
        raise AssertionError(f"no JSON line from dronectl up:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["DRONECTL_LOG_LEVEL"] = os.environ.get("DRONECTL_TEST_SERVICE_LOG_LEVEL", "WARNING")
    env["DRONECTL_PASSWORD"] = TEST_PASSWORD  # every test user's (tests/identity/accounts.py)
    for name in ("DRONECTL_BROKER", "DRONECTL_ROOT", "DRONECTL_ACTOR", "DRONECTL_ROLE", "DRONECTL_USER"):
        env.pop(name, None)
    env.pop("DRONECTL_CREDENTIALS", None)
    return env


def write_city_config(path: Path) -> Path:
    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data["nests"] = [n for n in data["nests"] if n["id"] in NESTS]
    data["mavlink"] = {
        "host": "127.0.0.1",
        "client_port_base": allocate_port_base(),
        "sim_port_base": allocate_port_base(),
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _online(watcher: Watcher) -> bool:
    """The service's retained status says online, and every nest is ready."""
    status = watcher.latest.get("dronectl/v1/status")
    ready = all(watcher.state(n).get("phase") == "ready" for n in NESTS)
    return bool(status and status["state"] == "online" and ready)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("console-service")
    broker = Mosquitto(free_tcp_port())
    broker.start()
    config_path = write_city_config(tmp / "city.yaml")
    users_file = tmp / "users"
    write_users(users_file)
    control_port = free_tcp_port()
    log_path = tmp / "service.log"
    cmd = [sys.executable, "-m", "dronectl", "up", "--broker", f"mqtt://127.0.0.1:{broker.port}"]
    cmd += [
        "--config",
        str(config_path),
        "--sim-speed",
        str(SIM_SPEED),
        "--audit",
        str(tmp / "audit.sqlite3"),
        "--users",
        str(users_file),
    ]
    cmd += ["--sim-control-port", str(control_port), "--clock-start", QUIET]
    with log_path.open("wb") as log:
        # in its own directory: what it keeps (var/: MAVLink keys, the simulator's state) stays the test's
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=_env())
    watcher = Watcher(broker.port)
    svc = Service(f"mqtt://127.0.0.1:{broker.port}", config_path, control_port, process, log_path, watcher)
    try:
        try:
            watcher.wait("the service online with every nest ready", _online, START_TIMEOUT_S)
        except AssertionError:
            raise RuntimeError(f"the service did not come online:\n{svc.log_tail()}") from None
        yield svc
    finally:
        watcher.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        broker.stop()
