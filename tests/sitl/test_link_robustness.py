"""Garbage bytes, truncated frames and bad CRCs on a nest's port are dropped without a crash; the
nest keeps answering, and an unknown command gets UNSUPPORTED as PX4 answers it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.world import SimWorld, make_sites

GCS = (255, 190)


class Client:
    """A plain UDP client with its own parser, bound where the nest pushes its traffic."""

    def __init__(self, listen_port: int, nest_addr: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.setblocking(False)
        self.nest_addr = nest_addr
        self.encoder = mav.MAVLink(None, srcSystem=GCS[0], srcComponent=GCS[1])
        self.parser = mav.MAVLink(None)
        self.parser.robust_parsing = True

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.nest_addr)

    def send(self, msg: mav.MAVLink_message) -> None:
        self.send_raw(msg.pack(self.encoder))

    async def wait_for(self, predicate: object, timeout_s: float = 10.0) -> mav.MAVLink_message:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout_s):
            while True:
                data = await loop.sock_recv(self.sock, 65535)
                for msg in self.parser.parse_buffer(data) or []:
                    if msg.get_type() != "BAD_DATA" and predicate(msg):  # type: ignore[operator]
                        return msg

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
async def client(port_base: tuple[int, int]) -> AsyncIterator[tuple[Client, SimWorld]]:
    sim_base, client_base = port_base
    sites = make_sites(count=1, sim_port_base=sim_base, client_port_base=client_base)
    async with SimWorld(sites) as world:
        site = sites[0]
        assert site.remote is not None
        c = Client(site.remote[1], site.bind)
        try:
            yield c, world
        finally:
            c.close()


def _command(target_component: int, command: int, p1: float = 0.0) -> mav.MAVLink_command_long_message:
    return mav.MAVLink_command_long_message(1, target_component, command, 0, p1, 0, 0, 0, 0, 0, 0)


async def test_garbage_is_dropped_and_the_nest_keeps_answering(client: tuple[Client, SimWorld]) -> None:
    c, world = client
    nest = world.nest(1)
    rng = random.Random(7)
    valid = _command(1, mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION).pack(c.encoder)
    bad_crc = bytearray(valid)
    bad_crc[-1] ^= 0xFF
    junk = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(200)
    ]  # random datagrams
    junk += [valid[:n] for n in range(1, len(valid))]  # every truncation of a valid frame
    junk += [bytes(bad_crc), b"\xfd" * 280, b"\xfe\xff" + b"\x00" * 50, b""]
    for data in junk:
        c.send_raw(data)
    # The link survived: a valid request is still answered. The burst may overflow the socket's
    # receive buffer (the kernel then drops datagrams, ours too), so ask as a GCS does: again.
    version = None
    for _ in range(5):
        c.send(_command(1, mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION))
        with contextlib.suppress(TimeoutError):
            version = await c.wait_for(lambda m: m.get_type() == "AUTOPILOT_VERSION", timeout_s=2.0)
            break
    assert version is not None, "the nest stopped answering after the garbage"
    assert version.get_srcSystem() == 1
    assert nest.link.rx_bad > 0
    assert not nest.autopilot.armed


async def test_unknown_commands_get_unsupported(client: tuple[Client, SimWorld]) -> None:
    c, _ = client
    for component in (1, 25, 158):
        c.send(_command(component, mav.MAV_CMD_USER_1))
        ack = await c.wait_for(
            lambda m, comp=component: (
                m.get_type() == "COMMAND_ACK"
                and m.command == mav.MAV_CMD_USER_1
                and m.get_srcComponent() == comp
            )
        )
        assert ack.result == mav.MAV_RESULT_UNSUPPORTED
