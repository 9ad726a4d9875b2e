"""MAVLink 2 signing: its cost per frame, and command latency with signing on and off, one run.

    python bench/mavlink_signing.py [--frames 20000] [--commands 300] [--speed 1]

Per frame (µs, the median of five timed loops of ``--frames`` each):

* sign: ``Signer.sign`` on a frame another encoder made (CRC recomputed for the signed flag,
  SHA-256 over the frame), for a GLOBAL_POSITION_INT (the busiest telemetry) and a COMMAND_LONG;
* verify: ``Verifier.check`` on a signed frame (SHA-256 and the stream's timestamp);
* the floor beside them: pymavlink parsing the same frame (what every received frame costs
  anyway) and packing it.

Command latency: two simulated nests in this process, one provisioned (signed both ways), one not;
COMMAND_LONG (REQUEST_MESSAGE) to the autopilot -> COMMAND_ACK through the router, the endpoint
and the simulator's link, alternating between the two so both see the same machine load;
p50/p95/p99/max for each side by side (the unsigned side is the floor). The load average is
printed: this machine is shared. Human-readable lines, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import RetryPolicy
from adapters.mavlink.ids import AUTOPILOT_COMPID
from adapters.mavlink.link_security import LinkSecurity
from adapters.mavlink.message import new_parser
from adapters.mavlink.router import Router
from adapters.mavlink.signing import Signer, Verifier, new_key
from adapters.protocols import CommandResult
from dronectl.logging import configure_logging
from sitl.ports import free_udp_range
from sitl.world import SimWorld, make_sites

POLICY = RetryPolicy(ack_timeout_s=1.0, attempts=3, progress_timeout_s=2.0, max_duration_s=5.0)


def per_frame_us(fn: Callable[[], object], frames: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(frames):
            fn()
        runs.append((time.perf_counter() - start) / frames * 1e6)
    return statistics.median(runs)


def frame_costs(frames: int) -> dict[str, dict[str, float]]:
    key = new_key()
    encoder = new_parser(1, 1)
    messages = {
        "GLOBAL_POSITION_INT": mav.MAVLink_global_position_int_message(
            1000, 438_800_000, 1_253_500_000, 280_000, 60_000, 120, -40, 5, 9000
        ),
        "COMMAND_LONG": mav.MAVLink_command_long_message(
            1, 1, mav.MAV_CMD_DO_SET_MODE, 0, 1, 4, 3, 0, 0, 0, 0
        ),
    }
    out: dict[str, dict[str, float]] = {}
    for name, msg in messages.items():
        frame = bytes(msg.pack(encoder))
        signer = Signer(key)
        signed = signer.sign(frame)
        assert signed is not None
        signed_frames = [signer.sign(frame) or b"" for _ in range(frames * 5 + 5)]
        it = iter(signed_frames)
        verifier = Verifier(key)

        def verify(it: Iterator[bytes] = it, verifier: Verifier = verifier) -> object:
            return verifier.check(next(it))

        def sign(frame: bytes = frame, signer: Signer = signer) -> object:
            return signer.sign(frame)

        parser = new_parser()

        def parse(frame: bytes = frame, parser: mav.MAVLink = parser) -> object:
            return parser.parse_buffer(frame)

        def pack(msg: mav.MAVLink_message = msg, encoder: mav.MAVLink = encoder) -> object:
            return msg.pack(encoder)

        out[name] = {
            "sign_us": per_frame_us(sign, frames),
            "verify_us": per_frame_us(verify, frames),
            "parse_us": per_frame_us(parse, frames),
            "pack_us": per_frame_us(pack, frames),
            "frame_bytes": float(len(frame)),
            "signed_bytes": float(len(signed)),
        }
    return out


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1e3}


async def command_latency(commands: int, speed: float) -> dict[str, dict[str, float]]:
    sites = make_sites(count=2, sim_port_base=free_udp_range(2), client_port_base=free_udp_range(2))
    with tempfile.TemporaryDirectory() as state:
        async with SimWorld(sites, speed=speed, state_dir=Path(state)) as world, Router() as router:
            signed_site, plain_site = sites
            for site in sites:
                assert site.remote is not None
                await router.add_nest(site.system_id, ("127.0.0.1", site.remote[1]), security=LinkSecurity())
            links = {
                site.system_id: router.component(site.system_id, AUTOPILOT_COMPID, "ap") for site in sites
            }
            for link in links.values():
                await link.watchdog.state.wait_for(lambda s: s.connected, 10.0)
            await router.provision(signed_site.system_id, new_key())
            assert world.nest(signed_site.nest_id).link.signing.enabled
            assert not world.nest(plain_site.nest_id).link.signing.enabled
            samples: dict[str, list[float]] = {"signed": [], "unsigned": []}
            for i in range(commands * 2):
                label, site = ("signed", signed_site) if i % 2 == 0 else ("unsigned", plain_site)
                start = time.perf_counter()
                ack = await links[site.system_id].commands.command_long(
                    mav.MAV_CMD_REQUEST_MESSAGE, (mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION,), POLICY
                )
                samples[label].append(time.perf_counter() - start)
                if ack.result is not CommandResult.SUCCESS:
                    raise RuntimeError(f"{label}: {ack}")
            return {label: percentiles(values) for label, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    configure_logging(level="warning")  # JSON on stderr; stdout is the figures
    load_before = os.getloadavg()
    costs = frame_costs(args.frames)
    latency = asyncio.run(command_latency(args.commands, args.speed))
    load_after = os.getloadavg()
    sys.stdout.write(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)\n"
    )
    sys.stdout.write("per frame (µs)           sign   verify |  parse   pack (the floor)  bytes\n")
    for name, c in costs.items():
        sys.stdout.write(
            f"  {name:<20} {c['sign_us']:7.1f} {c['verify_us']:7.1f}  |"
            f" {c['parse_us']:6.1f} {c['pack_us']:6.1f}"
            f"                  {c['frame_bytes']:.0f} -> {c['signed_bytes']:.0f}\n"
        )
    sys.stdout.write(
        f"command -> ACK ({args.commands} each, alternating)   p50     p95     p99     max (ms)\n"
    )
    for label, p in latency.items():
        sys.stdout.write(
            f"  signing {'on ' if label == 'signed' else 'off'}                       "
            f"{p['p50_ms']:6.2f}  {p['p95_ms']:6.2f}  {p['p99_ms']:6.2f}  {p['max_ms']:6.2f}\n"
        )
    sys.stdout.write(
        json.dumps(
            {"load_avg": [load_before[0], load_after[0]], "per_frame": costs, "command_latency": latency}
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
