"""docker-compose.yml's topology, without Docker (issue 18): each process as compose runs it, on
127.0.0.1 ports instead of container addresses.

- PX4 containers: ``python -m sitl --autopilots-only``, autopilots shaped like PX4 SITL (no dock,
  payload or camera), which dronectl dials (``udpout``) as it dials a PX4's API link;
- the ``docks`` service: ``python -m sitl --docks-only``, each nest's dock and payload, its dock
  watching its autopilot's telemetry as it watches a PX4's GCS link;
- the ``dronectl`` service: ``dronectl up --no-sim`` on a config made from docker/compose.yaml
  (the autopilot at ``mavlink_url``, the dock and payload at ``dock_url``), on a Mosquitto.

One nest is launched with the console's one-shot command and brought home; it ends ready in its
dock, the cover closed over it, and each simulator saw its own part of the flight.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from sitl.control import request
from tests.api.conftest import Mosquitto, free_tcp_port, mosquitto_binary
from tests.conftest import REPO_ROOT, allocate_port_base
from tests.console.conftest import Watcher, _env
from tests.identity.accounts import write_users

NESTS = (3, 7)
FLIES = 3
SPEED = 10.0
START_TIMEOUT_S = 90.0


def compose_shaped_config(path: Path, autopilots: int, docks: int) -> Path:
    """docker/compose.yaml with only NESTS, its endpoints moved from the containers to loopback,
    and no patrol schedule (a --no-sim service runs on the real clock: nothing launches by itself)."""
    data = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    data["nests"] = [n for n in data["nests"] if n["id"] in NESTS]
    for nest in data["nests"]:
        assert nest["mavlink_url"].startswith("udpout://") and nest["dock_url"].startswith("udpout://")
        nest["mavlink_url"] = f"udpout://127.0.0.1:{autopilots + nest['id']}"
        nest["dock_url"] = f"udpout://127.0.0.1:{docks + nest['id']}"
    data["patrols"]["black_ice"]["schedule"] = []
    data["patrols"]["congestion"]["schedule"] = []
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@contextmanager
def process(cmd: list[str], log_path: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=_env()
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-3000:]


def sim(port: int, payload: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(request(payload, port=port))


def records(port: int, nest_id: int, kind: str) -> list[str]:
    reply = sim(port, {"op": "records", "nest": nest_id, "kind": kind})
    return [r["kind"] for r in reply["records"]]


def test_compose_topology_flies_with_px4_shaped_autopilots_and_the_docks_simulator(tmp_path: Path) -> None:
    assert mosquitto_binary() is not None, "no mosquitto binary: scripts/system-deps.sh installs it"
    autopilots, docks = allocate_port_base(), allocate_port_base()
    config = compose_shaped_config(tmp_path / "compose.yaml", autopilots, docks)
    autopilots_port, docks_port = free_tcp_port(), free_tcp_port()
    common = ["--config", str(config), "--speed", str(SPEED)]
    px4_cmd = [sys.executable, "-m", "sitl", "--autopilots-only", *common, "--sim-port-base", str(autopilots)]
    px4_cmd += ["--client-port-base", str(allocate_port_base()), "--control-port", str(autopilots_port)]
    docks_cmd = [sys.executable, "-m", "sitl", "--docks-only", "--watch-port-base", str(autopilots), *common]
    docks_cmd += ["--sim-port-base", str(docks), "--client-port-base", str(allocate_port_base())]
    docks_cmd += ["--control-port", str(docks_port)]
    broker = Mosquitto(free_tcp_port())
    users = tmp_path / "users"
    write_users(users)
    up_cmd = [sys.executable, "-m", "dronectl", "up", "--no-sim", "--config", str(config)]
    up_cmd += ["--broker", f"mqtt://127.0.0.1:{broker.port}", "--users", str(users)]
    up_cmd += ["--sim-speed", str(SPEED), "--audit", str(tmp_path / "audit.sqlite3")]
    up_cmd += ["--http-port", str(free_tcp_port()), "--recordings", str(tmp_path / "recordings")]
    up_cmd += ["--snapshots", str(tmp_path / "snapshots"), "--mavlink-keys", str(tmp_path / "keys")]
    up_log = tmp_path / "up.log"

    with ExitStack() as stack:
        broker.start()
        stack.callback(broker.stop)
        stack.enter_context(process(px4_cmd, tmp_path / "autopilots.log", tmp_path))
        stack.enter_context(process(docks_cmd, tmp_path / "docks.log", tmp_path))
        stack.enter_context(process(up_cmd, up_log, tmp_path))
        watcher = Watcher(broker.port)
        stack.callback(watcher.close)

        def ready(nest_id: int) -> bool:
            state = watcher.state(nest_id)
            dock = state.get("dock") or {}
            return (
                state.get("phase") in ("ready", "charging")
                and state.get("blockers") == []
                and dock.get("drone_in_dock") is True
                and (dock.get("weather") or {}).get("go") is True
                and state.get("flight") is None
            )

        try:
            watcher.wait("every nest ready", lambda _: all(ready(n) for n in NESTS), START_TIMEOUT_S)
        except AssertionError:
            states = {n: watcher.state(n) for n in NESTS}
            raise AssertionError(
                f"not ready: {json.dumps(states)[:3000]}\n--- up:\n{tail(up_log)}\n"
                f"--- docks:\n{tail(tmp_path / 'docks.log')}"
            ) from None
        # each simulator is one side of the nest: no dock on the autopilots' side, no drone on the docks'
        assert sim(docks_port, {"op": "state", "nest": FLIES})["state"][0]["on_pad"] is True
        assert sim(docks_port, {"op": "state", "nest": FLIES})["state"][0]["mode"] == "dock"
        assert sim(autopilots_port, {"op": "state", "nest": FLIES})["state"][0]["mode"] == "autopilot"

        def oneshot(*args: str) -> dict[str, Any]:
            cmd = [
                sys.executable,
                "-m",
                "dronectl",
                *args,
                "--json",
                "--broker",
                f"mqtt://127.0.0.1:{broker.port}",
            ]
            cmd += ["--config", str(config), "--user", "pilot-a", "--role", "pilot"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=_env())
            failed = f"{args}: rc {done.returncode}: {done.stdout} {done.stderr}\n{tail(up_log)}"
            assert done.returncode == 0, failed
            reply: dict[str, Any] = json.loads(done.stdout)
            return reply

        launch = oneshot("launch", str(FLIES), "--to", "43.8560,125.3000", "--alt", "30", "--wait")
        assert launch["state"] == "succeeded", launch
        assert watcher.state(FLIES)["phase"] == "on_station"
        # the dock opened for a drone it saw leave; the autopilot took off; the other nest stayed
        assert "takeoff" in records(autopilots_port, FLIES, "takeoff")
        assert "cover.opened" in records(docks_port, FLIES, "cover.")
        assert sim(docks_port, {"op": "state", "nest": FLIES})["state"][0]["on_pad"] is False
        assert records(autopilots_port, NESTS[1], "takeoff") == []

        back = oneshot("return", str(FLIES), "--wait")
        assert back["state"] == "succeeded", back
        watcher.wait("the drone home, ready in its closed dock", lambda _: ready(FLIES), 120)
        dock_records = records(docks_port, FLIES, "cover.")
        assert dock_records[-1] == "cover.closed", dock_records
        assert sim(docks_port, {"op": "state", "nest": FLIES})["state"][0]["on_pad"] is True
