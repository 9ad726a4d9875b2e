"""``dronectl up`` stops within 5 s of Ctrl-C even mid-launch with the link dead.

The real service (``python -m dronectl up``, its simulator child, a Mosquitto of the test's own),
one nest. A launch is accepted; while it runs (the cruise-speed parameter set, the cover, the
arming) the simulator is killed (SIGKILL, so nothing answers any more and MAVSDK's calls to the
vehicle never return), then the service gets SIGINT. It must exit within 5 s, with nothing left
running: no child process, no port held.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs installed (types-psutil)
import pytest
import yaml

from dronectl.domain.config import default_config_path
from tests.api.conftest import Mosquitto, free_tcp_port
from tests.conftest import REPO_ROOT, allocate_port_base
from tests.console.conftest import Watcher
from tests.identity.accounts import TEST_PASSWORD, write_users

NEST = 5
SIM_SPEED = 10.0
START_TIMEOUT_S = 60.0
STOP_BOUND_S = 5.0  # the requirement
MID_LAUNCH = {"preflight", "launching"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRONECTL_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["DRONECTL_LOG_LEVEL"] = "INFO"
    env["DRONECTL_PASSWORD"] = TEST_PASSWORD  # the one-shot launch logs in as pilot-a
    return env


def _config(path: Path) -> Path:
    """The shipped city with one nest, on free ports, and no patrol that could launch by itself."""
    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data["nests"] = [n for n in data["nests"] if n["id"] == NEST]
    data["mavlink"] = {
        "host": "127.0.0.1",
        "client_port_base": allocate_port_base(),
        "sim_port_base": allocate_port_base(),
    }
    data["patrols"]["stretches"] = []
    for kind in ("black_ice", "congestion"):
        data["patrols"][kind]["stretches"] = []
        data["patrols"][kind]["schedule"] = []
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _bindable(kind: int, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _ports(process: psutil.Process) -> set[tuple[int, int]]:
    """(socket type, port) of what the process listens on or binds."""
    held = set()
    for conn in process.net_connections(kind="inet4"):
        if conn.laddr and (conn.type == socket.SOCK_DGRAM or conn.status == psutil.CONN_LISTEN):
            held.add((int(conn.type), int(conn.laddr.port)))
    return held


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(free_tcp_port())
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def test_sigint_mid_launch_with_the_simulator_killed_stops_within_5_s(
    broker: Mosquitto, tmp_path: Path
) -> None:
    config = _config(tmp_path / "city.yaml")
    log_path = tmp_path / "service.log"
    mqtt = f"mqtt://127.0.0.1:{broker.port}"
    cmd = [sys.executable, "-m", "dronectl", "up", "--broker", mqtt, "--config", str(config)]
    cmd += ["--sim-speed", str(SIM_SPEED), "--audit", str(tmp_path / "audit.sqlite3")]
    cmd += ["--sim-control-port", str(free_tcp_port()), "--http-port", str(free_tcp_port())]
    cmd += ["--recordings", str(tmp_path / "rec"), "--snapshots", str(tmp_path / "snap")]
    write_users(tmp_path / "users")
    cmd += ["--users", str(tmp_path / "users")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env())
    service = psutil.Process(process.pid)
    watcher = Watcher(broker.port)
    children: list[psutil.Process] = []

    def log_tail() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    try:
        try:
            watcher.wait(
                "the nest ready",
                lambda w: process.poll() is not None or w.state(NEST).get("phase") == "ready",
                START_TIMEOUT_S,
            )
            assert process.poll() is None
        except AssertionError:
            raise AssertionError(f"the service did not come up:\n{log_tail()}") from None
        children = service.children(recursive=True)
        simulators = [c for c in children if "sitl" in c.cmdline()]
        assert len(simulators) == 1, [c.cmdline() for c in children]
        held = _ports(service) | {p for c in children for p in _ports(c)}
        assert held, "the service holds no port?"

        options = ["--broker", mqtt, "--config", str(config), "--actor", "pilot-a", "--role", "pilot"]
        launch = subprocess.Popen(
            [sys.executable, "-m", "dronectl", "launch", str(NEST), "--to", "43.8560,125.3000", *options],
            cwd=REPO_ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            watcher.wait("the launch under way", lambda w: w.state(NEST).get("phase") in MID_LAUNCH, 30.0)
        finally:
            launch.kill()
            launch.wait(10)
        simulators[0].kill()  # SIGKILL: the vehicle is gone, nothing will answer any more
        simulators[0].wait(10)
        phase = watcher.state(NEST).get("phase")
        assert phase in MID_LAUNCH, f"the launch was over before the simulator died: {phase}"

        process.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        try:
            code = process.wait(STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {STOP_BOUND_S} s after SIGINT:\n{log_tail()}") from None
        took = time.monotonic() - stopping
        print(f"stopped {took:.2f} s after SIGINT (mid-launch, simulator killed)")
        assert code == 0, log_tail()
        assert "dronectl.down" in log_tail()
        left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not left, [c.cmdline() for c in left]
        busy = {(kind, port) for kind, port in held if not _bindable(kind, port)}
        assert not busy, f"ports still held: {busy}"
    finally:
        watcher.close()
        for proc in [service, *children]:
            _kill(proc)
        process.wait(10)


def _kill(proc: Any) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.kill()
