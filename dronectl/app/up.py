"""``dronectl up``: the whole service in one process.

With no hardware configured it starts the built-in simulator (``python -m sitl``) as a child
process with the same city config, and with no broker configured an embedded MQTT broker. The
HTTP server (command-center page, REST/WebSocket API, WHEP video) listens on ``--http-port``.
Users come from ``--users`` (``var/users``): without one, it is created with a ``commander`` whose
generated password is printed once in the JSON line on stdout (``"login"``), and the service's
own broker account; the service connects to the broker as that account;
people sign in on the page with the users file (a session cookie); machine clients use bearer
tokens from ``--http-tokens`` (``var/tokens``, made by ``dronectl tokens create USER``).
Shutdown order on SIGINT/SIGTERM: stop the APIs (MQTT status offline, HTTP), stop the video,
stop the fleet tasks (drones keep flying under PX4's own failsafes), close the links, flush the
audit store, stop the simulator. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr

from dronectl import __version__
from dronectl.app.ha import lease_keeping
from dronectl.app.leader import AutomationsTerm, lead_automations
from dronectl.audit import is_postgres_url, redact
from dronectl.domain.clock import Clock, ScaledClock, SystemClock, parse_instant
from dronectl.domain.config import CityConfig, ConfigError, load_config
from dronectl.domain.identity import IdentityError
from dronectl.domain.patrols import outlook
from dronectl.logging import configure_logging
from dronectl.nest.fleet import Fleet
from dronectl.nest.leases import LeaseKeeper, LeaseSettings
from dronectl.nest.service import open_service
from dronectl.operations.tokens import DEFAULT_TOKENS_FILE, TokenFile
from dronectl.operations.topics import Topics
from dronectl.operations.users import DEFAULT_USERS_FILE, Directory, bootstrap
from dronectl.transports.mqtt.broker import BrokerTls
from dronectl.transports.mqtt.mosquitto import find_mosquitto
from dronectl.transports.mqtt.settings import MqttSettings, parse_broker_url, redact_url
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.cors import origins_of
from dronectl.transports.web.tiles import open_tiles

if TYPE_CHECKING:
    from dronectl.transports.web.health import Health

log = structlog.get_logger("dronectl")

SIM_READY_TIMEOUT_S = 30.0
NESTS_PER_SIM_SHARD = 64  # one simulator process steps about this many nests in real time on a core
# After Ctrl-C, what is still stopping this long after is cancelled (a command to a nest that is
# gone, a camera that will not answer): with the loop's close (adapters.blocking) it stops in 5 s.
SHUTDOWN_BUDGET_S = 3.0
SHUTDOWN_OVERRUN = "dronectl: shutdown overran its budget"
ADOPT_PERIOD_S = 1.0  # several instances: the leader looks for incidents another instance recorded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="city config file (default: the shipped one)")
    parser.add_argument(
        "--audit",
        default="var/audit.sqlite3",
        help="audit store: a SQLite file, or postgresql://user@host:5432/db (shared by several instances)",
    )
    parser.add_argument(
        "--audit-spool",
        default="var/audit-spool.sqlite3",
        help="with a PostgreSQL audit store: where flight records wait while it is unreachable",
    )
    parser.add_argument(
        "--broker",
        default=None,
        help="mqtt://[user:password@]host:port of Mosquitto/EMQX; default: an embedded broker. Without "
        "a user the service logs in as its own account (dronectl) from the users file",
    )
    parser.add_argument(
        "--tls-cert",
        default=None,
        help="server certificate (PEM) for MQTT over TLS (embedded broker) and HTTPS (dronectl certs)",
    )
    parser.add_argument("--tls-key", default=None, help="its private key (PEM, mode 0600)")
    parser.add_argument(
        "--mqtts-port", type=int, default=8883, help="the embedded broker's TLS port (next free if taken)"
    )
    parser.add_argument(
        "--users",
        default=str(DEFAULT_USERS_FILE),
        help="users file (mosquitto_passwd format; roles beside it); created with a commander when missing",
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=1883, help="embedded broker port (next free one if taken)"
    )
    parser.add_argument(
        "--embedded-broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="the embedded broker: Mosquitto where the machine has it (auto), else amqtt (MQTT 3.1.1 "
        "only, no WebSockets)",
    )
    parser.add_argument(
        "--mqtt-ws-port",
        type=int,
        default=9001,
        help="the embedded Mosquitto's MQTT over WebSockets, for browsers (next free if taken)",
    )
    parser.add_argument(
        "--http-port", type=int, default=8080, help="command-center page and HTTP API (next free if taken)"
    )
    parser.add_argument("--http-host", default="127.0.0.1", help="HTTP address (0.0.0.0: every interface)")
    parser.add_argument(
        "--whep-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another site (https://host[:port]) whose pages may play video over WHEP with a token "
        "(CORS); repeat for several",
    )
    parser.add_argument(
        "--http-tokens",
        default=str(DEFAULT_TOKENS_FILE),
        help="API tokens file (var/tokens; `dronectl tokens create USER`): bearer tokens for machine"
        " clients, each acting as its user (people sign in on the page)",
    )
    parser.add_argument(
        "--recordings", default="var/recordings", help="each flight's video is recorded in this directory"
    )
    parser.add_argument(
        "--snapshots", default="var/snapshots", help="pictures of what the drones found (black ice) go here"
    )
    parser.add_argument(
        "--instance-id",
        default=socket.gethostname(),
        help="this instance's name among several sharing a PostgreSQL store (default: the host name)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=LeaseSettings().ttl_s,
        help="seconds after which another instance takes over a nest whose lease was not renewed",
    )
    parser.add_argument("--no-sim", action="store_true", help="do not start the simulator: real nests")
    parser.add_argument(
        "--mavlink-keys",
        default="var/keys/mavlink",
        help="the nests' MAVLink signing keys: a 0700 directory, a 0600 file per nest (never in the config)",
    )
    parser.add_argument(
        "--sim-state",
        default="var/sitl",
        help="the built-in simulator's state directory (its nests' signing keys, kept across restarts)",
    )
    parser.add_argument(
        "--sim-speed",
        type=float,
        default=1.0,
        help="simulator speed factor (also for a simulator started apart, with --no-sim): our heartbeats "
        "and measured rates follow it",
    )
    parser.add_argument("--sim-control-port", type=int, default=18500, help="the simulator's control port")
    parser.add_argument(
        "--sim-shards",
        type=int,
        default=None,
        help=f"simulator processes (python -m sitl --shards); default one per {NESTS_PER_SIM_SHARD} nests",
    )
    parser.add_argument(
        "--clock-start",
        default=None,
        metavar="ISO-8601",
        help="simulation and training: the automations (patrol schedules) act as if the day started at "
        "this instant, e.g. 2026-12-06T14:00:00+08:00 (a Sunday afternoon in Changchun), then advanced "
        "at the simulator's speed; records keep the real time. Refused with --no-sim",
    )


def ops_health(
    args: argparse.Namespace, config: CityConfig, fleet: Fleet, keeper: LeaseKeeper | None, mqtt: MqttSettings
) -> Health:
    """The on-call endpoints (transports/web/health.py), fed from the fleet, leases and store."""
    from dronectl.app import parts  # loaded by run() once the fleet is up (MAVLink first)

    every = [n.id for n in config.nests]
    address = mqtt.address()

    def link_up(nest_id: int) -> bool:
        nest = fleet.nest(nest_id)
        return bool(nest.drone.link_up and nest.dock.link_up)

    health = parts.Health(
        parts.Probes(
            instance_id=args.instance_id,
            nest_ids=every,
            link_up=link_up,
            owned=keeper.owned if keeper is not None else lambda: every,
            store_ping=fleet.audit.ping,
            broker=(address.host, address.port),
            lease_counts=None if keeper is None else lambda: (keeper.renewals, keeper.takeovers),
            leading=None if keeper is None else keeper.leading,
        )
    )
    fleet.audit.command_observers.append(health.observe_command)
    return health


def mqtt_client_id(instance_id: str, audit: str) -> str:
    """The MQTT client id of this instance's persistent session: the same across restarts of one
    installation (its instance id and audit store), different for two installations on one host
    sharing a broker (a client id taken over would disconnect the other)."""
    where = audit if is_postgres_url(audit) else str(Path(audit).resolve())
    digest = hashlib.sha256(f"{instance_id}\0{where}".encode()).hexdigest()[:12]
    return f"dronectl-{instance_id[:40]}-{digest}"


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


def http_auth(tokens_file: Path, users_file: Path) -> TokenAuthority:
    """The HTTP API's bearer tokens for machine clients (``dronectl tokens create USER``; each acts
    as its user, with the users file's role). People sign in on the page with the users file: no
    token in any URL. Raises IdentityError for a broken tokens file or one others may read."""
    tokens = TokenFile(tokens_file)
    tokens.check()
    return TokenAuthority(tokens_file=tokens, role_of=Directory(users_file).role_of)


@contextlib.asynccontextmanager
async def simulator(args: argparse.Namespace, config: CityConfig) -> AsyncIterator[None]:
    """The simulator as a child process; ready once it printed a line for every nest."""
    cmd = [sys.executable, "-m", "sitl", "--speed", str(args.sim_speed)]
    cmd += ["--control-port", str(args.sim_control_port), "--exit-with-parent"]
    cmd += ["--state-dir", args.sim_state]
    shards = args.sim_shards or -(-len(config.nests) // NESTS_PER_SIM_SHARD)
    if shards > 1:  # the nests over several processes: the simulator is never what is slow
        cmd += ["--shards", str(shards)]
    if args.config:
        cmd += ["--config", args.config]
    # its standard input is a pipe we hold and never write: when this process dies, even by kill -9,
    # the pipe closes and the simulator stops, freeing its ports for the next start
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        # a few hundred nests take their shards a while to start on a loaded machine
        async with asyncio.timeout(max(SIM_READY_TIMEOUT_S, 0.25 * len(config.nests))):
            for _ in config.nests:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(
                        f"simulator exited with {await proc.wait()} before it was ready"
                        " (its reason is logged above)"
                    )
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
        base_map = open_tiles(config.basemap)  # the base map's PMTiles file: unusable, said now
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if base_map is not None:
        base_map.close()  # the page's server opens it again for itself
    audit_path: Path | str = args.audit  # a postgresql:// URL, or a SQLite file
    if not is_postgres_url(args.audit):
        audit_path = Path(args.audit)
        audit_path.parent.mkdir(parents=True, exist_ok=True)
    speed = args.sim_speed
    if speed <= 0:
        sys.stderr.write("--sim-speed must be positive\n")
        return 2
    calendar_start = None
    if args.clock_start is not None:
        if args.no_sim:  # real drones would launch on a made-up calendar
            sys.stderr.write("--clock-start is for simulation and training: refused with --no-sim\n")
            return 2
        try:
            calendar_start = parse_instant(args.clock_start)
        except ValueError as exc:
            sys.stderr.write(f"--clock-start: {exc}\n")
            return 2
    clock: Clock = SystemClock(calendar_start) if speed == 1.0 else ScaledClock(speed, calendar_start)
    users_file = Path(args.users)
    try:
        account = bootstrap(users_file)
    except (IdentityError, OSError) as exc:
        sys.stderr.write(f"users file {users_file}: {exc}\n")
        return 2
    service_password = SecretStr(account.service_password)
    client_id = mqtt_client_id(args.instance_id, args.audit)
    ws_url: str | None = None
    try:
        if args.broker is None:
            kind = args.embedded_broker
            if kind != "amqtt":
                found = find_mosquitto() is not None
                if not found and kind == "mosquitto":
                    sys.stderr.write("--embedded-broker mosquitto: no mosquitto 2 on this machine\n")
                    return 2
                kind = "mosquitto" if found else "amqtt"
            port = embedded_port("127.0.0.1", args.mqtt_port)
            ws_port = None
            if kind == "mosquitto":
                ws_port = embedded_port("127.0.0.1", args.mqtt_ws_port, "the broker's WebSocket listener")
            mqtt = MqttSettings(
                embedded_port=port,
                embedded_broker=kind,
                embedded_ws_port=ws_port,
                username=account.service_user,
                password=service_password,
                client_id=client_id,
            )
            broker_url = f"mqtt://127.0.0.1:{port} (embedded {kind})"
            if ws_port is not None:
                ws_url = f"ws://127.0.0.1:{ws_port}/ (embedded {kind})"
        else:
            address = parse_broker_url(args.broker)
            mqtt = MqttSettings(broker=args.broker, client_id=client_id)
            if address.username is None:  # none in the URL: the service's own account
                mqtt = MqttSettings(
                    broker=args.broker,
                    username=account.service_user,
                    password=service_password,
                    client_id=client_id,
                )
            broker_url = redact_url(args.broker)
    except ValueError as exc:  # the message never repeats a password
        sys.stderr.write(f"--broker: {exc}\n")
        return 2
    try:
        auth = http_auth(Path(args.http_tokens), users_file)
    except (IdentityError, OSError) as exc:
        sys.stderr.write(f"tokens file {args.http_tokens}: {exc}\n")
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        sys.stderr.write("--tls-cert and --tls-key go together\n")
        return 2
    try:
        player_origins = origins_of(args.whep_origin)
    except ValueError as exc:
        sys.stderr.write(f"--whep-origin: {exc}\n")
        return 2
    tls_files = (Path(args.tls_cert), Path(args.tls_key)) if args.tls_cert and args.tls_key else None
    broker_tls = None
    if tls_files is not None and args.broker is None:
        tls_port = embedded_port("127.0.0.1", args.mqtts_port, "the embedded broker's TLS listener")
        broker_tls = BrokerTls(tls_files[0], tls_files[1], port=tls_port)
    http_port = embedded_port(args.http_host, args.http_port, "the HTTP server")
    scheme = "https" if tls_files is not None else "http"
    http_url = f"{scheme}://{'127.0.0.1' if args.http_host == '0.0.0.0' else args.http_host}:{http_port}/"
    page_url = http_url  # sign in there with a user of the users file

    try:
        Topics(mqtt.root).instance_status(args.instance_id)  # its status topic on MQTT
    except ValueError as exc:
        sys.stderr.write(f"--instance-id: {exc}\n")
        return 2
    try:
        lease_settings = LeaseSettings(ttl_s=args.lease_ttl)
    except ValueError as exc:
        sys.stderr.write(f"--lease-ttl: {exc}\n")
        return 2

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    overrun: list[asyncio.TimerHandle] = []

    def overran() -> None:
        log.warning("dronectl.shutdown_overrun", budget_s=SHUTDOWN_BUDGET_S)
        if main is not None:
            main.cancel(SHUTDOWN_OVERRUN)  # what still stops gets CancelledError; the rest unwinds

    def on_signal() -> None:
        if stop.is_set():
            log.warning("dronectl.forced_exit")
            sys.exit(130)
        log.info("dronectl.stopping")
        stop.set()
        overrun.append(loop.call_later(SHUTDOWN_BUDGET_S, overran))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    async with contextlib.AsyncExitStack() as stack:
        if not args.no_sim:
            await stack.enter_async_context(simulator(args, config))
        keeper = await stack.enter_async_context(
            lease_keeping(
                args.audit,
                args.instance_id,
                [n.id for n in config.nests],
                lease_settings,
                {"http": http_url, "mqtt": broker_url},
            )
        )
        fleet = await stack.enter_async_context(
            open_service(
                config,
                audit_path,
                clock=clock,
                heartbeat_interval_s=1.0 / speed,
                audit_spool=Path(args.audit_spool),
                gate=keeper,  # with leases: control only the nests this instance holds
                keys_dir=Path(args.mavlink_keys),
                # The built-in simulator is ours, on loopback: its nests get keys at first start.
                provision_keys=not args.no_sim,
            )
        )
        if keeper is not None:  # every write about a nest carries this instance's fencing token
            fleet.audit.fence_for = keeper.fence
        # MAVLink first (issue 19): the rest of the service (operations, automations, transports,
        # video: most of the start's imports) is loaded once the fleet's heartbeats are going out,
        # so a restart is heard by airborne drones long before PX4's COM_DL_LOSS_T
        from dronectl.app import parts

        dispatch = config.dispatch.settings()
        controller = parts.FleetOperations(fleet, dispatch=dispatch)  # the one port of the application
        stack.push_async_callback(controller.aclose)
        hub = await stack.enter_async_context(parts.open_video(fleet, Path(args.recordings)))
        outcomes = parts.AuditOutcomes(fleet.audit)
        gateway = parts.CommandGateway(  # one command path for MQTT and HTTP: same dedupe, roles, audit
            controller, parts.Topics(mqtt.root), outcomes=outcomes, dedupe_memory=mqtt.dedupe_memory
        )
        if keeper is not None:  # requests for nests another instance holds are that one's to answer
            gateway.holds = keeper.held
            # ... kept here all the same, and decided if this instance gains the nest before that
            # one answered them (it died): a request sent during a takeover is not lost
            keeper.listeners.append(
                lambda nest, fence: gateway.nest_gained(nest) if fence is not None else None
            )
            # the automations run on one instance, the leader (app/leader.py): its writes fenced
            gateway.leads = keeper.leading
            controller.automations_elsewhere = True
            controller.incident_intake = parts.IncidentIntake(controller).take  # recorded for the leader
            fleet.audit.lead_for = keeper.lead_fence
        lookout = parts.Lookout(controller, hub, Path(args.snapshots), config.patrols.black_ice)
        lookout.snapshot_sinks.append(gateway.announce_snapshot)  # the pictures on MQTT too

        def automations_term() -> AutomationsTerm:
            """Incident dispatch and patrols for one term of leadership (every term with one
            instance); they register themselves on the port and start with the restart path."""
            incidents = parts.IncidentDispatcher(controller, dispatch)
            incidents.attach_lookout(lookout)
            patrols = parts.PatrolService(controller, config.patrols, lookout, timezone=config.timezone)
            adopt_period_s = None if keeper is None else ADOPT_PERIOD_S  # incidents others recorded
            return AutomationsTerm(incidents, patrols, clock, adopt_period_s)

        every_nest = tuple(n.id for n in config.nests)

        def holding() -> parts.Holding:  # for {root}/instances/{id}/status
            if keeper is None:
                return parts.Holding(every_nest, leader=True)
            return parts.Holding(tuple(keeper.owned()), leader=keeper.leading())

        instance_status = parts.InstanceStatusPublisher(mqtt, args.instance_id, holding, version=__version__)
        if keeper is not None:
            keeper.listeners.append(lambda _nest, _fence: instance_status.changed())
        rates = parts.TelemetryRates(
            mqtt.telemetry_airborne_hz, mqtt.telemetry_docked_hz, mqtt.telemetry_max_age_s
        )
        coverage = parts.CoverageLayer(config, wind=lambda: parts.fleet_wind(fleet))
        mounts = [
            lambda app, authorize: parts.add_video_routes(app, hub, authorize, player_origins=player_origins),
            lambda app, authorize: parts.add_snapshot_routes(app, lookout.store, authorize),
            lambda app, authorize: parts.add_coverage_routes(app, coverage, authorize),
            # after the incident: replay and evidence, from the audit store and the recordings
            lambda app, authorize: parts.add_replay_routes(
                app, fleet.audit, Path(args.recordings), lookout.store, authorize
            ),
            ops_health(args, config, fleet, keeper, mqtt).mount,  # /metrics, /healthz, /readyz: no token
        ]

        def automations() -> dict[str, Any]:
            return outlook.report(config.patrols, config.timezone, clock.calendar())

        # refused logins (broker, login page, bearer tokens) into the audit, folded into bursts
        login_audit = parts.LoginAudit(fleet.audit.record_login_failure)
        auth.login_audit = login_audit
        web = parts.WebServer(
            config,
            controller,
            gateway,
            auth,
            rates=rates,
            mounts=mounts,
            clock=clock.wall,
            automations=automations,
            # log in with the users file: a session cookie
            sessions=parts.Sessions(Directory(users_file), login_audit=login_audit),
        )
        line: dict[str, Any] = {
            "instance": args.instance_id,
            "mqtt": broker_url,
            "nests": len(config.nests),
            "http": http_url,
            "page": page_url,
        }
        if broker_tls is not None:
            line["mqtts"] = f"mqtts://127.0.0.1:{broker_tls.port} (embedded)"
        if ws_url is not None:
            line["mqtt_ws"] = ws_url
        log.info("dronectl.up", **line, audit=redact(str(audit_path)), users=str(users_file))
        if account.first_user is not None:  # shown once, on stdout only (never logged)
            line["login"] = {"user": account.first_user, "password": account.first_password}
        ahead = automations()  # what they will do on their own, so that nobody is surprised
        loud = args.clock_start is not None or any(a["active"] for a in ahead["automations"])
        (log.warning if loud else log.info)(ahead["text"], calendar=ahead["at"], clock_start=args.clock_start)
        line["automations"] = ahead["automations"]
        if args.clock_start is not None:
            line["clock_start"] = args.clock_start
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        async with asyncio.TaskGroup() as tg:
            # first, so that with one instance dispatch is on the port before a request can come;
            # incidents and missions stay stored: resumed or ended by the next leader or start
            automating = tg.create_task(lead_automations(keeper, automations_term), name="automations")
            api = tg.create_task(
                parts.serve_api(
                    mqtt,
                    controller,
                    gateway=gateway,
                    version=__version__,
                    users_file=users_file,
                    tls=broker_tls,
                    login_audit=login_audit,
                ),
                name="api.mqtt",
            )
            auditing = tg.create_task(login_audit.run(), name="audit.logins")
            http = tg.create_task(web.serve(args.http_host, http_port, tls=tls_files), name="api.http")
            announcing = tg.create_task(instance_status.run(), name="mqtt.instance_status")
            stopping = tg.create_task(stop.wait(), name="dronectl.stop")
            await asyncio.wait({api, http, stopping}, return_when=asyncio.FIRST_COMPLETED)
            automating.cancel()
            announcing.cancel()  # says offline: a clean stop sends no last will
            auditing.cancel()  # writes the bursts of refused logins counted and not written yet
            api.cancel()
            http.cancel()
            stopping.cancel()
    for handle in overrun:
        handle.cancel()
    log.info("dronectl.down")
    return 0


async def _stopped_within_budget(run: Coroutine[Any, Any, int]) -> int:
    """``run``, whose shutdown, past its budget, is cancelled (``SHUTDOWN_OVERRUN``): that ends it."""
    try:
        return await run
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if exc.args != (SHUTDOWN_OVERRUN,) or task is None:
            raise
        task.uncancel()
        log.info("dronectl.down", overrun=True)
        return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl up", description="Run the dronectl service.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    structlog.contextvars.bind_contextvars(instance=args.instance_id)  # on every log line
    return asyncio.run(_stopped_within_budget(run(args)))
