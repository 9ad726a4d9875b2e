"""Two ``dronectl up`` instances on one PostgreSQL and one Mosquitto (issue 14): each publishes its
own retained status; one leads the automations; an incident published once on MQTT reaches both
and is dispatched (recorded, planned) by the leader only; kill -9 of the leader: its last will
marks it offline, the other takes the automations lease over and picks the open incident up from
the shared store, as after a restart; an incident published while no instance leads is recorded by
the other (not yet leading) and taken up when it leads; one recorded by another instance while it
leads is adopted.

No simulator (``--no-sim``, nothing answers on the nest's endpoint): the nest stays offline, so
the incident is queued, which is all this test needs to see who serves it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml

from dronectl.audit import AuditStore
from dronectl.automations.incidents.progress import incident_record
from dronectl.operations.models import Incident
from tests.api.conftest import Mosquitto, free_tcp_port
from tests.console.conftest import Watcher
from tests.identity.accounts import write_users
from tests.pg import fresh_database, query
from tests.system.test_stop_mid_launch import _config, _env

START_TIMEOUT_S = 60.0
LEASE_TTL_S = 3.0
ROOT = "dronectl/v1"


async def _migrate(url: str) -> None:
    async with await AuditStore.open(url):
        pass


def publish(port: int, incident: dict[str, object]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(f"{ROOT}/incidents/cc", json.dumps(incident), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


async def _record_as_another_instance(url: str, incident: dict[str, object]) -> None:
    async with await AuditStore.open(url) as store:
        report = Incident.model_validate_json(
            json.dumps({**incident, "reported_at": datetime.now(UTC).isoformat()})
        )
        await store.record_command(incident_record(report, time.time()))


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(free_tcp_port())
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def _until(what: str, check: Callable[[], bool], timeout_s: float, logs: list[Path]) -> None:
    """Poll ``check`` (the database and the watcher's copy of the broker: nothing to wait on)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.1)


def test_one_leader_dispatches_and_a_takeover_resumes_the_incident(broker: Mosquitto, tmp_path: Path) -> None:
    config = _config(tmp_path / "city.yaml")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for nest in data["nests"]:  # any instance dials the dock (udpout): no port that only one can bind
        nest["mavlink_url"] = f"udpout://127.0.0.1:{data['mavlink']['sim_port_base'] + nest['id']}"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    write_users(tmp_path / "users")
    watcher = Watcher(broker.port)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    with fresh_database() as url:
        asyncio.run(_migrate(url))  # the schema once, before the instances start

        def start(name: str) -> None:
            cmd = [sys.executable, "-m", "dronectl", "up", "--no-sim", "--instance-id", name]
            cmd += ["--broker", f"mqtt://127.0.0.1:{broker.port}", "--config", str(config)]
            cmd += ["--audit", url, "--audit-spool", str(tmp_path / f"spool-{name}.sqlite3")]
            cmd += ["--lease-ttl", str(LEASE_TTL_S), "--http-port", str(free_tcp_port())]
            cmd += [
                "--recordings",
                str(tmp_path / name / "rec"),
                "--snapshots",
                str(tmp_path / name / "snap"),
            ]
            cmd += ["--users", str(tmp_path / "users"), "--mavlink-keys", str(tmp_path / "keys")]
            logs[name] = tmp_path / f"{name}.log"
            with logs[name].open("wb") as log:
                processes[name] = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env()
                )

        def status(name: str) -> dict[str, object]:
            return dict(watcher.latest.get(f"{ROOT}/instances/{name}/status") or {})

        def leaders() -> list[str]:
            return [
                n
                for n in ("alpha", "bravo")
                if status(n).get("state") == "online" and status(n).get("automations_leader")
            ]

        def incident_outcomes(incident_id: str = "inc-ha-1") -> list[str]:
            rows = query(
                url, f"SELECT code FROM command_outcomes WHERE command_id = '{incident_id}' ORDER BY seq"
            )
            return [str(r[0]) for r in rows]

        def messages(incident_id: str) -> str:
            rows = query(url, f"SELECT message FROM command_outcomes WHERE command_id = '{incident_id}'")
            return "\n".join(str(r[0]) for r in rows)

        try:
            start("alpha")
            start("bravo")
            paths = list(logs.values())
            _until(
                "both instances online, one of them the automations leader",
                lambda: (
                    all(status(n).get("state") == "online" for n in ("alpha", "bravo"))
                    and len(leaders()) == 1
                ),
                START_TIMEOUT_S,
                paths,
            )
            [leader] = leaders()
            other = "bravo" if leader == "alpha" else "alpha"
            assert status(leader)["nests"] or status(other)["nests"]  # the one nest is held by one of them

            incident = {
                "id": "inc-ha-1",
                "kind": "traffic_accident",
                "position": {"lat": 43.87, "lon": 125.33},
                "priority": 1,
                "reported_at": datetime.now(UTC).isoformat(),
                "actor": {"id": "cc", "role": "commander"},
            }
            publish(broker.port, incident)
            _until("the incident recorded", lambda: "received" in incident_outcomes(), 20, paths)
            _until(
                "the other instance leaving it to the leader",
                lambda: "api.incident_left" in logs[other].read_text(errors="replace"),
                20,
                paths,
            )
            assert "api.incident_left" not in logs[leader].read_text(errors="replace")
            assert query(url, "SELECT count(*) FROM commands WHERE command_id = 'inc-ha-1'") == [(1,)]

            processes[leader].kill()  # kill -9: no goodbye, no lease released
            processes[leader].wait(10)
            # published while nobody leads (the lease runs for LEASE_TTL_S more): the other instance,
            # not leading yet, only records it; the next leader takes it up from the store
            publish(broker.port, {**incident, "id": "inc-ha-2", "reported_at": datetime.now(UTC).isoformat()})
            _until(
                "the last will of the killed leader and the other leading",
                lambda: status(leader).get("state") == "offline" and leaders() == [other],
                LEASE_TTL_S + 30,
                paths,
            )
            assert status(leader)["at"] is None  # the will, not a goodbye
            _until(
                "the incident picked up by the new leader",
                lambda: "resumed" in incident_outcomes(),
                30,
                paths,
            )
            assert "automations.leading" in logs[other].read_text(errors="replace")
            assert query(url, "SELECT count(*) FROM commands WHERE command_id = 'inc-ha-1'") == [(1,)]
            _until(
                "the leaderless incident taken up",
                lambda: "resumed" in incident_outcomes("inc-ha-2"),
                30,
                paths,
            )
            assert "incident.recorded_for_leader" in logs[other].read_text(errors="replace")

            # an incident another instance recorded while this one leads: adopted within a poll or two
            asyncio.run(_record_as_another_instance(url, {**incident, "id": "inc-ha-3"}))
            _until(
                "the recorded incident adopted", lambda: "resumed" in incident_outcomes("inc-ha-3"), 30, paths
            )
            assert "taken up by the automations leader" in messages("inc-ha-3")
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            watcher.close()
