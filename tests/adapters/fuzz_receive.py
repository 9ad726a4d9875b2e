"""Hostile bytes on a nest's receive path: the generator and the run, shared by the test and the
longer command.

    .venv/bin/python -m tests.adapters.fuzz_receive --cases 2000000 [--seed N]

Each case is one datagram handed to the nest endpoint's ``datagram_received`` (what the event
loop calls for a UDP datagram): random bytes, truncations of valid frames, frames with a valid
CRC and nonsense fields (random payloads of every message id our dialect knows), a length byte
promising more than comes, unknown message ids, frames signed with a wrong key or a mangled
signature, replays of frames the endpoint already accepted, and the nest's frames from the wrong
system. Two links run side by side: a signed one (key and policy ``required``: nothing of that
may be accepted) and an unsigned one (policy ``off``: valid frames go on to the real dock,
payload and camera adapters, and nothing may raise there).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.camera import MavlinkCamera
from adapters.mavlink.dock import MavlinkDock
from adapters.mavlink.endpoint import NestEndpoint
from adapters.mavlink.frames import Frame
from adapters.mavlink.ids import AUTOPILOT_COMPID, CAMERA_COMPID, DOCK_COMPID, PAYLOAD_COMPID
from adapters.mavlink.link_security import LinkSecurity, SigningPolicy
from adapters.mavlink.message import new_parser
from adapters.mavlink.payload import MavlinkPayload
from adapters.mavlink.router import Router
from adapters.mavlink.signing import Signer, new_key

SYSID = 7
PEER = ("127.0.0.1", 18577)
STRANGER = ("127.0.0.1", 40000)
COMPONENTS = (AUTOPILOT_COMPID, DOCK_COMPID, PAYLOAD_COMPID, CAMERA_COMPID)
MSG_IDS = sorted(mav.mavlink_map)


def _frame(rng: random.Random, msg_id: int, payload: bytes, sysid: int = SYSID) -> bytes:
    """A MAVLink 2 frame with a valid CRC around ``payload`` (any bytes) for ``msg_id``."""
    header = bytearray(
        [
            mav.PROTOCOL_MARKER_V2,
            len(payload),
            0,
            0,
            rng.randrange(256),
            sysid,
            rng.choice(COMPONENTS),
            msg_id & 0xFF,
            (msg_id >> 8) & 0xFF,
            (msg_id >> 16) & 0xFF,
        ]
    )
    body = header + payload
    crc = mav.x25crc(body[1:])
    msg_type = mav.mavlink_map.get(msg_id)
    crc.accumulate(bytes((msg_type.crc_extra if msg_type is not None else rng.randrange(256),)))
    return bytes(body + crc.crc.to_bytes(2, "little"))


def _nonsense(rng: random.Random) -> bytes:
    msg_id = rng.choice(MSG_IDS)
    size = mav.mavlink_map[msg_id].unpacker.size
    return _frame(rng, msg_id, rng.randbytes(rng.randrange(1, size + 1)))


@dataclass
class Generator:
    rng: random.Random
    key: bytes
    genuine: list[bytes] = field(default_factory=list)  # accepted before: replays

    def case(self) -> tuple[str, bytes]:
        rng = self.rng
        kind = rng.randrange(10)
        if kind == 0:
            return "random", rng.randbytes(rng.randrange(0, 300))
        if kind == 1:
            frame = _nonsense(rng)
            return "truncated", frame[: rng.randrange(1, len(frame))]
        if kind == 2:
            return "nonsense_fields", _nonsense(rng)
        if kind == 3:
            long = bytearray(_nonsense(rng))
            if long[1] < 255:
                long[1] = rng.randrange(long[1] + 1, 256)  # a length promising more than comes
            else:
                del long[-rng.randrange(1, 20) :]
            return "huge_length", bytes(long)
        if kind == 4:
            unknown = rng.choice([i for i in range(20000, 20100) if i not in mav.mavlink_map])
            return "unknown_id", _frame(rng, unknown, rng.randbytes(rng.randrange(1, 60)))
        if kind == 5:
            signed = Signer(new_key()).sign(_nonsense(rng))
            assert signed is not None
            return "wrong_key", signed
        if kind == 6:
            signed = Signer(self.key).sign(_nonsense(rng))
            assert signed is not None
            mangled = bytearray(signed)
            mangled[rng.randrange(len(mangled) - 6, len(mangled))] ^= 1 << rng.randrange(8)
            return "bad_signature", bytes(mangled)
        if kind == 7 and self.genuine:
            return "replay", rng.choice(self.genuine)
        if kind == 8:
            return "wrong_system", _frame(
                rng, 0, rng.randbytes(9), sysid=rng.choice([s for s in (1, 200, 255)])
            )
        return "glued", _nonsense(rng) + _nonsense(rng)[: rng.randrange(1, 20)]  # the second one torn


@dataclass
class Result:
    cases: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    state_changes: int = 0
    accepted_unsigned_link: int = 0
    memory_growth_bytes: int = 0
    seconds: float = 0.0
    changed: list[tuple[str, str, str, str]] = field(default_factory=list)  # what changed, to debug


def _state(endpoint: NestEndpoint) -> tuple[object, ...]:
    security = endpoint.security
    verifier = security._verifier
    streams = dict(verifier._streams) if verifier is not None else {}
    return (endpoint.peer, endpoint.rx_messages, streams, security.status().signed, security.key)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run(
    cases: int, seed: int = 13, progress: Callable[[int], None] | None = None, trace_memory: bool = False
) -> Result:
    """Feed ``cases`` hostile datagrams to a signed and an unsigned endpoint; never raises for
    what a case does (a crash is counted). Call it with an event loop running (the adapters'
    watchdogs use it). Memory: the process's resident size, or with ``trace_memory`` the Python
    heap as tracemalloc sees it (exact, and several times slower)."""
    rng = random.Random(seed)
    key = new_key()
    gen = Generator(rng, key)
    result = Result()
    delivered_signed: list[Frame] = []
    # The link's clock stands still: whether it is in fault after seconds of refusals (it is, by
    # design) is not what a single frame may change.
    frozen = LinkSecurity(key, SigningPolicy.REQUIRED, monotonic=lambda: 0.0)
    signed = NestEndpoint(SYSID, delivered_signed.append, security=frozen)
    # Accept a few genuine frames first: the peer is pinned, streams exist, replays are at hand.
    nest = Signer(key)
    for component in COMPONENTS:
        frame = nest.sign(
            bytes(mav.MAVLink_heartbeat_message(2, 12, 0, 0, 4, 3).pack(new_parser(SYSID, component)))
        )
        assert frame is not None
        signed.datagram_received(frame, PEER)
        gen.genuine.append(frame)
    assert len(delivered_signed) == len(COMPONENTS)

    router = Router()
    handler_errors: list[BaseException] = []
    unsigned = NestEndpoint(
        SYSID, lambda m: _route(router, m, handler_errors), security=LinkSecurity(None, SigningPolicy.OFF)
    )
    router.endpoints[SYSID] = unsigned
    adapters = (
        MavlinkDock(router.component(SYSID, DOCK_COMPID, "dock")),
        MavlinkPayload(router.component(SYSID, PAYLOAD_COMPID, "payload")),
        MavlinkCamera(router.component(SYSID, CAMERA_COMPID, "camera")),
    )
    unsigned.datagram_received(gen.genuine[0], PEER)

    gc.collect()
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    baseline = 0
    for i in range(cases):
        if i == min(5000, cases // 10):
            gc.collect()
            baseline = tracemalloc.get_traced_memory()[0] if trace_memory else _rss_bytes()
        kind, data = gen.case()
        result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
        before = _state(signed)
        sender = PEER if rng.random() < 0.7 else STRANGER
        try:
            signed.datagram_received(data, sender)
            unsigned.datagram_received(data, PEER)
        except Exception:  # noqa: BLE001 - counted: the point of the fuzz
            result.crashes += 1
        after = _state(signed)
        if after != before:
            result.state_changes += 1
            result.changed.append((kind, data.hex(), repr(before), repr(after)))
        if progress is not None and i % 100_000 == 0:
            progress(i)
    result.seconds = time.perf_counter() - start
    gc.collect()
    if trace_memory:
        result.memory_growth_bytes = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
    else:
        result.memory_growth_bytes = _rss_bytes() - baseline
    result.cases = cases
    result.crashes += len(handler_errors)
    result.accepted_unsigned_link = unsigned.rx_messages
    del adapters
    return result


def _route(router: Router, frame: Frame, errors: list[BaseException]) -> None:
    try:
        router._from_nest(SYSID, frame)
    except Exception as exc:  # noqa: BLE001 - counted as a crash
        errors.append(exc)


async def _run_in_loop(cases: int, seed: int) -> Result:
    def progress(done: int) -> None:
        sys.stderr.write(f"{done} cases\n")

    return run(cases, seed, progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    result = asyncio.run(_run_in_loop(args.cases, args.seed))
    sys.stdout.write(
        f"seed {args.seed}: {result.cases} cases in {result.seconds:.1f} s, crashes {result.crashes}, "
        f"state changes {result.state_changes}, memory growth {result.memory_growth_bytes / 1e6:.2f} MB, "
        f"frames accepted on the unsigned link {result.accepted_unsigned_link}, by kind {result.by_kind}\n"
    )
    return 0 if result.crashes == 0 and result.state_changes == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
