"""Per link, the messages a simulated nest's autopilot streams against real PX4 SITL's recording.

``summary.txt`` of the recording lists, per link, on the ground and in flight, every message type
PX4 sent and its rate. A nest with a GCS link (``sitl.gcs``) must send on it the recorded GCS
link's periodic set at its rates; its main link (dronectl's) keeps PX4's Normal-mode defaults
(``telemetry.DEFAULT_RATES_HZ``), a subset of what PX4's API link sends, and no more (the
service's CPU per nest). Both links are listened to over UDP while the drone sits ready on the
ground, then while it hovers after a takeoff commanded over the GCS link.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot import telemetry
from sitl.autopilot.px4 import Command
from sitl.dock import DockConfig, SimDock
from sitl.world import SimWorld, make_sites

from ..conftest import PX4_REFERENCE, allocate_port_base

WINDOW_S = 4.0  # real seconds of counting per phase (speed 1: PX4's real rates)
HIGH_RATE_HZ = 3.0  # recorded rates at or above this are checked within RATE_TOLERANCE
RATE_TOLERANCE = 0.25
REQUIRED_FROM_HZ = 0.8  # a type recorded at this rate or more must appear within WINDOW_S

# Sent once, on request or on an event, never as a stream: not part of a link's periodic set.
EVENT_MESSAGES = {
    "AUTOPILOT_VERSION", "PARAM_VALUE", "COMMAND_ACK", "COMMAND_LONG", "STATUSTEXT", "EVENT",
    "MISSION_ACK", "MISSION_COUNT", "MISSION_ITEM_INT", "MISSION_REQUEST_INT", "MISSION_ITEM_REACHED",
    "GPS_GLOBAL_ORIGIN",
}  # fmt: skip
# Recorded on PX4's GCS link but not sent by the simulator: messages of MAVLink's development
# dialect that the project's dialect (adapters/mavlink/dronectl.xml on common.xml) does not define,
# so nothing in the repository can encode them. QGroundControl and MAVSDK work without them
# (CURRENT_MODE: the HEARTBEAT's custom_mode says the same; the others are informational).
GCS_LINK_EXCEPTIONS = {
    "CURRENT_MODE",
    "CURRENT_EVENT_SEQUENCE",
    "LINK_NODE_STATUS",
    "TIME_ESTIMATE_TO_TARGET",
}
# Recorded on PX4's API (Onboard) link but not on a nest's main link: that link is dronectl's, and
# the service must not pay for more than PX4's Normal-mode defaults there (bench/controller_cpu.py;
# the issue on CPU per nest). A ground station wanting PX4's GCS-link set uses the GCS link.
MAIN_LINK_EXCEPTIONS = {
    "HIGHRES_IMU", "ODOMETRY", "DISTANCE_SENSOR", "TIMESYNC", "ATTITUDE_TARGET", "POSITION_TARGET_LOCAL_NED",
    "POSITION_TARGET_GLOBAL_INT", "SERVO_OUTPUT_RAW", "ESTIMATOR_STATUS", "LINK_NODE_STATUS",
    "OPEN_DRONE_ID_LOCATION", "OPEN_DRONE_ID_SYSTEM", "PING", "SCALED_PRESSURE", "SYSTEM_TIME",
    "CURRENT_MODE", "TIME_ESTIMATE_TO_TARGET", "VIBRATION", "CURRENT_EVENT_SEQUENCE",
}  # fmt: skip

_SECTION = re.compile(r"^(GCS link|API/offboard link) \(udp [^)]*\),? (in flight|on ground)", re.M)
_ROW = re.compile(r"^  ([A-Z0-9_]+)\s+comp\[1\]\s+\d+\s+([\d.]+) Hz", re.M)


def recorded_rates() -> dict[tuple[str, str], dict[str, float]]:
    """{("GCS link" | "API/offboard link", "in flight" | "on ground"): {type: Hz}} from summary.txt."""
    path = PX4_REFERENCE / "summary.txt"
    assert path.exists(), f"the PX4 reference recording is missing: {path}"
    text = path.read_text()
    heads = list(_SECTION.finditer(text))
    out: dict[tuple[str, str], dict[str, float]] = {}
    for head, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : nxt.start() if nxt is not None else text.index("2. HEARTBEAT")]
        out[(head.group(1), head.group(2))] = {m.group(1): float(m.group(2)) for m in _ROW.finditer(body)}
    assert len(out) == 4 and all(out.values()), out.keys()
    return out


class Listener(asyncio.DatagramProtocol):
    """Counts the autopilot's (component 1) messages by type; keeps the latest of each."""

    def __init__(self) -> None:
        self.parser = mav.MAVLink(None)
        self.parser.robust_parsing = True
        self.counts: Counter[str] = Counter()
        self.latest: dict[str, Any] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for m in self.parser.parse_buffer(data) or []:
            if m.get_type() != "BAD_DATA" and m.get_srcComponent() == 1:
                self.counts[m.get_type()] += 1
                self.latest[m.get_type()] = m


async def wait_for(cond: Any, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def window(listeners: dict[str, Listener]) -> dict[str, dict[str, float]]:
    """Rates (Hz) per link over WINDOW_S real seconds: a measurement, not a wait for state."""
    for lis in listeners.values():
        lis.counts.clear()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(WINDOW_S)
    elapsed = loop.time() - start
    return {name: {t: n / elapsed for t, n in lis.counts.items()} for name, lis in listeners.items()}


def check_gcs_link(seen: dict[str, float], recorded: dict[str, float], phase: str) -> None:
    periodic = {t: hz for t, hz in recorded.items() if t not in EVENT_MESSAGES}
    required = {t for t, hz in periodic.items() if hz >= REQUIRED_FROM_HZ} - GCS_LINK_EXCEPTIONS
    sent = set(seen) - EVENT_MESSAGES
    assert required <= sent, f"{phase}: GCS link lacks {sorted(required - sent)}"
    everything_recorded = set(recorded) | EVENT_MESSAGES
    assert sent <= everything_recorded, (
        f"{phase}: GCS link sends what PX4 did not: {sent - everything_recorded}"
    )
    for t, hz in periodic.items():
        if hz >= HIGH_RATE_HZ and t not in GCS_LINK_EXCEPTIONS:
            assert abs(seen.get(t, 0.0) - hz) <= RATE_TOLERANCE * hz, (
                f"{phase}: {t} at {seen.get(t)} Hz, PX4 {hz}"
            )


def check_main_link(seen: dict[str, float], recorded_api: dict[str, float], phase: str) -> None:
    expected = {mav.mavlink_map[i].msgname: hz for i, hz in telemetry.DEFAULT_RATES_HZ.items()}
    sent = set(seen) - EVENT_MESSAGES
    assert sent == set(expected), f"{phase}: main link sends {sorted(sent ^ set(expected))} unlike its table"
    periodic_api = {t for t in recorded_api if t not in EVENT_MESSAGES}
    assert sent <= periodic_api, (
        f"{phase}: main link sends what PX4's API link does not: {sent - periodic_api}"
    )
    missing = {t for t in periodic_api if recorded_api[t] >= 0.3} - sent
    assert missing <= MAIN_LINK_EXCEPTIONS, (
        f"{phase}: main link lacks {sorted(missing - MAIN_LINK_EXCEPTIONS)}"
    )
    for t, hz in expected.items():  # no more than before: the service's cost
        if hz >= HIGH_RATE_HZ:
            assert seen[t] <= hz * (1 + RATE_TOLERANCE), f"{phase}: main link {t} at {seen[t]} Hz > {hz}"


@pytest.mark.timeout(120)
async def test_each_link_streams_what_px4s_link_does() -> None:
    rec = recorded_rates()
    gcs_remote = allocate_port_base()
    sites = make_sites(
        count=1,
        sim_port_base=allocate_port_base(),
        client_port_base=allocate_port_base(),
        host="127.0.0.1",
        gcs_port_base=allocate_port_base(),
        gcs_remote_port=gcs_remote,
    )
    site = sites[0]
    assert site.remote is not None and site.gcs_remote is not None and site.gcs_bind is not None
    loop = asyncio.get_running_loop()
    main, gcs = Listener(), Listener()
    t_main, _ = await loop.create_datagram_endpoint(lambda: main, local_addr=site.remote)
    t_gcs, _ = await loop.create_datagram_endpoint(lambda: gcs, local_addr=site.gcs_remote)
    world = SimWorld(sites, speed=1.0)
    nest = world.nest(site.nest_id)
    # an open dock so the drone can take off without the cover's 18 s of travel
    nest.dock = SimDock(nest.ctx, nest.dock.outbox, drone=nest, config=DockConfig(start_cover_open=True))
    nest.components[1] = nest.dock
    links = {"main": main, "gcs": gcs}
    encoder = mav.MAVLink(None, srcSystem=255, srcComponent=190)

    def to_gcs_link(command: int, *params: float) -> None:
        p = [*params] + [0.0] * (7 - len(params))
        msg = mav.MAVLink_command_long_message(site.system_id, 1, command, 0, *p)
        t_gcs.sendto(msg.pack(encoder), site.gcs_bind)

    try:
        async with world:

            def ready() -> bool:
                hb = gcs.latest.get("HEARTBEAT")
                return hb is not None and hb.system_status == mav.MAV_STATE_STANDBY

            await wait_for(ready, 30, "the autopilot to be ready to arm (STANDBY)")
            ground = await window(links)
            check_gcs_link(ground["gcs"], rec[("GCS link", "on ground")], "on ground")
            check_main_link(ground["main"], rec[("API/offboard link", "on ground")], "on ground")

            to_gcs_link(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1)
            to_gcs_link(
                mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, float("nan"), float("nan"), float("nan"), float("nan")
            )

            def hovering() -> bool:
                ess = gcs.latest.get("EXTENDED_SYS_STATE")
                return ess is not None and ess.landed_state == mav.MAV_LANDED_STATE_IN_AIR

            await wait_for(hovering, 30, "the drone to be in the air after a takeoff over the GCS link")
            flight = await window(links)
            check_gcs_link(flight["gcs"], rec[("GCS link", "in flight")], "in flight")
            check_main_link(flight["main"], rec[("API/offboard link", "in flight")], "in flight")
            # content from the simulated state, not constants: the setpoint is the takeoff height
            target = gcs.latest["POSITION_TARGET_GLOBAL_INT"]
            assert target.coordinate_frame == mav.MAV_FRAME_GLOBAL_INT
            assert target.alt == pytest.approx(site.home.alt_amsl_m + 2.5, abs=0.5)
            assert gcs.latest["SERVO_OUTPUT_RAW"].servo1_raw > 1000
    finally:
        t_main.close()
        t_gcs.close()


async def test_set_message_interval_on_the_gcs_link_leaves_the_main_link_alone() -> None:
    sites = make_sites(
        count=1, sim_port_base=allocate_port_base(), client_port_base=allocate_port_base(),
        host="127.0.0.1", gcs_port_base=allocate_port_base(), gcs_remote_port=allocate_port_base(),
    )  # fmt: skip
    world = SimWorld(sites, speed=1.0)
    ap = world.nest(sites[0].nest_id).autopilot
    assert ap.gcs_streams is not None
    ap.from_gcs_link = True
    ap._cmd_set_interval(  # as the GCS link's dispatch hands it over
        Command(
            mav.MAV_CMD_SET_MESSAGE_INTERVAL, (mav.MAVLINK_MSG_ID_ATTITUDE, 1e6, 0, 0, 0, 0, 0),
            False, 0, 0, 0, 255, 190, 1,
        )
    )  # fmt: skip
    ap.from_gcs_link = False
    assert ap.gcs_streams.interval_us(mav.MAVLINK_MSG_ID_ATTITUDE) == 1_000_000
    assert ap.streams.interval_us(mav.MAVLINK_MSG_ID_ATTITUDE) == int(1e6 / 15)
