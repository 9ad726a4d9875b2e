"""Shared set-up for the system tests with several instances on PostgreSQL (issue 14): a city
config every instance can use at once (each dials the simulated docks, udpout, binding no fixed
port), the command line of one instance (tests/system/controller_process.py), the leases as the
database holds them, and the take-offs the simulator saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapters.mavlink import dronectl_v20 as mav
from dronectl.audit.leases import LeaseBook
from dronectl.domain.config import default_config_path
from sitl.control import request


def shared_config(path: Path, port_base: tuple[int, int], nest_ids: list[int]) -> Path:
    """The shipped city with only ``nest_ids``, each reached by dialling the simulated dock."""
    data = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))
    data["nests"] = [n for n in data["nests"] if n["id"] in nest_ids]
    data["mavlink"] = {"host": "127.0.0.1", "sim_port_base": port_base[0], "client_port_base": port_base[1]}
    for nest in data["nests"]:
        nest["mavlink_url"] = f"udpout://127.0.0.1:{port_base[0] + nest['id']}"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def instance_args(
    config: Path, url: str, name: str, speed: float, lease_ttl_s: float, spool: Path | None = None
) -> list[str]:
    """One instance of several on the PostgreSQL store at ``url``, as a child process (with an
    outage spool file, ``spool``, as ``dronectl up`` has)."""
    return [
        "-m", "tests.system.controller_process", "--config", str(config), "--audit", url,
        "--speed", str(speed), "--instance-id", name, "--lease-ttl", str(lease_ttl_s),
        *(["--audit-spool", str(spool)] if spool is not None else []),
    ]  # fmt: skip


async def lease_owners(url: str) -> dict[int, str]:
    """Each nest's holder of a valid (unexpired) lease, by the database's clock."""
    book = await LeaseBook.open(url)
    try:
        snap = await book.snapshot()
    finally:
        await book.close()
    return {n: lease.owner for n, lease in snap.leases.items() if lease.valid_at(snap.now_unix_s)}


async def records_at(control_port: int, nest_id: int, kind: str) -> int:
    """How many records of ``kind`` the simulated nest made (take-offs, lights set, ...)."""
    reply = await request({"op": "records", "nest": nest_id, "kind": kind}, port=control_port)
    return sum(1 for r in reply["records"] if r["kind"] == kind)


async def takeoffs_at(control_port: int, nest_id: int) -> int:
    """Take-offs the simulated nest recorded."""
    return await records_at(control_port, nest_id, "takeoff")


# what any MAVLink client sends to learn, not to act (MAVSDK asks these of every nest it hears)
READ_ONLY_COMMANDS = {
    mav.MAV_CMD_REQUEST_MESSAGE,
    mav.MAV_CMD_SET_MESSAGE_INTERVAL,
    mav.MAV_CMD_GET_HOME_POSITION,
    mav.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES,
    mav.MAV_CMD_REQUEST_CAMERA_INFORMATION,
    mav.MAV_CMD_REQUEST_CAMERA_SETTINGS,
    mav.MAV_CMD_REQUEST_STORAGE_INFORMATION,
    mav.MAV_CMD_REQUEST_CAMERA_CAPTURE_STATUS,
    mav.MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION,
    mav.MAV_CMD_REQUEST_VIDEO_STREAM_STATUS,
    mav.MAV_CMD_REQUEST_PROTOCOL_VERSION,
    mav.MAV_CMD_REQUEST_FLIGHT_INFORMATION,
}


async def acting_commands(control_port: int, nest_id: int) -> list[dict[str, Any]]:
    """What the simulated nest received that acts on it (commands, modes, mission and parameter
    writes), each with the address it came from (``peer``)."""
    reply = await request({"op": "commands", "nest": nest_id}, port=control_port)
    return [c for c in reply["commands"] if c["command"] not in READ_ONLY_COMMANDS]
