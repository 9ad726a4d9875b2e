"""Latency from an MQTT command to the MAVLink command on the nest's link, with 16 nests airborne.

    python bench/mqtt_latency.py [--samples 30] [--speed 1] [--broker mqtt://127.0.0.1:1883|shipped] [--check]

Set-up, as in production but on one machine: the simulator (16 nests, ``SimWorld``) in a child
process; in this process the real service (``open_service``: MAVSDK, pymavlink, the audit store
with FULL durability) with the MQTT API (``serve_api`` + ``FleetOperations``); and an
independent paho-mqtt client as the command center. The broker is the one at ``--broker``
(Mosquitto at 127.0.0.1:1883 by default) or, when none answers there, the embedded one;
``--broker shipped`` starts a Mosquitto of its own from docker/mosquitto.conf. Authentication is
on as in production: a users file is made for the run (the command center is the pilot ``bench``,
the service logs in with its own account) and commands go to ``.../commands/bench``; the embedded
and the shipped broker check the passwords and the ACL (a broker that answers anonymously does
not). ``--tls`` (with ``--broker shipped``) gives that Mosquitto a TLS listener from certificates
``dronectl certs`` makes for the run, and the service and the command center connect over TLS.
The broker's own floor is measured in the same run, before the commands: a small QoS 1 message
from a logged-in client to itself through the broker, one way, over plain TCP and (with ``--tls``)
over TLS, printed beside the figures; the TLS cost is the difference of the two floors.

The command center launches all 16 drones over MQTT (a short hop from each nest) and waits until
each is on station. Then every nest gets ``--samples`` commands of each kind, the next after the
previous one's final outcome with 50-150 ms of jitter between, ``--concurrency`` nests at a time
(default 1: one command in flight, as a pilot or the dispatcher sends them; 16: a stress test):

* ``light.set`` (to the payload, pymavlink): MAV_CMD_DRONECTL_LIGHT_SET on the link;
* ``hold`` (to the autopilot, MAVSDK): the mode command on the link.

Brokers: Mosquitto leaves Nagle's algorithm on unless ``set_tcp_nodelay true`` (as in
docker/mosquitto.conf); then a command queued behind an unacknowledged PUBACK waits for a delayed
ACK and the tail grows by tens of ms. Measure against such a broker for production figures.

The latency of a command is from just before the command center's publish to the moment the
simulated nest receives the matching COMMAND_LONG/COMMAND_INT (its link's dispatch is hooked in the
child; both sides read CLOCK_MONOTONIC, which is system-wide). It includes the broker hops, the
API's validation and dispatch, the audit store's committed record of the command (it is recorded
before anything is sent), the controller and the adapter. Prints p50/p95/p99/max per kind and a
JSON line; ``--check`` exits 1 when a p99 is 20 ms or more. Exit 2 when the set-up fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import queue
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.queues import Queue as MpQueue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402 - needs ROOT on sys.path first
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from adapters.mavlink import dronectl_v20 as mav  # noqa: E402
from dronectl.app.certs import make_certs  # noqa: E402
from dronectl.app.compose import compose_operations  # noqa: E402
from dronectl.audit import Durability  # noqa: E402
from dronectl.domain.clock import Clock, ScaledClock, SystemClock  # noqa: E402
from dronectl.domain.config import CityConfig, MavlinkConfig, load_config  # noqa: E402
from dronectl.domain.geo import GeoPoint, destination  # noqa: E402
from dronectl.domain.identity import generate_password  # noqa: E402
from dronectl.domain.roles import Role  # noqa: E402
from dronectl.logging import configure_logging  # noqa: E402
from dronectl.nest.service import open_service  # noqa: E402
from dronectl.nest.supervisor import Backoff  # noqa: E402
from dronectl.operations.audit_outcomes import AuditOutcomes  # noqa: E402
from dronectl.operations.roles import acl_file  # noqa: E402
from dronectl.operations.users import add_user, bootstrap  # noqa: E402
from dronectl.transports.mqtt.service import serve_api  # noqa: E402
from dronectl.transports.mqtt.settings import BrokerAddress, MqttSettings, TlsSettings, redact_url  # noqa: E402
from sitl.ports import free_udp_range  # noqa: E402

TARGET_P99_MS = 20.0
USER = "bench"  # the command center's user (a pilot) in the run's users file
FLOOR_SAMPLES = 200
SHIPPED_CONF = ROOT / "docker" / "mosquitto.conf"
HOP_M = 150.0
HOP_ALT_M = 25.0
KINDS = {"light.set": mav.MAV_CMD_DRONECTL_LIGHT_SET, "hold": mav.MAV_CMD_DO_SET_MODE}
LIGHT_MODES = ("steady", "strobe", "police", "off")
WATCHED = frozenset(KINDS.values())


class BenchError(Exception):
    """The set-up failed."""


# --- ports and config ------------------------------------------------------------------------------


def bench_config(sim_base: int, client_base: int) -> CityConfig:
    base = load_config()
    return base.model_copy(
        update={
            "mavlink": MavlinkConfig(host="127.0.0.1", client_port_base=client_base, sim_port_base=sim_base)
        }
    )


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- the simulator, in a child process ---------------------------------------------------------------


def _sim_child(sim_base: int, client_base: int, speed: float, seen: MpQueue[Any], stop: MpEvent) -> None:
    """Run the 16-nest simulator; report every watched command a nest receives (monotonic ns)."""
    from sitl.world import SimWorld, make_sites

    configure_logging()

    async def main() -> None:
        config = bench_config(sim_base, client_base)
        async with SimWorld(make_sites(config), speed=speed) as world:
            hook_watched(world, seen)
            seen.put_nowait("ready")
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def hook_watched(world: Any, seen: MpQueue[Any]) -> None:
    """Report every watched command a simulated nest of ``world`` receives on its link, as
    (monotonic ns, nest, command, param1), the moment its link dispatches it (bench/scale.py too)."""
    for nest_id, nest in world.nests.items():
        original = nest.link._dispatch

        def hooked(msg: Any, nest_id: int = nest_id, original: Any = original) -> None:
            if msg.get_msgId() in (mav.MAVLINK_MSG_ID_COMMAND_LONG, mav.MAVLINK_MSG_ID_COMMAND_INT):
                command = int(msg.command)
                if command in WATCHED:
                    seen.put_nowait((time.monotonic_ns(), nest_id, command, float(msg.param1)))
            original(msg)

        nest.link._dispatch = hooked


# --- the command center, in a child process of its own -----------------------------------------------


class CommandCenter:
    """paho-mqtt on its own thread; final outcomes collected per command id, phases per nest."""

    def __init__(self, host: str, port: int, root: str, password: str, ca: str | None = None) -> None:
        self.root = root
        self.loop = asyncio.get_running_loop()
        self.finals: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}  # each command's first answer
        self.phases: dict[int, str] = {}
        self.online = asyncio.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(USER, password)
        if ca is not None:
            self.client.tls_set(ca_certs=ca)
        self.client.on_message = self._on_message
        # a command center that cares about latency turns Nagle off (paho leaves it on)
        self.client.on_socket_open = lambda client, userdata, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        self.client.connect(host, port, 30)
        self.client.subscribe(f"{root}/replies/{USER}/#", qos=1)
        self.client.subscribe(f"{root}/status", qos=1)
        self.client.subscribe(f"{root}/nests/+/state", qos=1)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        payload = json.loads(message.payload)
        self.loop.call_soon_threadsafe(self._received, message.topic, payload)

    def _received(self, topic: str, payload: dict[str, Any]) -> None:
        if topic.endswith("/status"):
            if payload.get("state") == "online":
                self.online.set()
            return
        if topic.endswith("/state"):
            self.phases[int(payload["nest_id"])] = str(payload["phase"])
            return
        first = self.replies.get(str(payload.get("id")))
        if first is not None and not first.done():
            first.set_result(payload)
        future = self.finals.get(str(payload.get("id")))
        if future is None or future.done():
            return
        refused = payload["kind"] == "reply" and not payload["ok"]
        if refused or (
            payload["kind"] == "progress" and payload["state"] in ("succeeded", "failed", "cancelled")
        ):
            future.set_result(payload)

    def publish(self, nest_id: int, method: str, args: dict[str, Any]) -> tuple[str, int]:
        """Publish at QoS 1; returns the id and the monotonic ns just before the publish."""
        command_id = f"{method}-{uuid.uuid4().hex[:12]}"
        self.finals[command_id] = self.loop.create_future()
        self.replies[command_id] = self.loop.create_future()
        body = {
            "id": command_id,
            "method": method,
            "args": args,
            "issued_at": datetime.now(UTC).isoformat(),
            "ttl_s": 30.0,
            "reply_to": f"{self.root}/replies/{USER}/{command_id}",
        }
        data = json.dumps(body).encode()
        sent_ns = time.monotonic_ns()
        self.client.publish(f"{self.root}/nests/{nest_id}/commands/{USER}", data, qos=1)
        return command_id, sent_ns

    async def final(self, command_id: str, timeout_s: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            return await self.finals[command_id]

    async def wait_phases(self, nest_ids: list[int], phases: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(self.phases.get(n) in phases for n in nest_ids):
            if time.monotonic() > deadline:
                raise BenchError(f"nests not {sorted(phases)} after {timeout_s:g} s: {self.phases}")
            await asyncio.sleep(0.1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def broker_floor(
    host: str, port: int, root: str, login: tuple[str, str], samples: int, ca: str | None = None
) -> list[float]:
    """One-way times of small QoS 1 messages from a client to itself through the broker, logged in
    (the service's account: the only one that may both write and read a topic) with Nagle off."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[int] = asyncio.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"floor-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(*login)
    if ca is not None:
        client.tls_set(ca_certs=ca)
    client.on_socket_open = lambda c, userdata, sock: sock.setsockopt(  # type: ignore[attr-defined]
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )

    def on_message(c: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        loop.call_soon_threadsafe(arrived.put_nowait, time.monotonic_ns())

    client.on_message = on_message
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port, 30)
    client.loop_start()
    try:
        client.subscribe(f"{root}/floor/#", qos=1)
        if not await asyncio.to_thread(subscribed.wait, 10.0):
            raise BenchError("no SUBACK for the broker floor's topic")
        out: list[float] = []
        for i in range(samples):
            sent_ns = time.monotonic_ns()
            client.publish(f"{root}/floor/{i}", b"{}", qos=1)
            async with asyncio.timeout(5.0):
                out.append((await arrived.get() - sent_ns) / 1e6)
            await asyncio.sleep(0.01)
        return out
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass(frozen=True)
class Sent:
    nest_id: int
    kind: str
    command_id: str
    sent_ns: int
    param1: float | None  # what the MAVLink command must carry (the light pattern), None: any


async def _launch_all(cc: CommandCenter, config: CityConfig, speed: float) -> float:
    started = time.monotonic()
    sent = []
    for i, nest in enumerate(config.nests):
        target = destination(GeoPoint(nest.lat, nest.lon), (i * 137.0) % 360.0, HOP_M)
        args = {"target": {"lat": target.lat_deg, "lon": target.lon_deg, "alt_m": HOP_ALT_M}}
        sent.append((nest.id, cc.publish(nest.id, "launch", args)[0]))
    for nest_id, command_id in sent:
        outcome = await cc.final(command_id, timeout_s=600.0 / speed + 60.0)
        if outcome.get("state") != "succeeded":
            raise BenchError(f"nest {nest_id} launch did not reach station: {outcome}")
    return time.monotonic() - started


async def _one_command(cc: CommandCenter, nest_id: int, kind: str, i: int, rng: random.Random) -> Sent:
    if kind == "light.set":
        mode = LIGHT_MODES[i % len(LIGHT_MODES)]
        command_id, sent_ns = cc.publish(nest_id, kind, {"mode": mode})
        param1: float | None = float(getattr(mav, f"LIGHT_PATTERN_{mode.upper()}"))
    else:
        command_id, sent_ns = cc.publish(nest_id, kind, {})
        param1 = None
    outcome = await cc.final(command_id, timeout_s=15.0)
    if outcome.get("state") != "succeeded":
        raise BenchError(f"nest {nest_id} {kind} did not succeed: {outcome}")
    await asyncio.sleep(rng.uniform(0.05, 0.15))  # jitter between commands, part of the load shape
    return Sent(nest_id, kind, command_id, sent_ns, param1)


async def _measure_group(
    cc: CommandCenter, nest_ids: list[int], kind: str, samples: int, out: list[Sent]
) -> None:
    """One command in flight at a time, round-robin over ``nest_ids``."""
    rng = random.Random(nest_ids[0])
    await asyncio.sleep(rng.uniform(0.0, 0.15))
    for i in range(samples):
        for nest_id in nest_ids:
            out.append(await _one_command(cc, nest_id, kind, i, rng))


def _cc_child(
    host: str,
    port: int,
    root: str,
    password: str,
    ca: str | None,
    floor_login: tuple[str, str],
    floor_ports: list[tuple[str, int, str | None]],
    sim_base: int,
    client_base: int,
    speed: float,
    samples: int,
    concurrency: int,
    out: MpQueue[Any],
) -> None:
    """The command center: wait until every nest is ready, launch all, then send the commands."""

    async def main() -> dict[str, Any]:
        config = bench_config(sim_base, client_base)
        nest_ids = [n.id for n in config.nests]
        cc = CommandCenter(host, port, root, password, ca)
        try:
            async with asyncio.timeout(30):
                await cc.online.wait()
            floor_ms = {
                name: await broker_floor(host, floor_port, root, floor_login, FLOOR_SAMPLES, floor_ca)
                for name, floor_port, floor_ca in floor_ports
            }
            await cc.wait_phases(nest_ids, {"ready", "charging"}, 90.0)
            launch_s = await _launch_all(cc, config, speed)
            await cc.wait_phases(nest_ids, {"on_station"}, 10.0)
            sent: list[Sent] = []
            groups = [nest_ids[i::concurrency] for i in range(concurrency)]
            for kind in KINDS:
                await asyncio.gather(*(_measure_group(cc, group, kind, samples, sent) for group in groups))
            airborne_after = sum(1 for n in nest_ids if cc.phases.get(n) == "on_station")
            return {
                "launch_to_station_s": round(launch_s, 1),
                "sent": sent,
                "airborne_after": airborne_after,
                "floor_ms": floor_ms,
            }
        finally:
            cc.close()

    try:
        out.put(asyncio.run(main()))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits 2
        out.put(BenchError(f"command center: {exc!r}"))


# --- the run: the service in this process --------------------------------------------------------------


class Observations:
    def __init__(self, queue: MpQueue[Any]) -> None:
        self.queue = queue
        self.by_nest: dict[int, list[tuple[int, int, float]]] = {}

    def drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, tuple):
                t_ns, nest_id, command, param1 = item
                self.by_nest.setdefault(nest_id, []).append((t_ns, command, param1))

    def latency_ms(self, sent: Sent) -> float | None:
        for t_ns, command, param1 in self.by_nest.get(sent.nest_id, []):
            if t_ns < sent.sent_ns or command != KINDS[sent.kind]:
                continue
            if sent.param1 is not None and param1 != sent.param1:
                continue
            return (t_ns - sent.sent_ns) / 1e6
        return None


loop_lag_ms: list[float] = []
sent_on_link: list[tuple[int, int, int, float]] = []  # (t_ns, nest, command, param1) at our socket


def _watch_our_sends() -> None:
    """Note when the service hands each watched command to the kernel (the nest's link leaves here),
    so the figures split into the service's part and the simulator's time to take the datagram."""
    from adapters.mavlink.endpoint import NestEndpoint

    if getattr(NestEndpoint.send_frame, "bench_watched", False):  # once per process (bench/scale.py)
        return
    parser = mav.MAVLink(None)
    original = NestEndpoint.send_frame

    def send_frame(self: NestEndpoint, frame: bytes) -> bool:
        t_ns = time.monotonic_ns()
        ok = original(self, frame)
        if ok and len(frame) > 9 and frame[7:10] in (b"\x4c\x00\x00", b"\x4b\x00\x00"):  # COMMAND_LONG/INT
            for msg in parser.parse_buffer(frame) or []:
                command = getattr(msg, "command", None)
                if command in WATCHED:
                    sent_on_link.append((t_ns, self.nest_system_id, int(command), float(msg.param1)))
        return ok

    send_frame.bench_watched = True  # type: ignore[attr-defined]
    NestEndpoint.send_frame = send_frame  # type: ignore[method-assign]


async def _watch_loop_lag(out: list[float], period_s: float = 0.01) -> None:
    """How late the service's event loop wakes a 10 ms timer: its stalls, which every command waits out."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(period_s)
        out.append((loop.time() - start - period_s) * 1000.0)


@contextlib.asynccontextmanager
async def service(
    config: CityConfig,
    speed: float,
    settings: MqttSettings,
    audit_dir: Path,
    durability: Durability,
    users_file: Path,
    watch_sends: bool = True,
) -> AsyncIterator[None]:
    """``watch_sends``: time each watched command at our socket too (a wrapper on every frame sent;
    bench/scale.py leaves it off: at 256 nests it costs the service a few % of a core)."""
    clock: Clock = SystemClock() if speed == 1.0 else ScaledClock(speed)
    async with open_service(
        config,
        audit_dir / "audit.sqlite3",
        clock=clock,
        backoff=Backoff(first_s=0.2, max_s=2.0),
        heartbeat_interval_s=1.0 / speed,
        audit_durability=durability,
    ) as fleet:
        controller = compose_operations(fleet)
        api = asyncio.create_task(
            serve_api(settings, controller, outcomes=AuditOutcomes(fleet.audit), users_file=users_file),
            name="api",
        )
        lag = asyncio.create_task(_watch_loop_lag(loop_lag_ms), name="loop_lag")
        if watch_sends:
            _watch_our_sends()
        try:
            yield
        finally:
            lag.cancel()
            api.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await api
            await controller.aclose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def _figures(sent: list[Sent], observations: Observations, kind: str) -> dict[str, Any]:
    mine = [s for s in sent if s.kind == kind]
    latencies = [ms for s in mine if (ms := observations.latency_ms(s)) is not None]
    if not latencies:
        raise BenchError(f"no {kind} command was seen on the links")
    return {
        "samples": len(latencies),
        "unmatched": len(mine) - len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def shipped_mosquitto(users_file: Path, root: str, tmp: Path, tls: bool) -> Iterator[tuple[int, int | None]]:
    """A Mosquitto of our own from docker/mosquitto.conf (passwords and ACL on), on a free port;
    with ``tls`` a TLS listener too, from certificates ``dronectl certs`` makes in ``tmp``."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    tls_port = _free_port() if tls else None
    lines = []
    for line in SHIPPED_CONF.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            break
        lines.append(
            {"password_file": f"password_file {users_file}", "acl_file": f"acl_file {tmp / 'acl'}"}.get(
                key, line
            )
        )
    if os.geteuid() == 0:
        lines.append("user root")  # else it becomes "mosquitto", who cannot read the 0600 users file
    lines.append(f"listener {port} 127.0.0.1")
    if tls_port is not None:
        files = make_certs(tmp / "tls", [])
        lines += [f"listener {tls_port} 127.0.0.1", f"cafile {files['ca.pem']}"]
        lines += [f"certfile {files['server.pem']}", f"keyfile {files['server.key']}"]
    (tmp / "acl").write_text(acl_file(root), encoding="utf-8")
    (tmp / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen([binary, "-c", str(tmp / "mosquitto.conf")], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not all(_listening("127.0.0.1", p) for p in (port, tls_port) if p is not None):
            if time.monotonic() > deadline or process.poll() is not None:
                raise BenchError("the shipped Mosquitto did not start")
            time.sleep(0.02)
        yield port, tls_port
    finally:
        process.kill()
        process.wait(10)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return await _run(args, Path(tmp))


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sim_base, client_base = free_udp_range(20), free_udp_range(20)
    config = bench_config(sim_base, client_base)
    root = f"bench-{uuid.uuid4().hex[:8]}/dronectl/v1"
    users_file = tmp / "users"
    password = generate_password()
    add_user(users_file, USER, Role.PILOT, password)
    account = bootstrap(users_file)
    service_user, service_password = account.service_user, SecretStr(account.service_password)
    stack = contextlib.ExitStack()
    floors: list[tuple[str, int, str | None]] = []
    ca: str | None = None
    if args.broker == "shipped":
        port, tls_port = stack.enter_context(shipped_mosquitto(users_file, root, tmp, args.tls))
        floors.append(("plain", port, None))
        url = f"mqtt://127.0.0.1:{port}"
        tls = None
        broker = f"Mosquitto from docker/mosquitto.conf on port {port} (passwords and ACL on)"
        if tls_port is not None:
            ca = str(tmp / "tls" / "ca.pem")
            floors.append(("tls", tls_port, ca))
            url, tls = f"mqtts://127.0.0.1:{tls_port}", TlsSettings(ca_file=Path(ca))
            broker = f"Mosquitto from docker/mosquitto.conf, TLS on port {tls_port} (passwords and ACL on)"
        address = MqttSettings(broker=url).address()
        settings = MqttSettings(
            broker=url, tls=tls, root=root, username=service_user, password=service_password
        )
    elif args.tls:
        raise BenchError("--tls needs --broker shipped (a Mosquitto of the bench's own, with a TLS listener)")
    else:
        address = MqttSettings(broker=args.broker).address()
        if _listening(address.host, address.port):
            settings = MqttSettings(
                broker=args.broker, root=root, username=service_user, password=service_password
            )
            broker = f"{redact_url(args.broker)} (authentication as that broker is configured)"
        else:
            settings = MqttSettings(
                embedded_port=address.port, root=root, username=service_user, password=service_password
            )
            broker = f"embedded on port {address.port} (passwords and ACL on)"
    if not floors:
        floors.append(("plain", address.port, None))
    with stack:
        where = (settings, address, broker, ca, floors)
        return await _measure(args, config, sim_base, client_base, where, users_file, password, tmp)


async def _measure(
    args: argparse.Namespace,
    config: CityConfig,
    sim_base: int,
    client_base: int,
    where: tuple[MqttSettings, BrokerAddress, str, str | None, list[tuple[str, int, str | None]]],
    users_file: Path,
    password: str,
    tmp: Path,
) -> dict[str, Any]:
    settings, address, broker, ca, floors = where
    ctx = mp.get_context("spawn")
    seen: MpQueue[Any] = ctx.Queue()
    results: MpQueue[Any] = ctx.Queue()
    stop = ctx.Event()
    sim = ctx.Process(target=_sim_child, args=(sim_base, client_base, args.speed, seen, stop), daemon=True)
    sim.start()
    cc: Any = None
    try:
        first = await asyncio.to_thread(seen.get, True, 60.0)
        if first != "ready":
            raise BenchError(f"simulator said {first!r}")
        durability = Durability(args.audit_durability)
        async with service(config, args.speed, settings, tmp, durability, users_file):
            cc = ctx.Process(
                target=_cc_child,
                args=(
                    address.host,
                    address.port,
                    settings.root,
                    password,
                    ca,
                    (settings.username, settings.password.get_secret_value() if settings.password else ""),
                    floors,
                    sim_base,
                    client_base,
                    args.speed,
                    args.samples,
                    args.concurrency,
                    results,
                ),
                daemon=True,
            )
            cc.start()
            outcome = await asyncio.to_thread(results.get, True, 1800.0)
            if isinstance(outcome, BaseException):
                raise outcome
        observations = Observations(seen)
        observations.drain()
        sent: list[Sent] = outcome["sent"]
        figures: dict[str, Any] = {
            "nests_airborne": len(config.nests),
            "nests_airborne_after": outcome["airborne_after"],
            "launch_to_station_s": outcome["launch_to_station_s"],
            "speed": args.speed,
            "broker": broker,
        }
        for name, floor in outcome["floor_ms"].items():
            figures[f"broker_floor_{name}"] = {
                "samples": len(floor),
                "p50_ms": round(statistics.median(floor), 2),
                "p99_ms": round(percentile(floor, 99), 2),
            }
        for kind in KINDS:
            figures[kind] = _figures(sent, observations, kind)
        ours = Observations(seen)
        for t_ns, nest_id, command, param1 in sent_on_link:
            ours.by_nest.setdefault(nest_id, []).append((t_ns, command, param1))
        for kind in KINDS:
            figures[f"{kind} (to our socket)"] = _figures(sent, ours, kind)
        if loop_lag_ms:
            figures["service_loop_lag"] = {
                "p50_ms": round(statistics.median(loop_lag_ms), 2),
                "p99_ms": round(percentile(loop_lag_ms, 99), 2),
                "max_ms": round(max(loop_lag_ms), 2),
            }
        return figures
    finally:
        stop.set()
        for child in (sim, cc):
            if child is not None:
                child.join(10)
                if child.is_alive():
                    child.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="commands of each kind per nest")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator speed factor (1: PX4 rates)")
    parser.add_argument(
        "--broker",
        default="mqtt://127.0.0.1:1883",
        help="embedded on this port if none answers; 'shipped': a Mosquitto from docker/mosquitto.conf",
    )
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        default=None,
        help="the interpreter's GIL switch interval for the service (Python's default: 5 ms)",
    )
    parser.add_argument(
        "--audit-durability",
        choices=[d.value for d in Durability],
        default=Durability.FULL.value,
        help="the audit store's synchronous setting (the service's default: full)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        choices=range(1, 17),
        metavar="1..16",
        help="nests commanded at the same time (1: one command in flight, as a pilot or dispatcher"
        " sends them; 16: every nest at once, a stress test)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="with --broker shipped: the service and the command center over TLS (the floor both ways)",
    )
    parser.add_argument("--check", action="store_true", help=f"exit 1 unless each p99 < {TARGET_P99_MS:g} ms")
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    try:
        figures = asyncio.run(run(args))
    except (BenchError, TimeoutError, OSError) as exc:
        sys.stderr.write(f"mqtt_latency: {exc!r}\n")
        return 2
    out = sys.stdout
    out.write(
        f"{figures['nests_airborne']} nests airborne (on station after {figures['launch_to_station_s']} s; "
        f"{figures['nests_airborne_after']} still on station at the end), speed {figures['speed']:g}x, "
        f"broker {figures['broker']}\n"
    )
    ok = True
    for kind in KINDS:
        f = figures[kind]
        ok = ok and f["p99_ms"] < TARGET_P99_MS
        out.write(
            f"MQTT {kind:9s} -> MAVLink on the nest link: p50 {f['p50_ms']:.2f} ms  "
            f"p95 {f['p95_ms']:.2f} ms  p99 {f['p99_ms']:.2f} ms  max {f['max_ms']:.2f} ms  "
            f"({f['samples']} samples)\n"
        )
    for kind in KINDS:
        f = figures[f"{kind} (to our socket)"]
        out.write(
            f"MQTT {kind:9s} -> handed to the nest's socket here: p50 {f['p50_ms']:.2f} ms  "
            f"p95 {f['p95_ms']:.2f} ms  p99 {f['p99_ms']:.2f} ms  max {f['max_ms']:.2f} ms\n"
        )
    for name in ("plain", "tls"):
        floor = figures.get(f"broker_floor_{name}")
        if floor is None:
            continue
        out.write(
            f"broker floor over {'TLS' if name == 'tls' else 'plain TCP'} "
            "(a QoS 1 message to ourselves through the broker, one way): "
            f"p50 {floor['p50_ms']:.2f} ms  p99 {floor['p99_ms']:.2f} ms ({floor['samples']} samples)\n"
        )
    lag = figures.get("service_loop_lag")
    if lag is not None:
        out.write(
            f"service event-loop lag (a 10 ms timer's lateness): p50 {lag['p50_ms']:.2f} ms  "
            f"p99 {lag['p99_ms']:.2f} ms  max {lag['max_ms']:.2f} ms\n"
        )
    out.write(f"target p99 < {TARGET_P99_MS:g} ms: {'met' if ok else 'MISSED'}\n")
    out.write(json.dumps(figures) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
