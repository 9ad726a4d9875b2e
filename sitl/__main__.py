"""``python -m sitl``: run simulated nests, or talk to a running simulator's control port.

python -m sitl --nests 16 [--speed 10] [--config FILE] [--camera-size 1280x720] [--camera-fps 30]
    [--camera-replay]
python -m sitl fault 3 link_loss --duration 10
python -m sitl weather 3 wind_speed_mps=14 precipitation=2
python -m sitl records 3 [--kind speaker.]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import structlog

from dronectl.config import ConfigError, load_config
from dronectl.logging import configure_logging
from sitl.camera.stream import stream_settings
from sitl.control import DEFAULT_CONTROL_PORT, ControlServer, request
from sitl.environment import FaultKind
from sitl.world import SimWorld, make_sites, weather_from_config

log = structlog.get_logger("sitl")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sitl", description="Simulated drone nests over MAVLink.")
    parser.add_argument(
        "--control-port", type=int, default=DEFAULT_CONTROL_PORT, help="JSON-lines control port"
    )
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run nests (the default)")
    _add_run_args(run)
    _add_run_args(parser)

    fault = sub.add_parser("fault", help="inject a fault into a running simulator")
    fault.add_argument("nest", help="nest number or 'all'")
    fault.add_argument("kind", choices=[k.name.lower() for k in FaultKind if k is not FaultKind.WEATHER])
    fault.add_argument("--value", type=float, default=0.0, help="percent, m/s or factor, by kind")
    fault.add_argument("--duration", type=float, default=0.0, help="seconds; 0 until cleared")

    weather = sub.add_parser("weather", help="change the weather of a running simulator")
    weather.add_argument("nest", help="nest number or 'all'")
    weather.add_argument("fields", nargs="+", metavar="FIELD=VALUE", help="e.g. wind_speed_mps=14")

    records = sub.add_parser("records", help="what a nest recorded (played, shown, done)")
    records.add_argument("nest")
    records.add_argument("--kind", default="", help="record kind prefix, e.g. speaker.")

    state = sub.add_parser("state", help="a nest's simulated state")
    state.add_argument("nest")
    return parser


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nests", type=int, default=None, help="how many nests (default: all in the config)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument(
        "--config", default=None, help="city config file (default: the shipped Changchun one)"
    )
    parser.add_argument("--sim-port-base", type=int, default=None, help="nest N binds BASE+N")
    parser.add_argument("--client-port-base", type=int, default=None, help="nest N pushes to BASE+N")
    parser.add_argument("--host", default=None, help="address the nests bind and push to")
    parser.add_argument("--camera-size", default="1280x720", help="video WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--camera-fps", type=int, default=30, help="video frames per second (default 30)")
    parser.add_argument(
        "--camera-replay",
        action="store_true",
        help="send a pre-encoded H.264 loop instead of rendering live (benchmarks of many streams)",
    )


async def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        sites = make_sites(config, args.nests, None, args.sim_port_base, args.client_port_base, args.host)
        camera = stream_settings(args.camera_size, args.camera_fps, replay=args.camera_replay)
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    world = SimWorld(sites, speed=args.speed, weather=weather_from_config(config))
    for nest in world.nests.values():
        nest.camera.settings = camera
    control = ControlServer(world, port=args.control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with world:
        await control.start()
        for nest_id in world.nests:
            sys.stdout.write(json.dumps(world.describe(nest_id), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        waiter = asyncio.create_task(stop.wait(), name="sitl.stop")
        ticker = asyncio.create_task(world.wait(), name="sitl.wait")
        done, _ = await asyncio.wait({waiter, ticker}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await control.stop()
        for task in done:
            if task is ticker and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    log.info("sitl.stopped")
    return 0


def _parse_fields(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected FIELD=VALUE, got {pair!r}")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


async def client(args: argparse.Namespace) -> int:
    if args.command == "fault":
        payload: dict[str, Any] = {
            "op": "fault",
            "nest": args.nest,
            "kind": args.kind,
            "value": args.value,
            "duration_s": args.duration,
        }
    elif args.command == "weather":
        payload = {"op": "weather", "nest": args.nest, **_parse_fields(args.fields)}
    elif args.command == "records":
        payload = {"op": "records", "nest": args.nest, "kind": args.kind}
    else:
        payload = {"op": "state", "nest": args.nest}
    try:
        reply = await request(payload, port=args.control_port)
    except OSError as exc:
        sys.stderr.write(f"no simulator on control port {args.control_port}: {exc}\n")
        return 3
    sys.stdout.write(json.dumps(reply, ensure_ascii=False, indent=2) + "\n")
    return 0 if reply.get("ok") else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    if args.command in (None, "run"):
        return asyncio.run(run(args))
    return asyncio.run(client(args))


if __name__ == "__main__":
    raise SystemExit(main())
