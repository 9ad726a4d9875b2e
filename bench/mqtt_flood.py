"""Command latency over MQTT during a flood of bad input, beside the same without the flood, in one run.

    python bench/mqtt_flood.py [--samples 200] [--rate 1000] [--check]

Set-up, on one machine: a Mosquitto of the bench's own from docker/mosquitto.conf (passwords and
the ACL on: a users file is made for the run); in this process the MQTT API (``MqttApi``, the
gateway with its refusal bursts) over the audit store on SQLite (FULL durability: every refusal
recorded alone and every burst row is a committed write) and the tests' fake controller, which
answers at once (so the figures are the MQTT command path's: what a flood costs lands there, not
in MAVLink). Two child processes: the command center (pilot ``bench``) and the flooder (pilot
``flood``), each a paho client.

In order, in the command center:

1. the broker's floor: a small QoS 1 message from the command center to itself through the
   broker, round trip (publish to receipt), ``--samples`` times;
2. without flood: ``--samples`` commands (``light.set``), the next after the previous one's reply
   with 20-40 ms of jitter between; latency from just before the publish to the reply's arrival;
3. with flood: the flooder sends ``--rate`` messages/s of bad input (a quarter each: not JSON,
   NaN in args, expired, dated a minute ahead) at QoS 1 for the whole phase; after one second of
   it, the same ``--samples`` commands again.

Prints p50/p95/p99/max of each, the ratios (flood / without, and each / the floor), how many bad
messages were sent and read, and the audit rows they cost; then one JSON line. ``--check`` exits 1
when the flood's p99 is more than 3 times the p99 without it, or above 1 s (issue 19's target).
Exit 2 when the set-up fails. Both CPU cores may be shared: say so beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
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
from datetime import UTC, datetime, timedelta
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

from dronectl.audit import AuditStore  # noqa: E402
from dronectl.domain.roles import Role  # noqa: E402
from dronectl.logging import configure_logging  # noqa: E402
from dronectl.operations.audit_outcomes import BURST_METHOD, AuditOutcomes  # noqa: E402
from dronectl.operations.roles import acl_file  # noqa: E402
from dronectl.operations.users import Directory, add_user, bootstrap  # noqa: E402
from dronectl.transports.mqtt.mqtt import MqttApi  # noqa: E402
from dronectl.transports.mqtt.settings import MqttSettings  # noqa: E402
from tests.api.fake_controller import FakeController  # noqa: E402

SHIPPED_CONF = ROOT / "docker" / "mosquitto.conf"
CC_USER, FLOOD_USER = "bench", "flood"
MAX_P99_S = 1.0
MAX_RATIO = 3.0


class BenchError(Exception):
    """The set-up failed."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def shipped_mosquitto(work: Path, root: str, users_file: Path) -> Any:
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        raise BenchError("no mosquitto binary (scripts/system-deps.sh installs it)")
    acl = work / "acl"
    acl.write_text(acl_file(root), encoding="utf-8")
    port = _free_port()
    lines = []
    for line in SHIPPED_CONF.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            break
        lines.append(
            {"password_file": f"password_file {users_file}", "acl_file": f"acl_file {acl}"}.get(key, line)
        )
    if os.geteuid() == 0:
        lines.append("user root")
    lines.append(f"listener {port} 127.0.0.1")
    conf = work / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (work / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"mosquitto did not start: {(work / 'mosquitto.log').read_text()}")
                time.sleep(0.02)  # polling a child's port, bounded
            yield port
        finally:
            process.kill()
            process.wait(10)


# --- the clients, in child processes -----------------------------------------------------------------


def _connect(
    port: int, user: str, password: str, on_message: Any = None, *, inflight: int = 20
) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(inflight)
    if on_message is not None:
        client.on_message = on_message
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", port, 30)
    sock = client.socket()
    if isinstance(sock, socket.socket):  # small packets at once, as the service and the broker send them
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    if not connected.wait(10):
        raise BenchError(f"{user} could not connect")
    return client


def _command(method: str, args: dict[str, Any], reply_to: str, **extra: Any) -> dict[str, Any]:
    body = {
        "id": uuid.uuid4().hex,
        "method": method,
        "args": args,
        "issued_at": datetime.now(UTC).isoformat(),
        "ttl_s": 30.0,
        "reply_to": reply_to,
    }
    body.update(extra)
    return body


def _cc_child(
    port: int,
    password: str,
    floor_login: tuple[str, str],
    root: str,
    samples: int,
    flood_on: MpEvent,
    out: MpQueue[Any],
) -> None:
    """The command center: the floor, then commands without and with the flood."""
    arrived: dict[str, float] = {}
    got = threading.Condition()

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        at = time.monotonic()
        with contextlib.suppress(ValueError, KeyError, TypeError):
            key = json.loads(message.payload)["id"]
            with got:
                arrived.setdefault(key, at)
                got.notify_all()

    try:
        client = _connect(port, CC_USER, password, on_message)
        replies = f"{root}/replies/{CC_USER}"
        client.subscribe(f"{replies}/#", qos=1)
        # the floor's client: the service's login (the ACL lets only it write anywhere), to itself
        floor_client = _connect(port, *floor_login, on_message)
        floor_client.subscribe(f"{root}/floor/#", qos=1)
        time.sleep(0.5)  # the SUBACKs: paho's threaded client has no wait for them here; one-off set-up

        def round_trip(topic: str, payload: dict[str, Any], key: str, via: paho.Client = client) -> float:
            start = time.monotonic()
            via.publish(topic, json.dumps(payload), qos=1)
            with got:
                if not got.wait_for(lambda: key in arrived, timeout=10):
                    raise BenchError(f"no answer to {key}")
                return arrived[key] - start

        floor = []
        for _ in range(samples):
            key = uuid.uuid4().hex
            floor.append(round_trip(f"{root}/floor/x", {"id": key}, key, floor_client))
        nests = [1, 2, 3]

        def commands() -> list[float]:
            out_s = []
            for n in range(samples):
                body = _command("light.set", {"mode": "steady"}, f"{replies}/c")
                topic = f"{root}/nests/{nests[n % 3]}/commands/{CC_USER}"
                out_s.append(round_trip(topic, body, body["id"]))
                time.sleep(random.uniform(0.02, 0.04))  # jitter between commands, as a pilot sends them
            return out_s

        quiet = commands()
        flood_on.set()
        time.sleep(1.0)  # the flood's first second: it is steady when the commands start
        flooded = commands()
        flood_on.clear()
        out.put({"floor": floor, "quiet": quiet, "flood": flooded})
        for each in (client, floor_client):
            each.loop_stop()
            each.disconnect()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits 2
        out.put({"error": repr(exc)})


def _flood_child(
    port: int, password: str, root: str, rate: int, flood_on: MpEvent, out: MpQueue[Any]
) -> None:
    """The flooder: ``rate`` messages/s of bad input while ``flood_on`` is set (after it was)."""
    try:
        client = _connect(port, FLOOD_USER, password, inflight=1000)
        if not flood_on.wait(300):
            raise BenchError("the flood was never started")
        topic = f"{root}/nests/2/commands/{FLOOD_USER}"
        reply_to = f"{root}/replies/{FLOOD_USER}/x"
        old = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
        sent = 0
        start = time.monotonic()
        while flood_on.is_set():
            due = int((time.monotonic() - start) * rate)
            while sent < due:
                kind = sent % 4
                if kind == 0:
                    payload = b"\xff not json " + str(sent).encode()
                else:
                    body = _command("light.set", {"mode": "steady"}, reply_to)
                    if kind == 1:
                        body["args"] = {"mode": "steady", "x": 1.0}
                    elif kind == 2:
                        body["issued_at"], body["ttl_s"] = old, 10.0
                    else:
                        body["issued_at"] = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
                    payload = json.dumps(body).encode()
                    if kind == 1:
                        payload = payload.replace(b'"x": 1.0', b'"x": NaN')
                client.publish(topic, payload, qos=1)
                sent += 1
            time.sleep(0.005)  # pacing: 5 ms ticks
        out.put({"flood_sent": sent, "flood_s": time.monotonic() - start})
        client.loop_stop()
        client.disconnect()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits 2
        out.put({"error": repr(exc)})


# --- the run ----------------------------------------------------------------------------------------


def _stats(values_s: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98], "max_ms": ms[-1]}


def _busy(api: MqttApi) -> bool:
    return api.decided < api.received or api.gateway.refusals_pending()


async def _settled(api: MqttApi, timeout_s: float = 60.0) -> None:
    """Until the flood's backlog is decided and its bursts recorded (a burst ends after a quiet second)."""
    for _ in range(int(timeout_s / 0.1)):
        if not _busy(api):
            return
        await asyncio.sleep(0.1)  # polling the service's counters, bounded


async def run(samples: int, rate: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mqtt-flood-") as tmp:
        work = Path(tmp)
        users_file = work / "users"
        password = uuid.uuid4().hex
        add_user(users_file, CC_USER, Role.PILOT, password)
        add_user(users_file, FLOOD_USER, Role.PILOT, password)
        account = bootstrap(users_file)
        root = f"bench-{uuid.uuid4().hex[:8]}/dronectl/v1"
        with shipped_mosquitto(work, root, users_file) as port:
            store = await AuditStore.open(work / "audit.db")
            settings = MqttSettings(
                broker=f"mqtt://127.0.0.1:{port}",
                root=root,
                username=account.service_user,
                password=SecretStr(account.service_password),
                persistent_session=False,
            )
            api = MqttApi(
                settings,
                FakeController(),
                outcomes=AuditOutcomes(store),
                role_of=Directory(users_file).role_of,
            )
            service = asyncio.create_task(api.run(), name="bench.api")
            floor_login = (account.service_user, account.service_password)
            ctx = mp.get_context("spawn")
            flood_on = ctx.Event()
            results: MpQueue[Any] = ctx.Queue()
            children = [
                ctx.Process(
                    target=_cc_child,
                    args=(port, password, floor_login, root, samples, flood_on, results),
                ),
                ctx.Process(target=_flood_child, args=(port, password, root, rate, flood_on, results)),
            ]
            try:
                async with asyncio.timeout(15):
                    await api.connected.wait()
                for child in children:
                    child.start()
                merged: dict[str, Any] = {}
                for _ in children:
                    merged.update(await asyncio.to_thread(results.get, True, 600))
                    if "error" in merged:
                        broker_log = (work / "mosquitto.log").read_text(errors="replace")[-2000:]
                        raise BenchError(f"{merged['error']}; the broker's log ends: {broker_log}")
                await _settled(api)
                rows = await store.commands(actor_id=FLOOD_USER, limit=1_000_000)
            finally:
                for child in children:
                    child.join(30)
                    if child.is_alive():
                        child.kill()
                service.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await service
                await store.close()
    bursts = [r for r in rows if r["method"] == BURST_METHOD]
    return {
        "samples": samples,
        "rate_per_s": rate,
        "floor": _stats(merged["floor"]),
        "quiet": _stats(merged["quiet"]),
        "flood": _stats(merged["flood"]),
        "flood_sent": merged["flood_sent"],
        "flood_rate_achieved_per_s": merged["flood_sent"] / merged["flood_s"],
        "read_by_service": api.received,
        "audit_rows_for_the_flood": len(rows),
        "burst_rows": len(bursts),
        "refusals_in_bursts": sum(int(r["args"]["count"]) for r in bursts),
        "refusal_replies_dropped": api.outbox_dropped,
        "refusal_replies_rate_limited": api.replies_limited,
        "loadavg": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1000, help="bad messages per second")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    configure_logging(level="warning")
    try:
        result = asyncio.run(run(args.samples, args.rate))
    except BenchError as exc:
        print(f"set-up failed: {exc}", file=sys.stderr)
        return 2
    floor, quiet, flood = result["floor"], result["quiet"], result["flood"]
    for name, s in (
        ("broker floor (round trip)", floor),
        ("command, no flood", quiet),
        ("command, flood", flood),
    ):
        print(
            f"{name:28s} p50 {s['p50_ms']:7.2f} ms  p95 {s['p95_ms']:7.2f}  p99 {s['p99_ms']:7.2f}  "
            f"max {s['max_ms']:7.2f}"
        )
    ratios = {
        "flood/quiet p50": flood["p50_ms"] / quiet["p50_ms"],
        "flood/quiet p99": flood["p99_ms"] / quiet["p99_ms"],
        "quiet/floor p50": quiet["p50_ms"] / floor["p50_ms"],
        "flood/floor p50": flood["p50_ms"] / floor["p50_ms"],
    }
    result["ratios"] = ratios
    print("  ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    r = result
    print(
        f"flood: {r['flood_sent']} bad messages at {r['flood_rate_achieved_per_s']:.0f}/s, "
        f"{r['read_by_service']} messages read by the service; {r['audit_rows_for_the_flood']} audit "
        f"rows for the flooder ({r['burst_rows']} bursts counting {r['refusals_in_bursts']}); "
        f"{r['refusal_replies_rate_limited']} refusal replies not sent (rate limit), "
        f"{r['refusal_replies_dropped']} dropped (outbox full); load average {r['loadavg'][0]:.2f}"
    )
    print(json.dumps(result))
    if args.check and (flood["p99_ms"] > MAX_RATIO * quiet["p99_ms"] or flood["p99_ms"] > MAX_P99_S * 1000):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
