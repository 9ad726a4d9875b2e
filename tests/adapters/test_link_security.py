"""The nest endpoint's pinned peer and signing, over loopback UDP: forged telemetry from another
address is ignored and counted, a signed nest's unsigned, wrongly signed and replayed frames are
refused by reason, everything we send it is signed, and keys are provisioned, rotated and cleared
with the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.link_security import LinkSecurity, SigningPolicy
from adapters.mavlink.message import MAVLinkMessage, new_parser
from adapters.mavlink.router import Router
from adapters.mavlink.signing import Reject, Signer, Verifier, new_key
from tests.adapters.conftest import NEST_SYSID, Loopback, SimulatedNest
from tests.adapters.fake_peer import FakeNest, wait_until

AUTOPILOT = 1


def heartbeat() -> MAVLinkMessage:
    return mav.MAVLink_heartbeat_message(mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_PX4, 0, 0, 3, 3)


def forged_telemetry() -> list[MAVLinkMessage]:
    return [
        mav.MAVLink_global_position_int_message(
            1000, int(43.0e7), int(125.0e7), 500_000, 400_000, 0, 0, 0, 0
        ),
        mav.MAVLink_extended_sys_state_message(0, mav.MAV_LANDED_STATE_IN_AIR),
        mav.MAVLink_battery_status_message(0, 0, 0, 2500, [3700] * 10, 100, 1000, 1000, 3),
    ]


class Seen:
    def __init__(self, router: Router) -> None:
        self.messages: list[MAVLinkMessage] = []
        router.component(NEST_SYSID, AUTOPILOT, "autopilot").subscribe(self.messages.append)

    def of(self, name: str) -> list[MAVLinkMessage]:
        return [m for m in self.messages if m.get_type() == name]


@pytest.fixture
async def signed() -> AsyncIterator[tuple[Router, FakeNest, bytes, list[bool]]]:
    """A router whose one nest signs with a key both sides hold."""
    key = new_key()
    changes: list[bool] = []
    async with Router(heartbeat_interval_s=0.1, watchdog_timeout_s=2.0) as router:
        security = LinkSecurity(key, on_change=changes.append)
        endpoint = await router.add_nest(NEST_SYSID, ("127.0.0.1", 0), security=security)
        assert endpoint.local_address is not None
        nest = await FakeNest(NEST_SYSID, endpoint.local_address).open()
        nest.signer = Signer(key)
        try:
            yield router, nest, key, changes
        finally:
            nest.close()


async def stranger_of(router: Router) -> FakeNest:
    """A socket on the same host claiming to be the nest (its system id), from its own port."""
    address = router.endpoints[NEST_SYSID].local_address
    assert address is not None
    return await FakeNest(NEST_SYSID, address).open()


async def test_unsigned_forged_telemetry_from_another_address_is_ignored_and_counted(
    loopback: Loopback,
) -> None:
    router, endpoint, nest = loopback.router, loopback.endpoint, loopback.nest
    seen = Seen(router)
    nest.send(AUTOPILOT, heartbeat())
    await wait_until(lambda: len(seen.messages) == 1, what="the nest's heartbeat")
    pinned = endpoint.peer
    stranger = await stranger_of(router)
    try:
        for _ in range(5):
            for msg in forged_telemetry():
                stranger.send(AUTOPILOT, msg)
        await wait_until(lambda: endpoint.security.rejected[Reject.WRONG_PEER] == 15, what="15 refusals")
        assert endpoint.peer == pinned, "an unsigned packet moved the peer"
        assert [m.get_type() for m in seen.messages] == ["HEARTBEAT"]
        # Our traffic still goes to the nest, never to the stranger.
        before = len(stranger.received)
        await wait_until(lambda: len(nest.of_type("HEARTBEAT")) >= 2, what="our heartbeats at the nest")
        assert len(stranger.received) == before == 0
        assert endpoint.security.fault() is None  # a stranger cannot put the nest in fault
    finally:
        stranger.close()


async def test_a_signed_nest_is_heard_and_everything_we_send_it_is_signed(
    signed: tuple[Router, FakeNest, bytes, list[bool]],
) -> None:
    router, nest, key, changes = signed
    seen = Seen(router)
    nest.send(AUTOPILOT, heartbeat())
    await wait_until(lambda: len(seen.messages) == 1, what="the signed heartbeat")
    assert changes == [True]
    endpoint = router.endpoints[NEST_SYSID]
    assert endpoint.security.status().signed
    # Our heartbeat and a command sent through the component link are signed with the key.
    router.component(NEST_SYSID, AUTOPILOT, "autopilot").send(
        mav.MAVLink_command_long_message(NEST_SYSID, 1, mav.MAV_CMD_REQUEST_MESSAGE, 0, 148, 0, 0, 0, 0, 0, 0)
    )
    await wait_until(lambda: bool(nest.of_type("COMMAND_LONG")), what="our command")
    verifier = Verifier(key)
    for msg in nest.received:
        assert verifier.check(msg.get_msgbuf()) is None


async def test_unsigned_wrongly_signed_and_replayed_frames_are_refused_by_reason(
    signed: tuple[Router, FakeNest, bytes, list[bool]],
) -> None:
    router, nest, _key, _ = signed
    seen = Seen(router)
    endpoint = router.endpoints[NEST_SYSID]
    rejected = endpoint.security.rejected
    captured = nest.send(AUTOPILOT, heartbeat())
    await wait_until(lambda: len(seen.messages) == 1, what="the signed heartbeat")
    nest.send_raw(captured)  # replayed from the nest's own address
    await wait_until(lambda: rejected[Reject.REPLAY] == 1, what="the replay refused")
    stranger = await stranger_of(router)
    try:
        stranger.send_raw(captured)  # replayed from elsewhere: refused, and the peer stays
        await wait_until(lambda: rejected[Reject.REPLAY] == 2, what="the second replay refused")
        for msg in forged_telemetry():
            stranger.send(AUTOPILOT, msg)  # unsigned
        stranger.signer = Signer(new_key())
        for msg in forged_telemetry():
            stranger.send(AUTOPILOT, msg)  # signed with another key
        await wait_until(
            lambda: rejected[Reject.UNSIGNED] == 3 and rejected[Reject.BAD_SIGNATURE] == 3, what="refusals"
        )
        assert endpoint.peer != stranger.received_from
        assert [m.get_type() for m in seen.messages] == ["HEARTBEAT"]
    finally:
        stranger.close()


async def test_a_nest_whose_frames_stop_verifying_is_a_link_fault_with_the_reason(
    signed: tuple[Router, FakeNest, bytes, list[bool]],
) -> None:
    router, nest, _, changes = signed
    endpoint = router.endpoints[NEST_SYSID]
    clock = [1000.0]  # the link's monotonic clock, moved by the test instead of waited for
    endpoint.security._monotonic = lambda: clock[0]
    nest.send(AUTOPILOT, heartbeat())
    await wait_until(lambda: endpoint.rx_messages == 1, what="the signed heartbeat")
    assert endpoint.security.fault() is None
    clock[0] += 10.0
    nest.signer = Signer(new_key())  # the nest now signs with a key we do not hold
    nest.send(AUTOPILOT, heartbeat())
    await wait_until(lambda: endpoint.security.rejected[Reject.BAD_SIGNATURE] == 1, what="the refusal")
    fault = endpoint.security.fault()
    assert fault is not None and "do not verify" in fault
    assert endpoint.security.status().fault == fault
    assert changes == [True]


async def test_a_verified_frame_from_a_new_address_moves_the_peer(
    signed: tuple[Router, FakeNest, bytes, list[bool]],
) -> None:
    router, nest, key, _ = signed
    endpoint = router.endpoints[NEST_SYSID]
    nest.send(AUTOPILOT, heartbeat())
    await wait_until(lambda: endpoint.peer is not None, what="the peer")
    moved = await stranger_of(router)  # the nest, restarted on another port, with its key
    moved.signer = Signer(key, link_id=1)
    try:
        moved.send(AUTOPILOT, heartbeat())
        await wait_until(lambda: endpoint.rx_messages == 2, what="the moved nest heard")
        await wait_until(lambda: bool(moved.of_type("HEARTBEAT")), what="our heartbeat at the new address")
    finally:
        moved.close()


async def test_policy_off_and_when_provisioned_talk_to_a_nest_with_no_key() -> None:
    for policy in (SigningPolicy.OFF, SigningPolicy.WHEN_PROVISIONED, None):
        security = LinkSecurity(None, policy)
        frame = bytes(heartbeat().pack(new_parser(NEST_SYSID, 1)))
        assert security.incoming(frame) is None
        assert security.outgoing(frame) == frame
    required = LinkSecurity(None, SigningPolicy.REQUIRED)
    assert required.incoming(frame) is Reject.NO_KEY
    off_with_key = LinkSecurity(new_key(), SigningPolicy.OFF)
    assert off_with_key.outgoing(frame) == frame and off_with_key.incoming(frame) is None
    assert LinkSecurity(new_key()).policy is SigningPolicy.REQUIRED


async def _wait_signed_heartbeat(simulated: SimulatedNest, verify: Callable[[bytes], bool]) -> None:
    got: list[bool] = []
    unsubscribe = simulated.router.component(simulated.system_id, AUTOPILOT, "ap").subscribe(
        lambda m: got.append(m.get_type() == "HEARTBEAT" and verify(bytes(m.get_msgbuf())))
    )
    try:
        await wait_until(lambda: any(got), timeout_s=10, what="a heartbeat that verifies")
    finally:
        unsubscribe()


async def test_provision_rotate_and_clear_with_the_simulator(simulated: SimulatedNest) -> None:
    router, sim = simulated.router, simulated.nest
    sysid = simulated.system_id
    security = router.endpoints[sysid].security
    first, second = new_key(), new_key()
    await router.provision(sysid, first)
    assert sim.link.signing.key == first and security.key == first
    await _wait_signed_heartbeat(simulated, lambda f: Verifier(first).check(f) is None)
    await router.provision(sysid, second)  # rotation: the request is signed with the first key
    assert sim.link.signing.key == second and security.key == second
    await router.provision(sysid, None)  # cleared by a request signed with the current key
    assert not sim.link.signing.enabled and security.key is None
    with pytest.raises(ValueError):
        await router.provision(sysid, bytes(32))


def test_a_forged_position_off_the_earth_never_reaches_the_core() -> None:
    from adapters.mavsdk_flight import on_earth
    from adapters.protocols import Position

    assert on_earth(Position(43.9, 125.3, 300.0, 60.0))
    int32_max_deg = 2**31 / 1e7  # what a forged GLOBAL_POSITION_INT can say: 214.7°
    for lat, lon, alt in ((int32_max_deg, 125.3, 300.0), (43.9, -int32_max_deg, 300.0), (float("nan"), 0, 0)):
        assert not on_earth(Position(lat, lon, alt, 0.0))
    assert not on_earth(Position(43.9, 125.3, float("inf"), 0.0))


def test_endpoint_urls_bind_where_they_say() -> None:
    from adapters.fleet import parse_endpoint

    assert parse_endpoint("udpin://127.0.0.1:14543").bind == ("127.0.0.1", 14543)
    out = parse_endpoint("udpout://10.201.0.103:14582?bind=10.201.0.2")
    assert out.bind == ("10.201.0.2", 0) and out.peer == ("10.201.0.103", 14582)
    assert parse_endpoint("udpout://10.201.0.103:14582").bind == ("0.0.0.0", 0)
    with pytest.raises(ValueError):
        parse_endpoint("tcp://10.0.0.1:5760")


async def test_a_nest_signing_with_a_key_we_do_not_hold_from_the_start_is_a_fault() -> None:
    async with Router(heartbeat_interval_s=0.1) as router:
        endpoint = await router.add_nest(NEST_SYSID, ("127.0.0.1", 0), security=LinkSecurity(new_key()))
        assert endpoint.local_address is not None
        nest = await FakeNest(NEST_SYSID, endpoint.local_address).open()
        try:
            nest.signer = Signer(new_key())
            nest.send(AUTOPILOT, heartbeat())
            await wait_until(lambda: endpoint.security.rejected[Reject.BAD_SIGNATURE] == 1, what="refused")
            assert endpoint.peer is None
            fault = endpoint.security.status().fault
            assert fault is not None and "do not verify" in fault
        finally:
            nest.close()
