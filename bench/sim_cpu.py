"""CPU and memory of the simulator: 16 nests in real time, and faster.

    python bench/sim_cpu.py                       # 16 nests, 1x and 10x, 30 s each, no clients
    python bench/sim_cpu.py --clients             # a MAVLink client on every nest, as in use
    python bench/sim_cpu.py --speeds 1 --duration 60 --check

For each speed it starts ``python -m sitl --nests N --speed S`` in a child process on free ports,
waits until every nest is up (one JSON line each on the child's stdout), lets it warm up, then
measures over ``--duration`` real seconds of steady state: CPU time used by the child (user +
system, as percent of one core) and its resident memory (mean and max of 1 s samples). With
``--clients`` the bench binds each nest's client port (where the nest pushes, like MAVSDK's
``udpin://``), parses everything with pymavlink and answers with a 1 Hz GCS heartbeat, and reports
the message rates it received. The target is 16 nests in real time within 30 % of one core.

Prints human-readable lines, then one JSON line with every figure. Exit status 0, or 1 with
``--check`` when the real-time run misses the target; 2 when the simulator cannot be started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.mavlink import dronectl_v20 as mav  # noqa: E402 - needs ROOT on sys.path first

TARGET_CPU_PCT = 30.0  # of one core, 16 nests at speed 1
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
SAMPLE_PERIOD_S = 1.0
GCS_SYSTEM_ID = 255
GCS_COMPONENT_ID = 190


class BenchError(Exception):
    """The simulator could not be started or measured."""


@dataclass(frozen=True)
class Ports:
    sim_base: int
    client_base: int
    control: int


@dataclass
class ClientStats:
    messages: int = 0
    bad: int = 0
    bytes_rx: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    systems: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class RunResult:
    nests: int
    speed: float
    duration_s: float
    warmup_s: float
    clients: bool
    cpu_pct_one_core: float
    cpu_user_s: float
    cpu_system_s: float
    rss_mb_mean: float
    rss_mb_max: float
    threads: int
    startup_s: float
    msgs_per_s: float | None = None
    msgs_per_s_per_nest: float | None = None
    rx_kbps: float | None = None
    bad_frames: int | None = None
    nests_heard: int | None = None
    top_msgs_per_s: dict[str, float] | None = None


# --- ports ---------------------------------------------------------------------------------------


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tcp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(nests: int, rng: random.Random) -> Ports:
    """Two runs of ``nests`` free UDP ports (nest N uses BASE+N) and one free TCP control port."""
    for _ in range(200):
        sim_base = rng.randrange(20000, 40000, 100)
        client_base = sim_base + 50
        control = sim_base + 99
        ids = range(1, nests + 1)
        udp_ok = all(_udp_free(sim_base + i) and _udp_free(client_base + i) for i in ids)
        if nests < 49 and udp_ok and _tcp_free(control):
            return Ports(sim_base, client_base, control)
    raise BenchError("no free port range found")


# --- the simulated fleet as a child process ------------------------------------------------------


class SimProcess:
    """``python -m sitl`` in a child process; output goes to files so a full pipe never blocks it."""

    def __init__(self, nests: int, speed: float, ports: Ports, workdir: Path) -> None:
        self.nests = nests
        self.speed = speed
        self.ports = ports
        self.stdout_path = workdir / f"sitl-{speed:g}x.out"
        self.stderr_path = workdir / f"sitl-{speed:g}x.err"
        self._stdout: IO[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until every nest has reported; return the seconds that took."""
        cmd = [
            sys.executable,
            "-m",
            "sitl",
            "--control-port",
            str(self.ports.control),
            "--nests",
            str(self.nests),
            "--speed",
            f"{self.speed:g}",
            "--sim-port-base",
            str(self.ports.sim_base),
            "--client-port-base",
            str(self.ports.client_base),
            "--host",
            "127.0.0.1",
        ]
        env = dict(os.environ, DRONECTL_LOG_LEVEL=os.environ.get("DRONECTL_LOG_LEVEL", "WARNING"))
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        started = time.monotonic()
        self.popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._stdout, stderr=self._stderr)
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.popen.poll() is not None:
                raise BenchError(f"python -m sitl exited with {self.popen.returncode}: {self._tail_stderr()}")
            if self._nests_reported() >= self.nests:
                return time.monotonic() - started
            time.sleep(0.1)
        raise BenchError(f"python -m sitl did not report {self.nests} nests in {START_TIMEOUT_S:.0f} s")

    def _nests_reported(self) -> int:
        count = 0
        for line in self.stdout_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "system_id" in record:
                count += 1
        return count

    def _tail_stderr(self) -> str:
        text = self.stderr_path.read_text(encoding="utf-8", errors="replace").strip()
        return text[-2000:] if text else "(no stderr)"

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT_S)
        for handle in (self._stdout, self._stderr):
            if handle is not None:
                handle.close()


# --- MAVLink clients, one per nest ---------------------------------------------------------------


class Clients:
    """A ``udpin`` client on each nest's client port: parse everything, heartbeat back at 1 Hz."""

    def __init__(self, nests: int, ports: Ports) -> None:
        self.selector = selectors.DefaultSelector()
        self.stats: dict[int, ClientStats] = {}
        self._parsers: dict[int, mav.MAVLink] = {}
        self._peers: dict[int, tuple[str, int]] = {}
        self._sockets: dict[int, socket.socket] = {}
        self._last_heartbeat = 0.0
        self._encoder = mav.MAVLink(None, srcSystem=GCS_SYSTEM_ID, srcComponent=GCS_COMPONENT_ID)
        for nest_id in range(1, nests + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind(("127.0.0.1", ports.client_base + nest_id))
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, nest_id)
            self._sockets[nest_id] = sock
            parser = mav.MAVLink(None)
            parser.robust_parsing = True
            self._parsers[nest_id] = parser
            self.stats[nest_id] = ClientStats()

    def reset(self) -> None:
        for nest_id in self.stats:
            self.stats[nest_id] = ClientStats()

    def pump(self, until: float) -> None:
        """Receive and parse until the monotonic time ``until``."""
        while True:
            now = time.monotonic()
            if now >= until:
                return
            if now - self._last_heartbeat >= 1.0:
                self._heartbeat()
                self._last_heartbeat = now
            for key, _ in self.selector.select(timeout=min(0.05, until - now)):
                self._drain(key.data, key.fileobj)  # type: ignore[arg-type]

    def _drain(self, nest_id: int, sock: socket.socket) -> None:
        stats = self.stats[nest_id]
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                continue
            self._peers[nest_id] = addr
            stats.bytes_rx += len(data)
            try:
                messages = self._parsers[nest_id].parse_buffer(data) or []
            except Exception:  # noqa: BLE001 - pymavlink raises assorted errors on bad frames
                stats.bad += 1
                parser = mav.MAVLink(None)
                parser.robust_parsing = True
                self._parsers[nest_id] = parser
                continue
            for msg in messages:
                kind = msg.get_type()
                if kind == "BAD_DATA":
                    stats.bad += 1
                    continue
                stats.messages += 1
                stats.by_type[kind] += 1
                stats.systems.add(msg.get_srcSystem())

    def _heartbeat(self) -> None:
        frame = self._encoder.heartbeat_encode(
            mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE
        ).pack(self._encoder)
        for nest_id, addr in self._peers.items():
            with contextlib.suppress(OSError):
                self._sockets[nest_id].sendto(frame, addr)

    def close(self) -> None:
        for sock in self._sockets.values():
            self.selector.unregister(sock)
            sock.close()
        self.selector.close()


# --- one measured run ------------------------------------------------------------------------------


def _wait(clients: Clients | None, seconds: float) -> None:
    until = time.monotonic() + seconds
    if clients is not None:
        clients.pump(until)
    else:
        time.sleep(max(0.0, until - time.monotonic()))


def measure(
    nests: int,
    speed: float,
    duration_s: float,
    warmup_s: float,
    with_clients: bool,
    workdir: Path,
    rng: random.Random,
) -> RunResult:
    ports = pick_ports(nests, rng)
    clients = Clients(nests, ports) if with_clients else None
    sim = SimProcess(nests, speed, ports, workdir)
    try:
        startup_s = sim.start()
        assert sim.popen is not None
        proc = psutil.Process(sim.popen.pid)
        _wait(clients, warmup_s)
        if clients is not None:
            clients.reset()
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        rss: list[int] = []
        end = t0 + duration_s
        while (now := time.monotonic()) < end:
            rss.append(proc.memory_info().rss)
            _wait(clients, min(SAMPLE_PERIOD_S, end - now))
        cpu1 = proc.cpu_times()
        elapsed = time.monotonic() - t0
        rss.append(proc.memory_info().rss)
        threads = proc.num_threads()
        if sim.popen.poll() is not None:
            raise BenchError(f"python -m sitl died during the run: {sim._tail_stderr()}")
    except psutil.NoSuchProcess as exc:
        raise BenchError(f"python -m sitl vanished during the run: {sim._tail_stderr()}") from exc
    finally:
        sim.stop()
        if clients is not None:
            clients.close()
    user_s = cpu1.user - cpu0.user
    system_s = cpu1.system - cpu0.system
    result: dict[str, Any] = {
        "nests": nests,
        "speed": speed,
        "duration_s": round(elapsed, 2),
        "warmup_s": warmup_s,
        "clients": with_clients,
        "cpu_pct_one_core": round(100.0 * (user_s + system_s) / elapsed, 2),
        "cpu_user_s": round(user_s, 3),
        "cpu_system_s": round(system_s, 3),
        "rss_mb_mean": round(sum(rss) / len(rss) / 2**20, 1),
        "rss_mb_max": round(max(rss) / 2**20, 1),
        "threads": threads,
        "startup_s": round(startup_s, 2),
    }
    if clients is not None:
        total = sum(s.messages for s in clients.stats.values())
        by_type: Counter[str] = Counter()
        for stats in clients.stats.values():
            by_type.update(stats.by_type)
        result.update(
            msgs_per_s=round(total / elapsed, 1),
            msgs_per_s_per_nest=round(total / elapsed / nests, 1),
            rx_kbps=round(sum(s.bytes_rx for s in clients.stats.values()) * 8 / elapsed / 1000, 1),
            bad_frames=sum(s.bad for s in clients.stats.values()),
            nests_heard=sum(1 for s in clients.stats.values() if s.messages > 0),
            top_msgs_per_s={k: round(v / elapsed / nests, 2) for k, v in by_type.most_common(8)},
        )
    return RunResult(**result)


# --- command line ----------------------------------------------------------------------------------


def _human(run: RunResult, target_pct: float) -> list[str]:
    lines = [
        f"sim_cpu: {run.nests} nests at {run.speed:g}x, {run.duration_s:.1f} s steady state after "
        f"{run.warmup_s:g} s warm-up, clients: {'yes' if run.clients else 'no'} "
        f"(up in {run.startup_s:.1f} s)",
        f"  cpu  {run.cpu_pct_one_core:6.1f} % of one core  (user {run.cpu_user_s:.2f} s, "
        f"system {run.cpu_system_s:.2f} s, {run.threads} threads)",
        f"  rss  {run.rss_mb_mean:6.1f} MB mean, {run.rss_mb_max:.1f} MB max",
    ]
    if run.speed == 1.0:
        verdict = "PASS" if run.cpu_pct_one_core <= target_pct else "MISS"
        lines.append(
            f"  target: {run.nests} nests in real time within {target_pct:g} % of one core: {verdict}"
        )
    if run.msgs_per_s is not None:
        lines.append(
            f"  clients: {run.nests_heard}/{run.nests} nests heard, {run.msgs_per_s:.0f} msg/s "
            f"({run.msgs_per_s_per_nest:.0f} per nest), {run.rx_kbps:.0f} kbit/s, {run.bad_frames} bad frames"
        )
        if run.top_msgs_per_s:
            top = ", ".join(f"{k} {v:g}" for k, v in run.top_msgs_per_s.items())
            lines.append(f"  per nest msg/s: {top}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/sim_cpu.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nests", type=int, default=16, help="simulated nests (default 16)")
    parser.add_argument("--speeds", default="1,10", help="comma-separated speed factors (default 1,10)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured s per speed (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (default 5)")
    parser.add_argument("--clients", action="store_true", help="connect a MAVLink client to every nest")
    parser.add_argument("--target", type=float, default=TARGET_CPU_PCT, help="CPU target, %% of a core")
    parser.add_argument("--check", action="store_true", help="exit 1 when the 1x run misses the target")
    parser.add_argument("--seed", type=int, default=None, help="seed for the port choice")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        speeds = [float(s) for s in args.speeds.split(",") if s.strip()]
    except ValueError:
        sys.stderr.write(f"--speeds must be numbers, got {args.speeds!r}\n")
        return 2
    rng = random.Random(args.seed)
    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="sim_cpu-") as tmp:
        for speed in speeds:
            try:
                run = measure(args.nests, speed, args.duration, args.warmup, args.clients, Path(tmp), rng)
            except BenchError as exc:
                sys.stderr.write(f"sim_cpu: {exc}\n")
                return 2
            runs.append(run)
            sys.stdout.write("\n".join(_human(run, args.target)) + "\n")
            sys.stdout.flush()
    realtime = [r for r in runs if r.speed == 1.0]
    met = all(r.cpu_pct_one_core <= args.target for r in realtime) if realtime else None
    summary = {
        "bench": "sim_cpu",
        "host_cpus": psutil.cpu_count(logical=True),
        "python": sys.version.split()[0],
        "target_cpu_pct_one_core": args.target,
        "target_met": met,
        "runs": [asdict(r) for r in runs],
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 1 if args.check and met is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
