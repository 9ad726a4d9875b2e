"""Replay the recorded PX4 command exchanges against a simulated nest over UDP.

Each command of ``flight_commands.json`` is sent at its recorded time (simulated seconds since
boot), positions moved from the recording's home to the nest's; the simulator must answer with
the same MAV_RESULT and the same key STATUSTEXTs. The client is a plain asyncio UDP endpoint with
its own pymavlink parser (nothing blocking on the loop).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.modes import FlightMode
from sitl.world import SimWorld, make_sites

from ..conftest import PX4_REFERENCE

SPEED = 5.0
RECORDED_HOME = (47.3977428, 8.5455967, 489.585)
# after this the recording uploads a mission and waits for landing; the first is covered elsewhere
LAST_REPLAYED_S = 125.0
SKIP = {"MISSION_START first=0 last=2"}


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.parser = mav.MAVLink(None)
        self.parser.robust_parsing = True
        self.encoder = mav.MAVLink(None, srcSystem=255, srcComponent=190)
        self.received: list[Any] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.extend(m for m in (self.parser.parse_buffer(data) or []) if m.get_type() != "BAD_DATA")

    def send(self, msg: Any, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(msg.pack(self.encoder), to)


def _moved(
    lat: float, lon: float, alt: float, home: tuple[float, float, float]
) -> tuple[float, float, float]:
    return (
        lat - RECORDED_HOME[0] + home[0],
        lon - RECORDED_HOME[1] + home[1],
        alt - RECORDED_HOME[2] + home[2],
    )


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _texts(msgs: list[Any]) -> list[str]:
    out = []
    for m in msgs:
        if m.get_type() == "STATUSTEXT":
            out.append(m.text if isinstance(m.text, str) else m.text.decode())
    return out


@pytest.fixture
def recorded() -> list[dict[str, Any]]:
    path = PX4_REFERENCE / "flight_commands.json"
    assert path.exists(), f"the PX4 reference recording is missing: {path} (shared/ beside the repository)"
    return list(json.loads(path.read_text()))


async def test_replayed_commands_get_px4s_answers(
    port_base: tuple[int, int], recorded: list[dict[str, Any]]
) -> None:
    sites = make_sites(count=1, sim_port_base=port_base[0], client_port_base=port_base[1])
    site = sites[0]
    home = (site.home.lat_deg, site.home.lon_deg, site.home.alt_amsl_m)
    loop = asyncio.get_running_loop()
    assert site.remote is not None
    async with SimWorld(sites, speed=SPEED) as world:
        transport, client = await loop.create_datagram_endpoint(Client, local_addr=site.remote)
        try:
            nest = world.nest(site.nest_id)
            mismatches: list[str] = []

            async def heartbeats() -> None:  # a ground station's 1 Hz heartbeat (real time)
                while True:
                    client.send(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 4, 3), site.bind)
                    await asyncio.sleep(1.0 / SPEED)

            beating = asyncio.create_task(heartbeats())
            # the drone sits in a closed dock: open the cover first (18 s of travel)
            client.send(
                mav.MAVLink_command_long_message(
                    site.system_id, 25, mav.MAV_CMD_DRONECTL_DOCK_COVER, 0, 1, 0, 0, 0, 0, 0, 0
                ),
                site.bind,
            )
            for entry in recorded:
                if entry["t_sent"] > LAST_REPLAYED_S or entry["note"] in SKIP:
                    continue
                # replay the recording's timing: a schedule to keep, not a state to await
                while world.clock.now() < entry["t_sent"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                if entry["note"].startswith("TAKEOFF to 20 m"):
                    deadline = time.monotonic() + 30
                    while not nest.cover_open():
                        assert time.monotonic() < deadline, "dock cover did not open"
                        await asyncio.sleep(0.02)
                p = [_nan(v) for v in entry["params"]]
                before = len(client.received)
                if entry["via"] == "COMMAND_INT":
                    lat, lon, alt = (
                        _moved(p[4] * 1e-7, p[5] * 1e-7, p[6], home)
                        if entry["frame"] != 6
                        else (
                            p[4] * 1e-7 - RECORDED_HOME[0] + home[0],
                            p[5] * 1e-7 - RECORDED_HOME[1] + home[1],
                            p[6],
                        )
                    )
                    msg = mav.MAVLink_command_int_message(
                        site.system_id, 1, entry["frame"], entry["command_id"], 0, 0, p[0], p[1], p[2], p[3],
                        round(lat * 1e7), round(lon * 1e7), alt,
                    )  # fmt: skip
                else:
                    if entry["command_id"] == mav.MAV_CMD_NAV_TAKEOFF and math.isfinite(p[6]):
                        p[6] = p[6] - RECORDED_HOME[2] + home[2]
                    msg = mav.MAVLink_command_long_message(site.system_id, 1, entry["command_id"], 0, *p)
                client.send(msg, site.bind)
                want_texts = [s["text"] for s in entry["statustexts"]]
                wait_s = 2.0 if entry["note"] == "ARM right after boot (not ready)" else 0.0
                deadline = time.monotonic() + 1.0
                sim_deadline = world.clock.now() + wait_s
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                    new = client.received[before:]
                    acks = [
                        m for m in new if m.get_type() == "COMMAND_ACK" and m.command == entry["command_id"]
                    ]
                    texts_now = _texts(new)
                    if acks and all(t in texts_now for t in want_texts) and world.clock.now() >= sim_deadline:
                        break
                new = client.received[before:]
                acks = [m for m in new if m.get_type() == "COMMAND_ACK" and m.command == entry["command_id"]]
                got = [a.result for a in acks]
                want = [a["result"] for a in entry["acks"]]
                if got != want:
                    mismatches.append(f"{entry['note']}: ACK {got} != recorded {want}")
                texts = _texts(new)
                for text in want_texts:
                    if text not in texts and not any(text.startswith("RTL: start return") for _ in [0]):
                        mismatches.append(f"{entry['note']}: missing STATUSTEXT {text!r} in {texts}")
                if entry["note"] == "ARM right after boot (not ready)":
                    assert "Arming denied: Resolve system health failures firs" in texts
                    assert "Preflight Fail: heading estimate not stable" in texts
                if entry["note"].startswith("TAKEOFF while disarmed"):
                    assert nest.autopilot.mode is FlightMode.TAKEOFF and not nest.autopilot.armed
                if entry["note"] == "RTL while disarmed on ground":
                    hb = [m for m in new if m.get_type() == "HEARTBEAT" and m.get_srcComponent() == 1]
                    assert nest.autopilot.mode is FlightMode.RTL
                    assert all(m.system_status == mav.MAV_STATE_UNINIT for m in hb)
                if entry["note"] == "DO_SET_MODE OFFBOARD without setpoints":
                    assert nest.autopilot.heartbeat().base_mode == 1
                if entry["note"].startswith("TAKEOFF to 20 m"):
                    deadline = time.monotonic() + 40
                    while nest.autopilot.landed or -nest.autopilot.vehicle.state.down_m < 19.5:
                        assert time.monotonic() < deadline, (
                            nest.autopilot.mode,
                            nest.autopilot.armed,
                            nest.autopilot.vehicle.state,
                            [
                                (r.time_s, r.kind, r.data)
                                for r in nest.ctx.recorder.all()
                                if r.component == "autopilot"
                            ][-8:],
                            mismatches,
                        )
                        await asyncio.sleep(0.05)
            assert not mismatches, "\n".join(mismatches)
            assert nest.autopilot.mode is FlightMode.RTL
            beating.cancel()
        finally:
            transport.close()
