"""Routing MAVSDK's frames to the nests (issue 15): reading each frame's target system from its
bytes (adapters/mavlink/frames.py, what the router does now) against parsing it with pymavlink
(what it did before), per frame, one run.

    python bench/bridge_route.py [--frames 20000]

The frames are what MAVSDK sends a fleet: heartbeats (no target), COMMAND_LONGs (requests for
messages and intervals, commands), PARAM_REQUEST_READs and MISSION_REQUEST_INTs, addressed to 16
systems. Each figure is the median of five timed loops over ``--frames`` frames, in µs per frame:

* floor: slicing each frame out of its buffer and reading one byte (what any routing costs);
* bytes: ``split_frames`` (the target at its offset);
* parse: a pymavlink parser's ``parse_buffer`` and ``target_system`` (the old way).

Human-readable lines, then one JSON line with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.frames import split_frames
from adapters.mavlink.message import new_parser


def fleet_frames(count: int) -> list[bytes]:
    encoder = new_parser(system_id=245, component_id=190)
    kinds = [
        lambda n: mav.MAVLink_heartbeat_message(6, 8, 0, 0, 4, 3),
        lambda n: mav.MAVLink_command_long_message(n, 1, 512, 0, 33, 0, 0, 0, 0, 0, 0),
        lambda n: mav.MAVLink_command_long_message(n, 1, 511, 0, 24, 200000, 0, 0, 0, 0, 0),
        lambda n: mav.MAVLink_param_request_read_message(n, 1, b"COM_RC_LOSS_T", -1),
        lambda n: mav.MAVLink_mission_request_int_message(n, 1, 0, 0),
    ]
    return [bytes(kinds[i % len(kinds)](1 + i % 16).pack(encoder)) for i in range(count)]


def per_frame_us(frames: list[bytes], route: Callable[[bytes], int]) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for frame in frames:
            route(frame)
        runs.append((time.perf_counter() - started) / len(frames) * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    args = parser.parse_args()
    frames = fleet_frames(args.frames)
    pymavlink = new_parser()

    def floor(data: bytes) -> int:
        return bytes(data[: len(data)])[5]

    def by_bytes(data: bytes) -> int:
        return sum(target or 0 for _, target in split_frames(data))

    def by_parse(data: bytes) -> int:
        return sum(int(getattr(m, "target_system", 0)) for m in pymavlink.parse_buffer(data) or [])

    assert [by_bytes(f) for f in frames] == [by_parse(f) for f in frames]  # the same answers
    figures = {
        name: per_frame_us(frames, f)
        for name, f in (("floor", floor), ("bytes", by_bytes), ("parse", by_parse))
    }
    load = os.getloadavg()[0]
    print(f"{args.frames} frames, load average {load:.2f} on {os.cpu_count()} cores")
    for name, us in figures.items():
        print(f"  {name:5s} {us:6.2f} µs/frame  ({us / figures['floor']:5.1f}x the floor)")
    print(f"  parse / bytes: {figures['parse'] / figures['bytes']:.1f}x")
    print(json.dumps({"bench": "bridge_route", "frames": args.frames, "us_per_frame": figures, "load": load}))


if __name__ == "__main__":
    main()
