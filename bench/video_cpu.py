"""The service's CPU per WebRTC video stream, 1 to 16 simultaneous streams at 1280x720, 30 fps.

    python bench/video_cpu.py [--streams 1,2,4,8,16] [--duration 20] [--size 1280x720] [--fps 30]
                              [--live] [--check]

Three processes (``bench/video_rig.py``): the simulator, the service (this process) and the
viewers (aiortc WHEP clients that reassemble every frame and decode none), each counted apart.
16 live simulated cameras (render + libx264, ~30 % of a core each) cannot run on this 2-core
machine, so by default the simulator replays (``--camera-replay``): each camera sends one loop of
two GOPs of a rendered view (made once, with sensor noise so the encoder spends its 4 Mbit/s),
encoded once with the same libx264 settings: a real 1280x720/30 fps H.264 bitstream, paced by
the wall clock, with a fresh capture-time SEI on every frame, at a few % of a core per stream.
``--live`` renders and encodes every frame.

The service does for a replayed stream exactly what it does for a live one: RTP in, depacketize,
fan out, repacketize for WebRTC, SRTP, send. For each stream count K the viewers open K sessions
(one per nest, so K ingests), warm up, and CPU is measured over ``--duration`` seconds:
``service_pct`` (% of one core), and per stream ``(service_pct - without video) / K``; the
marginal cost of a stream is the least-squares slope of service_pct over K (0 included), and over
the number of 30 fps streams the ingests were actually fed (their frame rates / 30). The
frame rate each viewer received, and the frame, bit and RTP packet rates each ingest received,
are reported; ``service_pct_per_30fps_stream`` scales the cost to streams of 30 frames a second
by the frames the ingests took in (a busy machine may not feed 16 streams at full rate).
Target: each added stream under 5 % of one core. Human-readable lines, then one JSON line;
``--check`` exits 1 when a stream costs 5 % or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import video_rig as vr  # noqa: E402
from dronectl.logging import configure_logging  # noqa: E402

TARGET_STREAM_PCT = 5.0


async def measure(rig: vr.Rig, k: int, duration_s: float, idle_pct: float) -> dict[str, Any]:
    nests = rig.nest_ids[:k]
    viewer = await vr.start_viewers(rig, nests, duration_s)
    await asyncio.sleep(vr.WARM_UP_S)  # the viewers' warm-up, in step with theirs
    service0, sim0, view0 = vr.cpu_s(rig.service), vr.cpu_s(rig.sim), viewer.cpu_s()
    units0, bytes0, packets0, lost0 = ingest_totals(rig, nests)
    t0 = time.monotonic()
    await asyncio.sleep(duration_s)  # the measuring window
    elapsed = time.monotonic() - t0
    units1, bytes1, packets1, lost1 = ingest_totals(rig, nests)
    ingest_fps = (units1 - units0) / elapsed
    service_pct = 100 * (vr.cpu_s(rig.service) - service0) / elapsed
    sim_pct = 100 * (vr.cpu_s(rig.sim) - sim0) / elapsed
    view_pct = 100 * (viewer.cpu_s() - view0) / elapsed
    data = await viewer.result(duration_s + 60)
    fps = data["fps"]
    await vr.wait_ingests_stopped(rig, nests)
    return {
        "streams_open": len(fps),
        "refused": data["refused"],
        "service_pct": round(service_pct, 1),
        "service_pct_per_stream": round((service_pct - idle_pct) / max(len(fps), 1), 2),
        # per stream of 30 frames a second, by the frames the ingests took in and fanned out
        "service_pct_per_30fps_stream": round((service_pct - idle_pct) * 30 / max(ingest_fps, 1e-9), 2),
        "ingest_fps_per_stream": round(ingest_fps / len(nests), 1),
        "simulator_pct": round(sim_pct, 1),
        "viewers_pct": round(view_pct, 1),
        "fps_mean": round(statistics.mean(fps), 1),
        "mbps_per_stream": round(8 * (bytes1 - bytes0) / elapsed / len(nests) / 1e6, 2),
        "rtp_packets_per_s_per_stream": round((packets1 - packets0) / elapsed / len(nests)),
        "ingest_loss_pct": round(100 * (lost1 - lost0) / max(packets1 - packets0 + lost1 - lost0, 1), 2),
        "viewer_loss_pct": data["loss_pct"],
        "fps_min": round(min(fps), 1),
    }


def ingest_totals(rig: vr.Rig, nests: list[int]) -> tuple[int, int, int, int]:
    """Frames and bytes of H.264, RTP packets received and lost, by the ingests of ``nests``."""
    total_units = total_bytes = total_packets = total_lost = 0
    for nest in nests:
        stats = rig.hub.stats(nest)
        camera = rig.fleet.controllers[nest].hw.camera
        total_units += stats.units if stats is not None else 0
        total_bytes += stats.bytes if stats is not None else 0
        depacketizer = getattr(camera, "stats", None)  # the MAVLink camera adapter's RTP counters
        if depacketizer is not None:
            total_packets += depacketizer.packets
            total_lost += depacketizer.lost_packets
    return total_units, total_bytes, total_packets, total_lost


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    mx = statistics.mean(x for x, _ in points)
    my = statistics.mean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = sorted({int(k) for k in args.streams.split(",")})
    sim_args = ["--camera-size", args.size, "--camera-fps", str(args.fps)]
    if not args.live:
        sim_args.append("--camera-replay")
    results: dict[str, Any] = {"size": args.size, "fps": args.fps, "replay": not args.live, "streams": {}}
    async with vr.video_rig(max(counts), speed=args.speed, sim_args=sim_args) as rig:
        service0, t0 = vr.cpu_s(rig.service), time.monotonic()
        await asyncio.sleep(args.duration)  # a measuring window: airborne, no video
        idle_pct = 100 * (vr.cpu_s(rig.service) - service0) / (time.monotonic() - t0)
        results["service_pct_no_stream"] = round(idle_pct, 1)
        for k in counts:
            results["streams"][str(k)] = await measure(rig, k, args.duration, idle_pct)
    entries = list(results["streams"].values())
    points = [(0.0, idle_pct)] + [(float(e["streams_open"]), e["service_pct"]) for e in entries]
    results["service_pct_per_added_stream"] = round(slope(points), 2)
    # the same over the 30 fps streams the ingests were actually fed (frames taken in / 30): the cost
    # of a full-rate stream when the machine cannot feed every stream at 30 fps
    fed = [(0.0, idle_pct)] + [
        (e["ingest_fps_per_stream"] * e["streams_open"] / 30, e["service_pct"]) for e in entries
    ]
    results["service_pct_per_added_30fps_stream"] = round(slope(fed), 2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", default="1,2,4,8,16", help="stream counts to measure")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per stream count")
    parser.add_argument("--size", default="1280x720", help="the cameras' WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30, help="the cameras' frame rate")
    parser.add_argument("--live", action="store_true", help="render and encode every frame (no replay)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulation speed (video is real time)")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING")
    try:
        results = asyncio.run(run(args))
    except vr.BenchError as exc:
        sys.stderr.write(f"video_cpu: {exc}\n")
        return 2
    source = "replayed" if results["replay"] else "live"
    sys.stdout.write(
        f"{args.size} at {args.fps} fps, {source} cameras; service without video "
        f"{results['service_pct_no_stream']} % of a core\n"
    )
    for k, e in results["streams"].items():
        sys.stdout.write(
            f"{k:>2} stream(s), {e['streams_open']} open: service {e['service_pct']} % of a core "
            f"({e['service_pct_per_stream']} % per stream, "
            f"{e['service_pct_per_30fps_stream']} % per 30 fps); "
            f"{e['ingest_fps_per_stream']} fps in, {e['fps_mean']} fps out (min {e['fps_min']}), "
            f"{e['mbps_per_stream']} Mbit/s and "
            f"{e['rtp_packets_per_s_per_stream']} RTP packets/s a stream, lost {e['ingest_loss_pct']} % "
            f"camera -> service, {e['viewer_loss_pct']} % service -> viewers; "
            f"simulator {e['simulator_pct']} %, viewers {e['viewers_pct']} %\n"
        )
    sys.stdout.write(
        f"each added stream: {results['service_pct_per_added_stream']} % of a core (slope over K), "
        f"{results['service_pct_per_added_30fps_stream']} % (slope over the 30 fps streams fed)\n"
    )
    sys.stdout.write(json.dumps(results) + "\n")
    if args.check:
        worst = max(results["service_pct_per_added_stream"], results["service_pct_per_added_30fps_stream"])
        return 1 if worst >= TARGET_STREAM_PCT else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
