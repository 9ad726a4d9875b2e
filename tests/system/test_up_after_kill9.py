"""``dronectl up`` killed with SIGKILL comes up again at once (issue 18).

The simulator child holds the nests' UDP ports. It watches a pipe from ``dronectl up``
(``--exit-with-parent``): when the parent dies, however, the kernel closes the pipe, the simulator
stops and frees its ports, and the next ``dronectl up`` on the same ports starts. Before, the stale
simulator kept them and the next start failed with "simulator exited with 1".
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs installed (types-psutil)
import pytest

from tests.api.conftest import Mosquitto, free_tcp_port
from tests.console.conftest import Watcher
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.system.test_stop_mid_launch import NEST, SIM_SPEED, START_TIMEOUT_S, _config, _env, _kill


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(free_tcp_port())
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def test_kill9_then_start_again_at_once_comes_up(broker: Mosquitto, tmp_path: Path) -> None:
    config = _config(tmp_path / "city.yaml")
    mqtt = f"mqtt://127.0.0.1:{broker.port}"
    cmd = [sys.executable, "-m", "dronectl", "up", "--broker", mqtt, "--config", str(config)]
    cmd += ["--sim-speed", str(SIM_SPEED), "--audit", str(tmp_path / "audit.sqlite3")]
    cmd += ["--sim-control-port", str(free_tcp_port()), "--http-port", str(free_tcp_port())]
    cmd += ["--recordings", str(tmp_path / "rec"), "--snapshots", str(tmp_path / "snap")]
    cmd += ["--users", str(tmp_path / "users")]  # its own users file, never the repository's var/
    watcher = Watcher(broker.port)
    started: list[psutil.Process] = []
    simulators: list[psutil.Process] = []

    def start(n: int) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = tmp_path / f"service-{n}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env())
        started.append(psutil.Process(process.pid))
        return process, log_path

    def wait_up(process: subprocess.Popen[bytes], log_path: Path, what: str) -> None:
        try:
            watcher.wait(
                what,
                lambda w: (
                    process.poll() is not None
                    or (
                        w.state(NEST).get("phase") == "ready"
                        and (w.latest.get("dronectl/v1/status") or {}).get("state") == "online"
                    )
                ),
                START_TIMEOUT_S,
            )
        except AssertionError:
            raise AssertionError(f"{what}: not up\n{log_path.read_text(errors='replace')[-4000:]}") from None
        assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]

    try:
        first, first_log = start(1)
        wait_up(first, first_log, "the first start")
        simulators += [c for c in started[0].children(recursive=True) if "sitl" in " ".join(c.cmdline())]
        assert len(simulators) == 1
        first.kill()  # SIGKILL: no handler runs, nothing is cleaned up by the service itself
        first.wait(10)
        # the retained status still says online (the last will says offline once the broker notices);
        # clear what the watcher saw so the second start must publish its own
        watcher.latest.clear()
        second, second_log = start(2)
        wait_up(second, second_log, "the start right after kill -9")
        assert "simulator exited" not in second_log.read_text(errors="replace")
        assert not simulators[0].is_running() or simulators[0].status() == psutil.STATUS_ZOMBIE
    finally:
        watcher.close()
        for proc in started:
            for child in _children(proc):
                _kill(child)
            _kill(proc)
        for orphan in simulators:  # if it outlived its parent (the failure this test is about)
            _kill(orphan)


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def test_kill9_with_the_embedded_broker_frees_its_ports_for_the_next_start(tmp_path: Path) -> None:
    """The embedded Mosquitto dies with the service too (PR_SET_PDEATHSIG), so a start right
    after a kill -9 gets the same broker port, not the next free one."""
    config = _config(tmp_path / "city.yaml")
    users = tmp_path / "users"
    write_users(users)
    port, ws_port = free_tcp_port(), free_tcp_port()
    cmd = [sys.executable, "-m", "dronectl", "up", "--config", str(config), "--users", str(users)]
    cmd += ["--mqtt-port", str(port), "--mqtt-ws-port", str(ws_port), "--http-port", str(free_tcp_port())]
    cmd += ["--sim-speed", str(SIM_SPEED), "--audit", str(tmp_path / "audit.sqlite3")]
    cmd += ["--sim-control-port", str(free_tcp_port())]
    cmd += ["--recordings", str(tmp_path / "rec"), "--snapshots", str(tmp_path / "snap")]
    started: list[psutil.Process] = []

    def start(n: int) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
        out, log = tmp_path / f"stdout-{n}", tmp_path / f"stderr-{n}"
        with out.open("wb") as stdout, log.open("wb") as stderr:
            process = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=tmp_path, env=_env())
        started.append(psutil.Process(process.pid))
        online = subprocess.run(  # the service's status, once its broker is up (-W: give up after)
            ["sh", "-c", f"until mosquitto_sub -p {port} -u observer-1 -P {TEST_PASSWORD} "
             f"-t dronectl/v1/status -C 1 -W {int(START_TIMEOUT_S)}; "
             f"do [ -d /proc/{process.pid} ] || exit 1; sleep 0.2; done"],  # polled: no broker yet
            capture_output=True, text=True, timeout=START_TIMEOUT_S + 10, check=False,
        )  # fmt: skip
        assert online.returncode == 0, log.read_text(errors="replace")[-3000:]
        return process, json.loads(out.read_text().splitlines()[0])

    try:
        first, line = start(1)
        assert line["mqtt"] == f"mqtt://127.0.0.1:{port} (embedded mosquitto)"
        children = started[0].children(recursive=True)
        brokers = [c for c in children if c.name() == "mosquitto"]
        assert len(brokers) == 1
        first.kill()
        first.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)  # the children go with it
        assert alive == [], [c.cmdline() for c in alive]
        _, line = start(2)  # at once, on the same ports
        assert line["mqtt"] == f"mqtt://127.0.0.1:{port} (embedded mosquitto)"
        assert line["mqtt_ws"] == f"ws://127.0.0.1:{ws_port}/ (embedded mosquitto)"
    finally:
        for proc in started:
            for child in _children(proc):
                _kill(child)
            _kill(proc)
