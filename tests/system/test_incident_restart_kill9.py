"""kill -9 of the controller while it serves incidents (issue 7). The simulator and the controller
(with its API side and dispatcher: ``controller_process --incidents``) run as separate processes.
The first life has one incident on scene (priority 1, nest 3 over it) and one waiting (priority 4:
queued behind it or proposed); it is killed; the second life picks both up from the audit store:
the first is followed again, or, when PX4 already turned home on losing its ground station, closed
with that reason; the second is planned again and waits for a commander, as before. Nothing is
launched twice and no incident is recorded twice."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from dronectl.audit import AuditStore
from dronectl.domain.geo import GeoPoint, destination
from tests.system.test_restart_kill9 import NEST, SPEED, child, free_tcp_port, takeoffs, write_config

WAITING = ("queued", "proposed")


def about(incident_id: str, *states: str) -> Any:
    return lambda line: line.get("incident") == incident_id and line.get("state") in states


async def test_kill_9_with_incidents_then_restart_picks_them_up(
    port_base: tuple[int, int], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "city.yaml", port_base)
    audit_path = tmp_path / "audit.sqlite3"
    control_port = free_tcp_port()
    sim_args = [
        "-m",
        "sitl",
        "--speed",
        str(SPEED),
        "--config",
        str(config),
        "--control-port",
        str(control_port),
    ]
    controller_args = [
        "-m", "tests.system.controller_process", "--config", str(config), "--audit", str(audit_path),
        "--speed", str(SPEED), "--incidents",
    ]  # fmt: skip

    async with child(sim_args, tmp_path / "sim.log") as sim:
        await sim.wait_line(lambda line: line.get("id") == NEST, 30)
        home = GeoPoint(float(sim.lines[0]["lat"]), float(sim.lines[0]["lon"]))
        scene_a, scene_b = destination(home, 90.0, 400.0), destination(home, 200.0, 300.0)

        # first life: incident A on scene, incident B waiting; kill -9
        async with child(controller_args, tmp_path / "controller-1.log") as first:
            await first.wait_line(lambda line: line.get("phase") in ("ready", "charging"), 30)
            assert (await first.send({"op": "wait_sensors", "nest": NEST}))["ok"]
            a = {
                "op": "incident",
                "id": "inc-a",
                "lat": scene_a.lat_deg,
                "lon": scene_a.lon_deg,
                "priority": 1,
            }
            assert (await first.send(a))["ok"]
            await first.wait_line(about("inc-a", "on_scene"), 90)
            b = {
                "op": "incident",
                "id": "inc-b",
                "lat": scene_b.lat_deg,
                "lon": scene_b.lon_deg,
                "priority": 4,
            }
            assert (await first.send(b))["ok"]
            await first.wait_line(about("inc-b", *WAITING), 10)
            first.proc.send_signal(signal.SIGKILL)
            assert await first.proc.wait() == -signal.SIGKILL

        async with await AuditStore.open(audit_path) as audit:
            assert [r["command_id"] for r in await audit.open_incidents()] == ["inc-a", "inc-b"]
        assert await takeoffs(control_port) == 1

        # second life: both picked up from the store
        async with child(controller_args, tmp_path / "controller-2.log") as second:
            resumed_a = await second.wait_line(about("inc-a", "resumed"), 60)
            resumed_b = await second.wait_line(about("inc-b", "resumed"), 60)
            assert "planned again" in resumed_b["message"]
            if "still over the scene" in resumed_a["message"]:  # followed: home now, and it closes
                assert resumed_a["nest"] == NEST
                if second.phase()["phase"] != "returning":
                    reply = await second.send({"op": "return", "nest": NEST})
                    assert reply["ok"] or second.phase()["phase"] == "returning", reply
                closed = await second.wait_line(about("inc-a", "closed"), 60)
                assert "left the scene" in closed["message"]
            else:  # PX4 had already turned home (data-link loss), or even landed: closed, saying so
                closed = await second.wait_line(about("inc-a", "closed"), 10)
                assert "closed after a controller restart" in closed["message"]
                gone = (
                    "left the scene (returning)",
                    "left the scene (landing)",
                    "no longer flying",
                    "no drone flies",
                )
                assert any(why in closed["message"] for why in gone), closed["message"]
            await second.wait_line(lambda line: line.get("phase") == "charging", 120)
            # B is planned again: waiting for a commander (priority 4), never launched on its own
            b_lines = [line for line in second.lines if line.get("incident") == "inc-b"]
            assert b_lines[0]["state"] == "resumed"
            await second.wait_line(about("inc-b", *WAITING), 30)
            assert await takeoffs(control_port) == 1

        async with await AuditStore.open(audit_path) as audit:
            rows = {r["command_id"]: r for r in await audit.commands() if r["method"] == "incident"}
            still_open = [r["command_id"] for r in await audit.open_incidents()]
        assert sorted(rows) == ["inc-a", "inc-b"]  # one row each, across both lives
        assert rows["inc-a"]["outcomes"][-1]["outcome"] == "succeeded"
        assert [o["code"] for o in rows["inc-a"]["outcomes"]].count("resumed") == 1
        assert still_open == ["inc-b"]
