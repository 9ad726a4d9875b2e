"""Dock and payload of a simulated nest over UDP, as a ground station drives them.

The client is a plain asyncio datagram endpoint with its own parser for the project dialect
(no mavutil: its dialect switch is process-global). It listens where the nest pushes its
traffic and sends to the nest's own port.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import DOCK_COMPID, PAYLOAD_COMPID, MAVLinkMessage
from sitl.world import SimWorld, make_sites

NEST_ID = 1
SPEED = 10.0  # simulated seconds per real second: the 18 s cover move takes under 2 s
TIMEOUT_S = 10.0  # real seconds


class GroundStation(asyncio.DatagramProtocol):
    """Receives everything a nest pushes and sends to it, with its own MAVLink parser."""

    def __init__(self, nest_address: tuple[str, int], target_system: int) -> None:
        self.nest_address = nest_address
        self.target_system = target_system
        self.messages: list[MAVLinkMessage] = []
        self.mav = mav.MAVLink(None, srcSystem=255, srcComponent=190)
        self.mav.robust_parsing = True
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: CPython 3.11's selector datagram transport does not derive
        # from asyncio.DatagramTransport, though it is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for msg in self.mav.parse_buffer(data) or []:
            if msg.get_type() != "BAD_DATA":
                self.messages.append(msg)

    def send(self, msg: MAVLinkMessage) -> None:
        assert self.transport is not None
        self.transport.sendto(msg.pack(self.mav), self.nest_address)

    async def wait_for(
        self, predicate: Callable[[MAVLinkMessage], bool], since: int = 0, timeout_s: float = TIMEOUT_S
    ) -> MAVLinkMessage:
        """The first message from index ``since`` on that matches; fails after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                for msg in self.messages[since:]:
                    if predicate(msg):
                        return msg
                await asyncio.sleep(0.01)

    async def command(
        self, component: int, command: int, *params: float, final: bool = True
    ) -> MAVLinkMessage:
        """Send a COMMAND_LONG; its final ACK (or its first one with ``final=False``)."""
        since = len(self.messages)
        padded = [*params, *([0.0] * (7 - len(params)))]
        self.send(mav.MAVLink_command_long_message(self.target_system, component, command, 0, *padded))
        return await self.wait_for(
            lambda m: (
                m.get_type() == "COMMAND_ACK"
                and m.command == command
                and m.get_srcComponent() == component
                and (not final or m.result != mav.MAV_RESULT_IN_PROGRESS)
            ),
            since,
        )


@pytest.fixture
async def nest_and_gcs(port_base: tuple[int, int]) -> AsyncIterator[tuple[SimWorld, GroundStation]]:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base, host="127.0.0.1")
    async with SimWorld(sites, speed=SPEED) as world:
        nest = world.nests[NEST_ID]
        assert nest.site.remote is not None
        loop = asyncio.get_running_loop()
        transport, gcs = await loop.create_datagram_endpoint(
            lambda: GroundStation(nest.site.bind, nest.site.system_id), local_addr=nest.site.remote
        )
        try:
            yield world, gcs
        finally:
            transport.close()


def clip_ack_for(seq: int) -> Callable[[MAVLinkMessage], bool]:
    return lambda m: m.get_type() == "SPEAKER_CLIP_ACK" and m.seq == seq


def of_type(name: str, component: int) -> Callable[[MAVLinkMessage], bool]:
    return lambda m: m.get_type() == name and m.get_srcComponent() == component


async def test_dock_and_payload_over_udp(nest_and_gcs: tuple[SimWorld, GroundStation]) -> None:
    world, gcs = nest_and_gcs
    nest = world.nests[NEST_ID]
    recorder = nest.ctx.recorder

    dock_hb = await gcs.wait_for(of_type("HEARTBEAT", DOCK_COMPID))
    assert dock_hb.type == mav.MAV_TYPE_CHARGING_STATION
    payload_hb = await gcs.wait_for(of_type("HEARTBEAT", PAYLOAD_COMPID))
    assert payload_hb.type == mav.MAV_TYPE_ILLUMINATOR
    await gcs.wait_for(of_type("DOCK_WEATHER", DOCK_COMPID))

    # Open the cover: IN_PROGRESS first, ACCEPTED when it is open (18 simulated seconds).
    first = await gcs.command(DOCK_COMPID, mav.MAV_CMD_DRONECTL_DOCK_COVER, 1, final=False)
    if first.result == mav.MAV_RESULT_IN_PROGRESS:
        final = await gcs.wait_for(
            lambda m: (
                m.get_type() == "COMMAND_ACK"
                and m.command == mav.MAV_CMD_DRONECTL_DOCK_COVER
                and m.result != mav.MAV_RESULT_IN_PROGRESS
            )
        )
        assert final.result == mav.MAV_RESULT_ACCEPTED
    else:
        assert first.result == mav.MAV_RESULT_ACCEPTED  # the site started with the cover open
    status = await gcs.wait_for(
        lambda m: of_type("DOCK_STATUS", DOCK_COMPID)(m) and m.cover_state == mav.DOCK_COVER_STATE_OPEN
    )
    assert status.cover_position == 100
    assert nest.cover_open()
    assert [r.kind for r in recorder.all("cover.open")][-1] == "cover.opened"

    # Charge the drone standing on the pad.
    on_pad = nest.on_pad()
    ack = await gcs.command(DOCK_COMPID, mav.MAV_CMD_DRONECTL_DOCK_CHARGER, 1)
    if on_pad:
        assert ack.result == mav.MAV_RESULT_ACCEPTED
        since = len(gcs.messages)
        await gcs.command(DOCK_COMPID, mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_DOCK_STATUS)
        status = await gcs.wait_for(of_type("DOCK_STATUS", DOCK_COMPID), since)
        assert status.drone_in_dock == 1
        assert status.charger_state in (mav.DOCK_CHARGER_STATE_CHARGING, mav.DOCK_CHARGER_STATE_FULL)
        assert recorder.all("charger.on")
    else:
        assert ack.result == mav.MAV_RESULT_DENIED

    # Speak a warning.
    text = "前方路面结冰，请减速慢行"
    since = len(gcs.messages)
    gcs.send(
        mav.MAVLink_speaker_play_text_message(
            gcs.target_system, PAYLOAD_COMPID, 501, 95, 0, b"zh", text.encode()
        )
    )
    ack = await gcs.wait_for(
        lambda m: m.get_type() == "COMMAND_ACK" and m.command == mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP, since
    )
    assert (ack.result, ack.result_param2) == (mav.MAV_RESULT_ACCEPTED, 501)
    playing = await gcs.wait_for(of_type("SPEAKER_STATUS", PAYLOAD_COMPID), since)
    assert (playing.state, playing.volume) == (mav.SPEAKER_STATE_PLAYING, 95)
    spoken = recorder.all("speaker.text")[-1]
    assert spoken.data["text"] == text and spoken.data["lang"] == "zh"
    await gcs.wait_for(
        lambda m: of_type("SPEAKER_STATUS", PAYLOAD_COMPID)(m) and m.state == mav.SPEAKER_STATE_IDLE, since
    )
    assert recorder.all("speaker.finished")[-1].data["reason"] == "done"

    # Upload a recorded clip, chunk by chunk, each waiting for its ack; then play it.
    rate_hz = 8_000
    pcm = b"".join(
        struct.pack("<h", round(9000 * math.sin(2 * math.pi * 600 * i / rate_hz)))
        for i in range(rate_hz // 2)
    )
    parts = [pcm[i : i + 200] for i in range(0, len(pcm), 200)]
    for seq, part in enumerate(parts):
        since = len(gcs.messages)
        gcs.send(
            mav.MAVLink_speaker_clip_data_message(
                gcs.target_system,
                PAYLOAD_COMPID,
                77,
                seq,
                len(parts),
                rate_hz,
                len(part),
                part.ljust(200, b"\0"),
            )
        )
        clip_ack = await gcs.wait_for(clip_ack_for(seq), since)
        assert clip_ack.result == mav.MAV_RESULT_ACCEPTED
    ack = await gcs.command(PAYLOAD_COMPID, mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP, 77, 0, -1)
    assert ack.result == mav.MAV_RESULT_ACCEPTED
    played = recorder.all("speaker.clip")[-1]
    assert played.data["clip_id"] == 77
    assert played.data["duration_s"] == pytest.approx(0.5)
    assert played.data["pcm_sha256"] == hashlib.sha256(pcm).hexdigest()

    # Strobe, then the police pattern.
    ack = await gcs.command(PAYLOAD_COMPID, mav.MAV_CMD_DO_ILLUMINATOR_CONFIGURE, 1, 100, 0.5, 30)
    assert ack.result == mav.MAV_RESULT_ACCEPTED
    since = len(gcs.messages)
    ack = await gcs.command(PAYLOAD_COMPID, mav.MAV_CMD_DRONECTL_LIGHT_SET, mav.LIGHT_PATTERN_POLICE, 80)
    assert ack.result == mav.MAV_RESULT_ACCEPTED
    light = await gcs.wait_for(
        lambda m: of_type("LIGHT_STATUS", PAYLOAD_COMPID)(m) and m.pattern == mav.LIGHT_PATTERN_POLICE, since
    )
    assert light.brightness == 80
    assert [r.data["pattern"] for r in recorder.all("light")][-2:] == ["strobe", "police"]

    # A bad pattern is refused with a reason.
    since = len(gcs.messages)
    ack = await gcs.command(PAYLOAD_COMPID, mav.MAV_CMD_DRONECTL_LIGHT_SET, 9, 80)
    assert ack.result == mav.MAV_RESULT_DENIED
    await gcs.wait_for(lambda m: m.get_type() == "STATUSTEXT" and "pattern" in m.text, since)

    # Close the cover over the drone.
    ack = await gcs.command(DOCK_COMPID, mav.MAV_CMD_DRONECTL_DOCK_COVER, 0)
    assert ack.result == mav.MAV_RESULT_ACCEPTED
    assert recorder.all("cover.")[-1].kind == "cover.closed"
