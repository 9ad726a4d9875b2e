"""64 nests (issue 15), a smoke test, not a timing test: a generated city, the sharded simulator and
the real service (``python -m dronectl up``, with its simulator child in two shards) start, and the
service sees every nest ready. ``bench/scale.py`` measures; this only proves the pieces fit."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs installed (types-psutil)
import pytest
import yaml

from dronectl.domain.config import load_config
from dronectl.domain.synthetic_city import synthetic_city
from sitl.ports import free_udp_range
from tests.api.conftest import Mosquitto, free_tcp_port
from tests.conftest import _used
from tests.console.conftest import Watcher
from tests.system.test_stop_mid_launch import _env, _kill

NESTS = 64
START_TIMEOUT_S = 120.0  # a shared 2-core CI machine; the bench says how long it really takes
READY = ("ready", "charging")


def _port_base(span: int) -> int:
    """A base for ``span`` ports; the test ranges it overlaps (25 apart) are never handed out again."""
    base = free_udp_range(span, exclude=_used)
    _used.update(range(base, base + span + 25, 25))
    return base


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(free_tcp_port())
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def test_64_generated_nests_over_two_simulator_shards_all_come_up_ready(
    broker: Mosquitto, tmp_path: Path
) -> None:
    data = synthetic_city(NESTS, client_port_base=_port_base(NESTS + 1), sim_port_base=_port_base(NESTS + 1))
    config_path = tmp_path / "city.yaml"
    config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert len(load_config(config_path).nests) == NESTS
    cmd = [sys.executable, "-m", "dronectl", "up", "--broker", f"mqtt://127.0.0.1:{broker.port}"]
    cmd += ["--config", str(config_path), "--sim-shards", "2", "--audit", str(tmp_path / "audit.sqlite3")]
    cmd += ["--sim-control-port", str(free_tcp_port()), "--http-port", str(free_tcp_port())]
    cmd += ["--recordings", str(tmp_path / "rec"), "--snapshots", str(tmp_path / "snap")]
    cmd += ["--users", str(tmp_path / "users"), "--sim-state", str(tmp_path / "sitl")]
    cmd += ["--mavlink-keys", str(tmp_path / "keys")]
    watcher = Watcher(broker.port)
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env())
    service = psutil.Process(process.pid)
    simulators: list[psutil.Process] = []

    def ready(w: Watcher) -> list[int]:
        return [n for n in range(1, NESTS + 1) if w.state(n).get("phase") in READY]

    try:
        started = time.monotonic()
        try:
            watcher.wait(
                f"all {NESTS} nests ready",
                lambda w: process.poll() is not None or len(ready(w)) == NESTS,
                START_TIMEOUT_S,
            )
        except AssertionError:
            missing = sorted(set(range(1, NESTS + 1)) - set(ready(watcher)))
            tail = log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"not ready: nests {missing}\n{tail}") from None
        assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
        simulators = [c for c in service.children(recursive=True) if "sitl" in " ".join(c.cmdline())]
        assert len(simulators) == 3  # the one in front and its two shards
        print(f"{NESTS} nests ready {time.monotonic() - started:.1f} s after the start")
    finally:
        watcher.close()
        for child in simulators:
            _kill(child)
        _kill(service)
        process.wait(10)
