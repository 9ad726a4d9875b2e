"""The router and the nest endpoint over loopback UDP: our heartbeat, garbage, routing both ways
between the nests and the MAVSDK side, and the heartbeat watchdog."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.message import MAVLinkMessage, new_parser
from adapters.mavlink.router import Router
from adapters.protocols import LinkState
from tests.adapters.conftest import NEST_SYSID, Loopback
from tests.adapters.fake_peer import FakeNest, wait_until

AUTOPILOT = 1
DOCK = 25


class FakeBridge:
    """The MAVSDK side as the router sees it: records what it receives, emits what a test says."""

    def __init__(self) -> None:
        self.received: list[MAVLinkMessage] = []
        self._parser = new_parser()
        self._encoder = new_parser(245, 190)
        self._transmit: Callable[[bytes], None] | None = None

    def start(self, transmit: Callable[[bytes], None]) -> None:
        self._transmit = transmit

    def receive(self, frame: bytes) -> None:
        self.received.extend(self._parser.parse_buffer(frame) or [])

    def close(self) -> None:
        self._transmit = None

    def emit(self, msg: MAVLinkMessage) -> None:
        assert self._transmit is not None
        self._transmit(msg.pack(self._encoder))


def heartbeat() -> MAVLinkMessage:
    return mav.MAVLink_heartbeat_message(mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_PX4, 0, 0, 3, 3)


def collect(router: Router, system_id: int, component_id: int) -> list[MAVLinkMessage]:
    seen: list[MAVLinkMessage] = []
    router.component(system_id, component_id, f"{system_id}/{component_id}").subscribe(seen.append)
    return seen


async def test_endpoint_learns_the_nest_and_heartbeats_as_a_ground_station(loopback: Loopback) -> None:
    assert loopback.endpoint.peer is None
    loopback.nest.heartbeat(AUTOPILOT)
    await wait_until(lambda: len(loopback.nest.of_type("HEARTBEAT")) >= 3, what="three of our heartbeats")
    ours = loopback.nest.of_type("HEARTBEAT")
    assert all(m.type == mav.MAV_TYPE_GCS for m in ours)
    assert {(m.get_srcSystem(), m.get_srcComponent()) for m in ours} == {(245, 26)}
    seqs = [m.get_seq() for m in ours]
    assert seqs == sorted(seqs)


async def test_garbage_does_not_crash_the_endpoint(loopback: Loopback) -> None:
    nest, endpoint = loopback.nest, loopback.endpoint
    seen = collect(loopback.router, NEST_SYSID, DOCK)
    frame = heartbeat().pack(nest.encoder(DOCK))
    bad_crc = frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1]])
    junk = [
        os.urandom(300),
        b"\xfd\xff\x00\x00",  # a frame start announcing 255 bytes that never come
        frame[:7],
        bad_crc,
        b"\xfe" + os.urandom(40),
        bytes(1000),
    ]
    for data in junk:
        nest.send_raw(data)
    nest.send_raw(b"not mavlink at all, " * 3 + frame)  # a real frame after noise in one datagram
    nest.send(DOCK, heartbeat())
    await wait_until(lambda: len(seen) >= 2, what="both heartbeats after the garbage")
    assert endpoint.rx_bad >= 3
    assert all(m.get_type() == "HEARTBEAT" for m in seen)


async def test_messages_from_another_system_are_dropped(loopback: Loopback) -> None:
    seen = collect(loopback.router, NEST_SYSID, DOCK)
    stranger = FakeNest(NEST_SYSID + 1, loopback.nest.router)
    await stranger.open()
    try:
        stranger.send(DOCK, heartbeat())
        await wait_until(lambda: loopback.endpoint.rx_foreign == 1, what="the stranger's frame")
        loopback.nest.send(DOCK, heartbeat())
        await wait_until(lambda: len(seen) == 1, what="the nest's own heartbeat")
        assert loopback.endpoint.peer is not None and loopback.endpoint.peer != stranger.received_from
    finally:
        stranger.close()


async def test_autopilot_traffic_goes_to_mavsdk_and_dock_traffic_to_the_dock_link() -> None:
    bridge = FakeBridge()
    async with Router(bridge) as router:
        endpoint = await router.add_nest(NEST_SYSID, ("127.0.0.1", 0))
        assert endpoint.local_address is not None
        nest = await FakeNest(NEST_SYSID, endpoint.local_address).open()
        try:
            dock_seen = collect(router, NEST_SYSID, DOCK)
            autopilot_seen = collect(router, NEST_SYSID, AUTOPILOT)
            nest.send(AUTOPILOT, heartbeat())
            nest.send(DOCK, mav.MAVLink_dock_status_message(0, 1, 0, 1, 0, 0.0, 0, 20.0))
            await wait_until(lambda: len(bridge.received) == 1 and len(dock_seen) == 1, what="routing")
            assert bridge.received[0].get_srcComponent() == AUTOPILOT
            assert dock_seen[0].get_type() == "DOCK_STATUS"
            assert [m.get_type() for m in autopilot_seen] == ["HEARTBEAT"]  # our own tap sees it too
            assert router.bridge_rx_frames == 1
        finally:
            nest.close()


async def test_autopilot_frames_only_mavsdk_reads_are_not_decoded_on_our_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 15: the autopilot's stream goes to MAVSDK as bytes; our side decodes only what its
    handlers asked for (here BATTERY_STATUS) and what the command sender reads (COMMAND_ACK), yet
    the watchdog hears every frame."""
    decoded: list[int] = []
    decode = mav.MAVLink.decode

    def counting(self: mav.MAVLink, msgbuf: bytearray) -> MAVLinkMessage:
        msg = decode(self, msgbuf)
        decoded.append(msg.get_msgId())
        return msg

    monkeypatch.setattr(mav.MAVLink, "decode", counting)
    bridge = RawBridge()
    async with Router(bridge, heartbeat_interval_s=60.0) as router:
        endpoint = await router.add_nest(NEST_SYSID, ("127.0.0.1", 0))
        assert endpoint.local_address is not None
        nest = await FakeNest(NEST_SYSID, endpoint.local_address).open()
        try:
            link = router.component(NEST_SYSID, AUTOPILOT, "autopilot")
            batteries: list[MAVLinkMessage] = []
            link.subscribe(batteries.append, {mav.MAVLINK_MSG_ID_BATTERY_STATUS})
            nest.send(AUTOPILOT, heartbeat())
            nest.send(AUTOPILOT, mav.MAVLink_attitude_message(1, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0))
            battery = mav.MAVLink_battery_status_message(0, 0, 0, 2000, [16000] + [65535] * 9, 0, 0, 0, 80)
            nest.send(AUTOPILOT, battery)
            nest.send(AUTOPILOT, mav.MAVLink_command_ack_message(mav.MAV_CMD_NAV_TAKEOFF, 0))
            await wait_until(lambda: len(bridge.received) == 4, what="the four frames at MAVSDK")
            assert [m.battery_remaining for m in batteries] == [80]
            assert decoded == [mav.MAVLINK_MSG_ID_BATTERY_STATUS, mav.MAVLINK_MSG_ID_COMMAND_ACK]
            assert link.watchdog.connected
        finally:
            nest.close()


class RawBridge:
    """The MAVSDK side keeping the bytes it receives (no parse of its own)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def start(self, transmit: Callable[[bytes], None]) -> None:
        pass

    def receive(self, frame: bytes) -> None:
        self.received.append(frame)

    def close(self) -> None:
        pass


async def test_mavsdk_frames_go_to_the_nest_they_address_and_broadcasts_to_all() -> None:
    bridge = FakeBridge()
    async with Router(bridge, heartbeat_interval_s=60.0) as router:
        nests: dict[int, FakeNest] = {}
        for sysid in (7, 8):
            endpoint = await router.add_nest(sysid, ("127.0.0.1", 0))
            assert endpoint.local_address is not None
            nests[sysid] = await FakeNest(sysid, endpoint.local_address).open()
            nests[sysid].heartbeat(AUTOPILOT)  # so the endpoint learns where the nest is
        await wait_until(lambda: all(e.peer for e in router.endpoints.values()), what="peers learned")
        try:

            def mavsdk_frames(sysid: int) -> list[MAVLinkMessage]:
                return [m for m in nests[sysid].received if m.get_srcComponent() == 190]

            bridge.emit(
                mav.MAVLink_command_long_message(
                    8, 1, mav.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0
                )
            )
            bridge.emit(
                mav.MAVLink_heartbeat_message(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3)
            )
            bridge.emit(
                mav.MAVLink_command_long_message(
                    99, 1, mav.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0
                )
            )
            await wait_until(
                lambda: len(mavsdk_frames(8)) == 2 and len(mavsdk_frames(7)) == 1, what="routing"
            )
            assert [m.get_type() for m in mavsdk_frames(8)] == ["COMMAND_LONG", "HEARTBEAT"]
            assert [m.get_type() for m in mavsdk_frames(7)] == ["HEARTBEAT"]
            assert router.bridge_tx_unroutable == 1
        finally:
            for nest in nests.values():
                nest.close()


async def test_watchdog_reports_loss_and_recovers_by_itself(loopback: Loopback) -> None:
    link = loopback.router.component(NEST_SYSID, DOCK, "dock")
    states: list[LinkState] = []

    async def record() -> None:
        async for state in link.watchdog.state.updates():
            states.append(state)

    task = asyncio.create_task(record())
    try:
        loopback.nest.start_heartbeats(DOCK, 0.1)
        await link.watchdog.state.wait_for(lambda s: s.connected, 2.0)
        loop = asyncio.get_running_loop()
        cut_at = loop.time()
        loopback.nest.cut = True
        lost = await link.watchdog.state.wait_for(lambda s: not s.connected, 2.0)
        assert loop.time() - cut_at <= link.watchdog.timeout_s + 0.2
        assert lost.silent_s is not None and lost.silent_s >= link.watchdog.timeout_s * 0.9
        loopback.nest.cut = False
        await link.watchdog.state.wait_for(lambda s: s.connected, 2.0)
        await wait_until(lambda: len(states) == 4, what="never heard, up, lost, up")
        assert [s.connected for s in states] == [False, True, False, True]
    finally:
        task.cancel()


async def test_a_nest_whose_dock_is_apart_has_a_second_endpoint_for_it() -> None:
    """A real PX4 with the docks simulator beside it (NestConfig.dock_url): the dock's link sends
    through the dock's own endpoint and hears only it; a dock frame arriving through the
    autopilot's endpoint (a PX4 forwarding between links) is not mixed in, and the dock's endpoint
    speaks for no autopilot."""
    bridge = FakeBridge()
    async with Router(bridge, heartbeat_interval_s=0.2) as router:
        ap_endpoint = await router.add_nest(NEST_SYSID, ("127.0.0.1", 0))
        dock_endpoint = await router.add_components(NEST_SYSID, frozenset({DOCK}), ("127.0.0.1", 0))
        assert ap_endpoint.local_address is not None and dock_endpoint.local_address is not None
        px4 = await FakeNest(NEST_SYSID, ap_endpoint.local_address).open()
        docks = await FakeNest(NEST_SYSID, dock_endpoint.local_address).open()
        try:
            px4.send(AUTOPILOT, heartbeat())
            docks.send(DOCK, heartbeat())
            await wait_until(lambda: ap_endpoint.peer is not None and dock_endpoint.peer is not None)
            dock_seen = collect(router, NEST_SYSID, DOCK)
            ap_seen = collect(router, NEST_SYSID, AUTOPILOT)
            px4.send(DOCK, mav.MAVLink_dock_status_message(0, 4, 50, 0, 0, 0.0, 0, 20.0))  # forwarded copy
            docks.send(DOCK, mav.MAVLink_dock_status_message(0, 1, 0, 1, 0, 0.0, 0, 20.0))
            docks.send(AUTOPILOT, heartbeat())  # not the autopilot's endpoint: ignored
            px4.send(AUTOPILOT, heartbeat())
            await wait_until(lambda: bool(dock_seen) and bool(ap_seen), what="the dock and the autopilot")
            await asyncio.sleep(0.2)  # what should not arrive has had the time to
            assert [m.cover_state for m in dock_seen if m.get_type() == "DOCK_STATUS"] == [1]
            assert all(m.get_type() == "HEARTBEAT" for m in ap_seen) and len(ap_seen) == 1
            assert {m.get_srcComponent() for m in bridge.received} == {AUTOPILOT}
            assert len(bridge.received) == 2  # the PX4's two heartbeats, not the docks simulator's

            router.component(NEST_SYSID, DOCK, "dock").send(
                mav.MAVLink_command_long_message(NEST_SYSID, DOCK, 42001, 0, 1, 0, 0, 0, 0, 0, 0)
            )
            await wait_until(lambda: bool(docks.of_type("COMMAND_LONG")), what="the dock's command")
            assert px4.of_type("COMMAND_LONG") == []
            # both endpoints heartbeat as the ground station: each side knows us
            await wait_until(lambda: bool(px4.of_type("HEARTBEAT")) and bool(docks.of_type("HEARTBEAT")))
        finally:
            px4.close()
            docks.close()
