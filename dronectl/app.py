"""``dronectl up``: the whole service in one process.

With no hardware configured it starts the built-in simulator (``python -m sitl``) as a child
process with the same city config, and with no broker configured an embedded MQTT broker. The
HTTP server (command-center page, REST/WebSocket API, WHEP video) listens on ``--http-port``;
without ``--http-tokens`` a dev token (a commander) is generated and the page's URL with it is
printed in the JSON line on stdout.
Shutdown order on SIGINT/SIGTERM: stop the APIs (MQTT status offline, HTTP), stop the video,
stop the fleet tasks (drones keep flying under PX4's own failsafes), close the links, flush the
audit store, stop the simulator. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from dronectl.api.audit_outcomes import AuditOutcomes
from dronectl.api.gateway import CommandGateway
from dronectl.api.service import serve_api
from dronectl.api.settings import MqttSettings
from dronectl.api.topics import Topics
from dronectl.api_controller import FleetApiController
from dronectl.clock import Clock, ScaledClock, SystemClock
from dronectl.config import CityConfig, ConfigError, load_config
from dronectl.logging import configure_logging
from dronectl.lookout import Lookout, add_snapshot_routes
from dronectl.patrols.service import PatrolService
from dronectl.service import open_service
from dronectl.supervisor import supervise
from dronectl.video import add_video_routes, open_video
from dronectl.web.auth import TokenAuthority, TokensFileError, load_tokens
from dronectl.web.coverage import CoverageLayer, add_coverage_routes, fleet_wind
from dronectl.web.server import WebServer
from dronectl.web.updates import TelemetryRates

log = structlog.get_logger("dronectl")

SIM_READY_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="city config file (default: the shipped one)")
    parser.add_argument("--audit", default="var/audit.sqlite3", help="audit store (SQLite) path")
    parser.add_argument(
        "--broker", default=None, help="mqtt://host:port of Mosquitto/EMQX; default: an embedded broker"
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=1883, help="embedded broker port (next free one if taken)"
    )
    parser.add_argument(
        "--http-port", type=int, default=8080, help="command-center page and HTTP API (next free if taken)"
    )
    parser.add_argument("--http-host", default="127.0.0.1", help="HTTP address (0.0.0.0: every interface)")
    parser.add_argument(
        "--http-tokens", default=None, help="tokens file for the HTTP API; default: a generated dev token"
    )
    parser.add_argument(
        "--recordings", default="var/recordings", help="each flight's video is recorded in this directory"
    )
    parser.add_argument(
        "--snapshots", default="var/snapshots", help="pictures of what the drones found (black ice) go here"
    )
    parser.add_argument("--no-sim", action="store_true", help="do not start the simulator: real nests")
    parser.add_argument(
        "--sim-speed",
        type=float,
        default=1.0,
        help="simulator speed factor (also for a simulator started apart, with --no-sim): our heartbeats "
        "and measured rates follow it",
    )
    parser.add_argument("--sim-control-port", type=int, default=18500, help="the simulator's control port")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def embedded_port(host: str, wanted: int, what: str = "the embedded MQTT broker") -> int:
    for port in range(wanted, wanted + 20):
        if _port_free(host, port):
            return port
    raise OSError(f"no free port for {what} in {wanted}..{wanted + 19}")


def http_auth(tokens_file: str | None) -> tuple[TokenAuthority, str | None]:
    """The HTTP API's tokens: from the file, or else one generated dev token (a commander)."""
    if tokens_file is not None:
        return TokenAuthority(load_tokens(Path(tokens_file))), None
    auth = TokenAuthority()
    return auth, auth.add_dev_token()


@contextlib.asynccontextmanager
async def simulator(args: argparse.Namespace, config: CityConfig) -> AsyncIterator[None]:
    """The simulator as a child process; ready once it printed a line for every nest."""
    cmd = [sys.executable, "-m", "sitl", "--speed", str(args.sim_speed)]
    cmd += ["--control-port", str(args.sim_control_port)]
    if args.config:
        cmd += ["--config", args.config]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(SIM_READY_TIMEOUT_S):
            for _ in config.nests:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"simulator exited with {await proc.wait()} before it was ready")
                nest = json.loads(line)
                log.info("sim.nest", nest=nest["id"], name=nest["name"], endpoint=nest["sim_endpoint"])
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    audit_path = Path(args.audit)
    audit_path.parent.mkdir(parents=True, exist_ok=True)
    speed = args.sim_speed
    if speed <= 0:
        sys.stderr.write("--sim-speed must be positive\n")
        return 2
    clock: Clock = SystemClock() if speed == 1.0 else ScaledClock(speed)
    if args.broker is None:
        port = embedded_port("127.0.0.1", args.mqtt_port)
        mqtt = MqttSettings(embedded_port=port)
        broker_url = f"mqtt://127.0.0.1:{port} (embedded)"
    else:
        mqtt = MqttSettings(broker=args.broker)
        broker_url = args.broker
    try:
        auth, dev_token = http_auth(args.http_tokens)
    except TokensFileError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    http_port = embedded_port(args.http_host, args.http_port, "the HTTP server")
    http_url = f"http://{'127.0.0.1' if args.http_host == '0.0.0.0' else args.http_host}:{http_port}/"
    page_url = f"{http_url}?token={dev_token}" if dev_token else http_url

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("dronectl.forced_exit")
            sys.exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    async with contextlib.AsyncExitStack() as stack:
        if not args.no_sim:
            await stack.enter_async_context(simulator(args, config))
        fleet = await stack.enter_async_context(
            open_service(config, audit_path, clock=clock, heartbeat_interval_s=1.0 / speed)
        )
        controller = FleetApiController(fleet, dispatch=config.dispatch.settings())
        stack.push_async_callback(controller.aclose)
        hub = await stack.enter_async_context(open_video(fleet, Path(args.recordings)))
        outcomes = AuditOutcomes(fleet.audit)
        gateway = CommandGateway(  # one command path for MQTT and HTTP: same dedupe, roles, audit
            controller, Topics(mqtt.root), outcomes=outcomes, dedupe_memory=mqtt.dedupe_memory
        )
        lookout = Lookout(controller, hub, Path(args.snapshots), config.patrols.black_ice)
        lookout.snapshot_sinks.append(gateway.announce_snapshot)  # the pictures on MQTT too
        controller.incidents.attach_lookout(lookout)
        controller.incidents.start()  # the incidents a previous run left open: resumed or closed
        rates = TelemetryRates(mqtt.telemetry_airborne_hz, mqtt.telemetry_docked_hz, mqtt.telemetry_max_age_s)
        coverage = CoverageLayer(config, wind=lambda: fleet_wind(fleet))
        mounts = [
            lambda app, authorize: add_video_routes(app, hub, authorize),
            lambda app, authorize: add_snapshot_routes(app, lookout.store, authorize),
            lambda app, authorize: add_coverage_routes(app, coverage, authorize),
        ]
        web = WebServer(config, controller, gateway, auth, rates=rates, mounts=mounts)
        patrols = PatrolService(controller, config.patrols, lookout, timezone=config.timezone)
        line = {"mqtt": broker_url, "nests": len(config.nests), "http": http_url, "page": page_url}
        log.info("dronectl.up", **line, audit=str(audit_path))
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        async with asyncio.TaskGroup() as tg:
            api = tg.create_task(serve_api(mqtt, controller, gateway=gateway), name="api.mqtt")
            http = tg.create_task(web.serve(args.http_host, http_port), name="api.http")
            stopping = tg.create_task(stop.wait(), name="dronectl.stop")
            patrolling = tg.create_task(supervise("patrols", patrols.run, clock), name="patrols")
            await asyncio.wait({api, http, stopping}, return_when=asyncio.FIRST_COMPLETED)
            patrolling.cancel()  # the missions stay stored: resumed or ended at the next start
            api.cancel()
            http.cancel()
            stopping.cancel()
    log.info("dronectl.down")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl up", description="Run the dronectl service.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    return asyncio.run(run(args))
