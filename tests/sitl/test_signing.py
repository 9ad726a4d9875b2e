"""The simulated nest signs as PX4 does: no key, no signing; SETUP_SIGNING provisions a key kept
0600 under the state directory; with a key, unsigned, wrongly signed and replayed messages are
dropped (a spoofer on the same host cannot arm, move or switch the mode), what it sends is signed,
and only a request signed with the current key clears it."""

from __future__ import annotations

import asyncio
import socket
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.signing import Reject, Signer, Verifier, new_key
from sitl.control import nest_state
from sitl.nest import SimNest
from sitl.signing import key_path
from sitl.world import SimWorld, make_sites
from tests.adapters.fake_peer import wait_until

GCS = (245, 26)


class Peer:
    """A UDP socket with its own encoder and parser, optionally signing what it sends."""

    def __init__(self, nest_addr: tuple[str, int], port: int = 0, key: bytes | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.nest_addr = nest_addr
        self.encoder = mav.MAVLink(None, srcSystem=GCS[0], srcComponent=GCS[1])
        self.parser = mav.MAVLink(None)
        self.parser.robust_parsing = True
        self.signer = Signer(key, link_id=3) if key is not None else None
        self.sent: list[bytes] = []

    def send(self, msg: mav.MAVLink_message) -> bytes:
        frame = msg.pack(self.encoder)
        if self.signer is not None:
            signed = self.signer.sign(frame)
            assert signed is not None
            frame = signed
        self.send_raw(frame)
        return frame

    def send_raw(self, frame: bytes) -> None:
        self.sent.append(frame)
        self.sock.sendto(frame, self.nest_addr)

    async def wait_for(
        self, predicate: Callable[[mav.MAVLink_message], bool], timeout_s: float = 10.0
    ) -> mav.MAVLink_message:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            while True:
                data = await loop.sock_recv(self.sock, 65535)
                for msg in self.parser.parse_buffer(data) or []:
                    if msg.get_type() != "BAD_DATA" and predicate(msg):
                        return msg

    def drain(self) -> list[mav.MAVLink_message]:
        out: list[mav.MAVLink_message] = []
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return out
            out += [m for m in self.parser.parse_buffer(data) or [] if m.get_type() != "BAD_DATA"]

    def close(self) -> None:
        self.sock.close()


def cmd(command: int, *params: float, component: int = 1) -> mav.MAVLink_command_long_message:
    p = [*params, 0, 0, 0, 0, 0, 0, 0][:7]
    return mav.MAVLink_command_long_message(1, component, command, 0, *p)


def setup_signing(key: bytes, timestamp: int = 1) -> mav.MAVLink_setup_signing_message:
    return mav.MAVLink_setup_signing_message(1, 1, list(key), timestamp)


@pytest.fixture
async def world(port_base: tuple[int, int], tmp_path: Path) -> AsyncIterator[SimWorld]:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    async with SimWorld(sites, state_dir=tmp_path) as w:
        yield w


def gcs(world: SimWorld, key: bytes | None = None) -> Peer:
    site = world.nest(1).site
    assert site.remote is not None
    return Peer(site.bind, site.remote[1], key)


async def provision(world: SimWorld, key: bytes) -> None:
    nest = world.nest(1)
    trusted = gcs(world)
    try:
        trusted.send(setup_signing(key))
        await wait_until(lambda: nest.link.signing.enabled)
    finally:
        trusted.close()


async def test_no_key_no_signing_then_setup_signing_provisions_a_0600_key(
    world: SimWorld, tmp_path: Path
) -> None:
    nest = world.nest(1)
    client = gcs(world)
    try:
        hb = await client.wait_for(lambda m: m.get_type() == "HEARTBEAT")
        assert not hb.get_signed() and not nest.link.signing.enabled
        key = new_key()
        client.send(setup_signing(key))
        await wait_until(lambda: nest.link.signing.enabled)
        path = key_path(tmp_path, 1)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes()[:32] == key
        # From now on everything the nest sends is signed with the key.
        verifier = Verifier(key)
        client.drain()
        hb = await client.wait_for(lambda m: m.get_type() == "HEARTBEAT" and m.get_srcComponent() == 1)
        assert verifier.check(hb.get_msgbuf()) is None
    finally:
        client.close()


async def test_a_spoofer_cannot_arm_reposition_or_switch_mode_a_signed_nest(world: SimWorld) -> None:
    key = new_key()
    await provision(world, key)
    nest = world.nest(1)
    before_ned = nest.autopilot.position_ned_m()
    mode_before = nest.autopilot.mode
    spoofer = Peer(nest.site.bind)  # same host, its own port, no key
    try:
        spoofer.send(cmd(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1, 21196))  # forced arm
        spoofer.send(
            mav.MAVLink_command_int_message(
                1,
                1,
                mav.MAV_FRAME_GLOBAL,
                mav.MAV_CMD_DO_REPOSITION,
                0,
                0,
                -1,
                1,
                0,
                0,
                int(43.9e7),
                int(125.3e7),
                80.0,
            )
        )
        spoofer.send(cmd(mav.MAV_CMD_DO_SET_MODE, 1, 4, 3))  # AUTO.LOITER... any mode
        spoofer.send(mav.MAVLink_set_mode_message(1, 1, 4 << 16))
        await wait_until(lambda: nest.link.signing.rejected[Reject.UNSIGNED] >= 4)
        # A signed request from the trusted side is still answered: the link works.
        trusted = gcs(world, key)
        try:
            trusted.send(cmd(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION))
            await trusted.wait_for(lambda m: m.get_type() == "AUTOPILOT_VERSION")
        finally:
            trusted.close()
        assert not nest.autopilot.armed
        assert nest.autopilot.mode is mode_before
        assert nest.autopilot.position_ned_m() == pytest.approx(before_ned, abs=0.01)
        spoofed = {mav.MAV_CMD_COMPONENT_ARM_DISARM, mav.MAV_CMD_DO_REPOSITION, mav.MAV_CMD_DO_SET_MODE}
        acks = [m for m in spoofer.drain() if m.get_type() == "COMMAND_ACK" and m.command in spoofed]
        assert acks == [], "the nest answered an unsigned command"
        shown = nest_state(world, 1)["signing"]  # what `python -m sitl state 1` prints
        assert shown["enabled"] and shown["rejected"]["unsigned"] >= 4
    finally:
        spoofer.close()


async def test_wrong_key_and_replayed_frames_are_refused(world: SimWorld) -> None:
    key = new_key()
    await provision(world, key)
    nest = world.nest(1)
    rejected = nest.link.signing.rejected
    forger = Peer(nest.site.bind, key=new_key())
    trusted = gcs(world, key)
    try:
        forger.send(cmd(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1, 21196))
        await wait_until(lambda: rejected[Reject.BAD_SIGNATURE] >= 1)
        captured = trusted.send(cmd(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION))
        await trusted.wait_for(lambda m: m.get_type() == "AUTOPILOT_VERSION")
        forger.send_raw(captured)  # the captured signed frame, sent again from elsewhere
        await wait_until(lambda: rejected[Reject.REPLAY] >= 1)
        assert not nest.autopilot.armed
    finally:
        forger.close()
        trusted.close()


async def test_only_a_request_signed_with_the_current_key_clears_it(world: SimWorld) -> None:
    key = new_key()
    await provision(world, key)
    signing = world.nest(1).link.signing
    stranger = Peer(world.nest(1).site.bind)
    try:
        stranger.send(setup_signing(bytes(32), 0))  # unsigned blank key: refused
        stranger.send(setup_signing(new_key()))  # unsigned new key: refused
        await wait_until(lambda: signing.rejected[Reject.UNSIGNED] >= 2)
        assert signing.key == key
    finally:
        stranger.close()
    trusted = gcs(world, key)
    try:
        trusted.send(setup_signing(bytes(32), 0))
        await wait_until(lambda: not signing.enabled)
    finally:
        trusted.close()


async def test_the_key_survives_a_restart(port_base: tuple[int, int], tmp_path: Path) -> None:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    key = new_key()
    async with SimWorld(sites, state_dir=tmp_path) as world:
        await provision(world, key)
    restarted = SimNest(sites[0], world.clock, state_dir=tmp_path)
    assert restarted.link.signing.key == key
    assert SimNest(sites[0], world.clock, state_dir=None).link.signing.key is None
