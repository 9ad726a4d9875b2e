"""``python -m sitl``: run simulated nests, or talk to a running simulator's control port.

python -m sitl --nests 16 [--speed 10] [--config FILE] [--camera-size 1280x720] [--camera-fps 30]
    [--camera-replay] [--state-dir var/sitl] [--shards K]
python -m sitl --docks-only --watch-port-base 18569 [--config docker/compose.yaml]
    the docks and payloads of real PX4 nests (docker-compose): no autopilot, no camera; nest N's
    dock watches its PX4 at WATCH_HOST:WATCH_PORT_BASE+N (default host: its udpout mavlink_url's)
python -m sitl --autopilots-only
    the autopilots alone, shaped like PX4 SITL (a stand-in for PX4 containers in tests)
python -m sitl fault 3 link_loss --duration 10
python -m sitl weather 3 wind_speed_mps=14 precipitation=2
python -m sitl records 3 [--kind speaker.]
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import signal
import sys
from pathlib import Path
from typing import Any

import structlog

from dronectl.domain.config import ConfigError, load_config
from dronectl.logging import configure_logging
from sitl.camera.stream import stream_settings
from sitl.control import DEFAULT_CONTROL_PORT, ControlServer, request
from sitl.environment import FaultKind
from sitl.nest import NestMode
from sitl.shards import ShardedSimulator, parse_shard, shard_ids
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
    parser.add_argument(
        "--gcs-port-base",
        type=int,
        default=None,
        help="also a PX4-GCS-style link per nest: nest N binds BASE+N and pushes to --gcs-remote-port",
    )
    parser.add_argument("--gcs-remote-port", type=int, default=14550, help="where GCS links push (14550)")
    parser.add_argument(
        "--state-dir",
        default=None,
        help="what survives a restart (each nest's MAVLink signing key); default: kept in memory",
    )
    parser.add_argument("--camera-size", default="1280x720", help="video WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--camera-fps", type=int, default=30, help="video frames per second (default 30)")
    parser.add_argument(
        "--camera-replay",
        action="store_true",
        help="send a pre-encoded H.264 loop instead of rendering live (benchmarks of many streams)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--docks-only",
        action="store_true",
        help="only each nest's dock (cover, charger, weather station) and payload (speaker, light): "
        "the drone is a real PX4 elsewhere, which the dock watches (--watch-port-base)",
    )
    only.add_argument(
        "--autopilots-only",
        action="store_true",
        help="only each nest's autopilot, as a PX4 SITL: no dock, payload or camera",
    )
    parser.add_argument(
        "--watch-port-base",
        type=int,
        default=None,
        help="--docks-only: nest N's dock listens to its autopilot at port BASE+N (PX4's GCS link "
        "is 18570+instance, instance N-1: BASE 18569)",
    )
    parser.add_argument(
        "--watch-host",
        default=None,
        help="--docks-only: the autopilots' address (default: the host of each nest's udpout "
        "mavlink_url, else the config's mavlink.host)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="run the nests in K processes (sitl.shards), this one in front: same lines, same control port",
    )
    parser.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # I/K: one shard's child
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when standard input closes: the parent (dronectl up) holds its other end, so the "
        "simulator never outlives it, even after a kill -9",
    )


class _ParentWatch(asyncio.Protocol):
    """Standard input as a pipe from the parent: its end closes when the parent dies, however."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def data_received(self, data: bytes) -> None:  # the parent writes nothing; ignore if it does
        pass

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        log.info("sitl.parent_gone")
        self._stop.set()


def _in_use_hint(exc: OSError) -> str:
    return (
        f"{exc}: a port the simulator needs is taken, most likely by a simulator left from an earlier "
        "run (look for 'python -m sitl' processes: `pgrep -af \"python -m sitl\"`), or pick other "
        "ports (--sim-port-base, --client-port-base, --control-port)"
    )


def _child_args(args: argparse.Namespace) -> list[str]:
    """The run arguments a shard gets: everything but the sharding and the control port."""
    out = ["--speed", repr(args.speed), "--camera-size", args.camera_size]
    out += ["--camera-fps", str(args.camera_fps)]
    for flag, value in (
        ("--nests", args.nests),
        ("--config", args.config),
        ("--sim-port-base", args.sim_port_base),
        ("--client-port-base", args.client_port_base),
        ("--host", args.host),
        ("--state-dir", args.state_dir),
        ("--watch-port-base", args.watch_port_base),
        ("--watch-host", args.watch_host),
        ("--gcs-port-base", args.gcs_port_base),
        ("--gcs-remote-port", args.gcs_remote_port if args.gcs_port_base is not None else None),
    ):
        if value is not None:
            out += [flag, str(value)]
    if args.camera_replay:
        out.append("--camera-replay")
    if args.docks_only:
        out.append("--docks-only")
    if args.autopilots_only:
        out.append("--autopilots-only")
    return out


async def run_sharded(args: argparse.Namespace) -> int:
    """``--shards K``: K children run the nests, this process relays and routes (sitl.shards)."""
    sharded = ShardedSimulator(_child_args(args), args.shards, port=args.control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_with_parent:
        await loop.connect_read_pipe(lambda: _ParentWatch(stop), sys.stdin)
    try:
        await sharded.start()
        relay = asyncio.create_task(sharded.relay(), name="sitl.shards.relay")
        waiter = asyncio.create_task(stop.wait(), name="sitl.stop")
        await asyncio.wait({relay, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if relay.done():
            return relay.result()
        relay.cancel()
        return 0
    except (RuntimeError, TimeoutError) as exc:
        log.error("sitl.shards.failed", error=str(exc) or "a shard did not start in time")
        return 1
    finally:
        await sharded.stop()
        log.info("sitl.stopped", shards=args.shards)


async def run(args: argparse.Namespace) -> int:
    if args.shards < 1:
        sys.stderr.write("--shards must be at least 1\n")
        return 2
    if args.docks_only != (args.watch_port_base is not None):
        sys.stderr.write("--docks-only and --watch-port-base go together: where is each nest's autopilot?\n")
        return 2
    if args.shards > 1 and args.shard is None:
        return await run_sharded(args)
    try:
        config = load_config(args.config)
        nest_ids = None
        if args.shard is not None:
            index, count = parse_shard(args.shard)
            every = [n.id for n in config.nests]
            if args.nests is not None:
                if not 1 <= args.nests <= len(every):
                    raise ValueError(f"--nests must be between 1 and {len(every)}")
                every = every[: args.nests]
            nest_ids = shard_ids(every, index, count)
        sites = make_sites(
            config,
            args.nests if nest_ids is None else None,
            nest_ids,
            args.sim_port_base,
            args.client_port_base,
            args.host,
            args.watch_port_base,
            args.watch_host,
            gcs_port_base=args.gcs_port_base,
            gcs_remote_port=args.gcs_remote_port,
        )
        camera = stream_settings(args.camera_size, args.camera_fps, replay=args.camera_replay)
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    state_dir = Path(args.state_dir) if args.state_dir else None
    mode = NestMode.DOCK if args.docks_only else NestMode.AUTOPILOT if args.autopilots_only else NestMode.ALL
    world = SimWorld(
        sites, speed=args.speed, weather=weather_from_config(config), state_dir=state_dir, mode=mode
    )
    for nest in world.nests.values():
        if nest.camera is not None:
            nest.camera.settings = camera
    control = ControlServer(world, port=args.control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_with_parent:
        await loop.connect_read_pipe(lambda: _ParentWatch(stop), sys.stdin)
    try:
        return await _serve(world, control, stop, announce_port=args.shard is not None)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.error("sitl.port_in_use", error=_in_use_hint(exc))
        return 1


async def _serve(world: SimWorld, control: ControlServer, stop: asyncio.Event, announce_port: bool) -> int:
    async with world:
        await control.start()
        if announce_port:  # a shard: its parent routes control requests here (sitl.shards)
            sys.stdout.write(json.dumps({"control_port": control.port}) + "\n")
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
