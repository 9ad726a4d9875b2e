"""Ctrl-C in the terminal running ``dronectl up``: SIGINT goes to the whole foreground process
group, not to the service alone. The embedded Mosquitto runs in a group of its own, so it does not
take the signal itself: the service stops it last, and its supervisor never starts it again in the
middle of the shutdown (it did, before: ``broker.mosquitto.exited`` then ``restarted`` while the
service was stopping, and an MQTT error left unretrieved). Everything is gone afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs installed (types-psutil)

from tests.api.conftest import free_tcp_port, wait_listening
from tests.console.conftest import SIM_SPEED, _env, write_city_config
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.pinned import QUIET

SUB = shutil.which("mosquitto_sub")
assert SUB, "mosquitto-clients is not installed: scripts/system-deps.sh installs it"
assert shutil.which("mosquitto"), "mosquitto is not installed: scripts/system-deps.sh installs it"
START_TIMEOUT_S = 60.0
STOP_BOUND_S = 10.0


def test_ctrl_c_to_the_process_group_stops_everything_once(tmp_path: Path) -> None:
    users_file = tmp_path / "users"
    write_users(users_file)
    port = free_tcp_port()
    cmd = [sys.executable, "-m", "dronectl", "up", "--config", str(write_city_config(tmp_path / "city.yaml"))]
    cmd += [
        "--sim-speed",
        str(SIM_SPEED),
        "--audit",
        str(tmp_path / "audit.sqlite3"),
        "--users",
        str(users_file),
    ]
    cmd += [
        "--mqtt-port",
        str(port),
        "--mqtt-ws-port",
        str(free_tcp_port()),
        "--embedded-broker",
        "mosquitto",
    ]
    cmd += ["--http-port", str(free_tcp_port()), "--sim-control-port", str(free_tcp_port())]
    cmd += ["--clock-start", QUIET]
    out, log = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, log.open("wb") as stderr:
        # a group of its own, as a shell gives a foreground job
        process = subprocess.Popen(
            cmd,
            stdout=stdout,
            stderr=stderr,
            cwd=tmp_path,
            env={**_env(), "DRONECTL_LOG_LEVEL": "INFO"},
            start_new_session=True,
        )
    try:
        assert SUB is not None
        wait_listening(port, process, log, START_TIMEOUT_S)
        # the service's retained status once it is connected to its broker (waits for it)
        ready = subprocess.run(
            [SUB, "-h", "127.0.0.1", "-p", str(port), "-u", "observer-1", "-P", TEST_PASSWORD,
             "-t", "dronectl/v1/status", "-C", "1", "-W", str(int(START_TIMEOUT_S))],
            capture_output=True, text=True, timeout=START_TIMEOUT_S + 5, check=False,
        )  # fmt: skip
        assert ready.returncode == 0, (
            f"dronectl up did not come up: {ready.stderr}\n{log.read_text()[-3000:]}"
        )
        children = psutil.Process(process.pid).children(recursive=True)
        brokers = [c for c in children if c.name() == "mosquitto"]
        assert len(brokers) == 1, [c.cmdline() for c in children]
        assert os.getpgid(brokers[0].pid) != os.getpgid(process.pid)

        os.killpg(os.getpgid(process.pid), signal.SIGINT)  # what Ctrl-C does
        code = process.wait(STOP_BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    names = [e.get("event", "") for e in events]
    assert code == 0, f"exit {code}\n{log.read_text()[-3000:]}"
    assert "dronectl.down" in names
    assert "broker.mosquitto.exited" not in names and "broker.mosquitto.restarted" not in names, names[-30:]
    assert "dronectl.forced_exit" not in names
    assert not [e for e in events if e.get("level") in ("error", "critical")], [
        e for e in events if e.get("level") in ("error", "critical")
    ]
    gone = psutil.wait_procs(children, timeout=5)[1]
    assert not gone, [c.cmdline() for c in gone]
