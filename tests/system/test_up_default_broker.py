"""``dronectl up`` with its default broker, tried with Mosquitto's own clients as a user would
(issue 18): ``mosquitto_sub -V mqttv5`` and ``-V mqttv311`` connect and get the retained state; a
command published with ``mosquitto_pub -V mqttv5`` and the MQTT 5 Response Topic and Correlation
Data (no ``reply_to`` in its payload) is answered on that topic with that Correlation Data; the
telemetry, published at QoS 0, reaches a QoS 1 subscriber as QoS 0. The start line names the
broker (Mosquitto, where the machine has it) and its WebSocket listener."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import free_tcp_port, wait_listening
from tests.console.conftest import SIM_SPEED, _env, write_city_config
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.pinned import QUIET

PUB, SUB = shutil.which("mosquitto_pub"), shutil.which("mosquitto_sub")
assert PUB and SUB, "mosquitto-clients is not installed: scripts/system-deps.sh installs it"
START_TIMEOUT_S = 60.0
NEST = 3


@dataclass
class Up:
    port: int
    line: dict[str, Any]
    log: Path

    def client(self, user: str, version: str = "mqttv5") -> list[str]:
        return ["-V", version, "-h", "127.0.0.1", "-p", str(self.port), "-u", user, "-P", TEST_PASSWORD]


def _sub(up: Up, *args: str, timeout_s: float = 20.0) -> str:
    assert SUB is not None
    done = subprocess.run([SUB, *args], capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, (
        f"mosquitto_sub {args}: {done.returncode} {done.stderr}\n{up.log.read_text()[-2000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("up-default-broker")
    users_file = tmp / "users"
    write_users(users_file)
    port = free_tcp_port()
    cmd = [sys.executable, "-m", "dronectl", "up", "--config", str(write_city_config(tmp / "city.yaml"))]
    cmd += ["--sim-speed", str(SIM_SPEED), "--audit", str(tmp / "audit.sqlite3"), "--users", str(users_file)]
    cmd += ["--mqtt-port", str(port), "--mqtt-ws-port", str(free_tcp_port())]
    cmd += ["--http-port", str(free_tcp_port()), "--sim-control-port", str(free_tcp_port())]
    cmd += ["--clock-start", QUIET]
    out, log = tmp / "stdout", tmp / "stderr"
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=tmp, env=_env())
    try:
        assert SUB is not None
        wait_listening(port, process, log, START_TIMEOUT_S)
        # the service's status (retained once it is connected)
        ready = subprocess.run(
            [SUB, "-V", "mqttv311", "-h", "127.0.0.1", "-p", str(port), "-u", "observer-1", "-P",
             TEST_PASSWORD, "-t", "dronectl/v1/status", "-C", "1", "-W", str(int(START_TIMEOUT_S))],
            capture_output=True, text=True, timeout=START_TIMEOUT_S + 5, check=False,
        )  # fmt: skip
        if ready.returncode != 0:
            raise RuntimeError(f"dronectl up did not come up: {ready.stderr}\n{log.read_text()[-3000:]}")
        line = json.loads(out.read_text().splitlines()[0])
        up = Up(port, line, log)
        # and the nest the tests use ready: its states as they change, from the retained one on
        watch = subprocess.Popen(
            ["stdbuf", "-oL", SUB, *up.client("observer-1"), "-t", f"dronectl/v1/nests/{NEST}/state",
             "-W", str(int(START_TIMEOUT_S))],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watch.stdout is not None
        phases: list[str] = []
        for state in watch.stdout:  # ends at -W's timeout if the nest never gets ready
            phases.append(json.loads(state)["phase"])
            if phases[-1] in ("ready", "charging"):
                break
        watch.kill()
        watch.wait(5)
        assert phases and phases[-1] in ("ready", "charging"), (
            f"nest {NEST}: {phases}\n{log.read_text()[-3000:]}"
        )
        yield up
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_start_line_names_mosquitto_and_its_websockets(up: Up) -> None:
    assert up.line["mqtt"] == f"mqtt://127.0.0.1:{up.port} (embedded mosquitto)"
    assert up.line["mqtt_ws"].startswith("ws://127.0.0.1:") and up.line["mqtt_ws"].endswith(
        "(embedded mosquitto)"
    )


@pytest.mark.parametrize("version", ["mqttv5", "mqttv311"])
def test_mqtt5_and_mqtt311_subscribers_get_the_retained_state(up: Up, version: str) -> None:
    out = _sub(
        up, *up.client("observer-1", version), "-t", f"dronectl/v1/nests/{NEST}/state", "-C", "1", "-W", "10"
    )
    state = json.loads(out)
    assert state["nest_id"] == NEST and state["phase"] in ("ready", "charging")


def test_an_mqtt5_command_is_answered_on_its_response_topic_with_its_correlation_data(up: Up) -> None:
    assert PUB is not None and SUB is not None
    response_topic = f"dronectl/v1/replies/pilot-a/{uuid.uuid4().hex[:8]}"
    correlation = uuid.uuid4().hex
    sub = subprocess.Popen(
        ["stdbuf", "-oL", SUB, *up.client("pilot-a"), "-t", response_topic, "-C", "2", "-W", "30", "-d",
         "-F", "MSG\t%D\t%p"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sub.stdout is not None
    for line in sub.stdout:  # subscribed once the broker acknowledged it
        if "SUBACK" in line:
            break
    request = {
        "id": uuid.uuid4().hex,
        "method": "light.set",
        "args": {"mode": "police"},
        "issued_at": datetime.now(UTC).isoformat(),
    }  # no ttl_s and no reply_to: the MQTT 5 properties stand in for them
    subprocess.run(
        [PUB, *up.client("pilot-a"), "-q", "1", "-t", f"dronectl/v1/nests/{NEST}/commands/pilot-a",
         "-m", json.dumps(request), "-D", "publish", "response-topic", response_topic,
         "-D", "publish", "correlation-data", correlation, "-D", "publish", "message-expiry-interval", "30"],
        check=True, timeout=10,
    )  # fmt: skip
    answers = [line.rstrip("\n").split("\t", 2)[1:] for line in sub.stdout if line.startswith("MSG\t")]
    assert sub.wait(5) == 0
    assert [c for c, _ in answers] == [correlation, correlation]
    reply, progress = (json.loads(p) for _, p in answers)
    assert reply["kind"] == "reply" and reply["id"] == request["id"] and reply["ok"] is True, reply
    assert progress["kind"] == "progress" and progress["id"] == request["id"]


def test_qos0_telemetry_reaches_a_qos1_subscriber_as_qos0(up: Up) -> None:
    out = _sub(up, *up.client("observer-1"), "-q", "1", "-t", "dronectl/v1/nests/+/telemetry", "-C", "1",
               "-W", "30", "-d")  # fmt: skip
    received = [line for line in out.splitlines() if "received PUBLISH" in line]
    assert received and "q0" in received[0], out
