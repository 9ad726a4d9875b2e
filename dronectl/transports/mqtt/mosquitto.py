"""Mosquitto as the embedded broker: preferred when the machine has it (Debian's ``mosquitto``).

    async with MosquittoBroker("127.0.0.1", 1883, users_file=Path("var/users")) as broker:
        ...  # clients connect to broker.url (MQTT 3.1.1 or 5), browsers to broker.ws_url

Why not amqtt by default: the broker matrix (tests/api/test_broker_matrix.py, run against both)
shows amqtt 0.12 answering no MQTT 5 CONNECT, delivering at the subscriber's QoS instead of the
lower of the two, with no WebSocket listener; Mosquitto does all of it. amqtt stays the fallback
on a machine without Mosquitto (the service then speaks MQTT 3.1.1 to it).

The same files as a Mosquitto started from docker/mosquitto.conf: the users file of
``dronectl users`` (mosquitto_passwd format) as ``password_file``, the ACL of roles.py as
``acl_file``; no anonymous clients. It listens on loopback by default, with MQTT over WebSockets
beside (the same users and ACL), and with ``tls`` on a TLS listener too. Its configuration lives
in a private temporary directory (0700) removed when it stops.

It is a child process that dies with the service: ``PR_SET_PDEATHSIG`` sends it SIGTERM when the
service dies, even by kill -9, so its ports are free for the next start. Its log (stderr) goes
into the service's JSON log, one event per line (``broker.mosquitto``), never as plain text; the
logins it refuses go to the login audit (Mosquitto does not say which user name was tried: the
audit row has the client's address and an empty user name).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
from collections import deque
from pathlib import Path
from types import TracebackType

import structlog

from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.roles import acl_file
from dronectl.operations.topics import DEFAULT_ROOT
from dronectl.transports.mqtt.broker import LOOPBACK, BrokerTls, announce

log = structlog.get_logger("dronectl.transports.mqtt.mosquitto")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
RESTART_DELAYS_S = (0.2, 1.0, 5.0)  # before starting Mosquitto again after it died, then again...
_PR_SET_PDEATHSIG = 1
_SIOCGIFADDR = 0x8915  # linux/sockios.h
_LINE = re.compile(r"^\d+: (?P<text>.*)$")
_NEW_CONNECTION = re.compile(r"^New connection from (?P<addr>\S+) on port \d+\.$")
_CONNECTED = re.compile(r"^New client connected from (?P<addr>\S+) as ")
_REFUSED = re.compile(r"^Client <unknown> disconnected, not authorised\.$")
_GONE = re.compile(r"^Client <unknown> (?:disconnected|closed its connection)")
_OWN_ACL_PATTERN = re.compile(r"^Warning: ACL pattern '.*' does not contain '%c' or '%u'\.$")
_VERSION = re.compile(r"mosquitto version (\d+)\.(\d+)")


def find_mosquitto() -> str | None:
    """The ``mosquitto`` binary (2.0 or later: the users file's ``$7$`` hashes), if installed."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        return None
    try:
        out = subprocess.run([found, "-h"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = _VERSION.search(out)
    return found if version is not None and int(version.group(1)) >= 2 else None


def config_text(
    *,
    host: str,
    port: int,
    ws_port: int | None,
    users_file: Path,
    acl: Path,
    tls: BrokerTls | None,
    as_root: bool,
) -> str:
    """The configuration: what docker/mosquitto.conf says, with this service's files and ports."""
    out = [
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {users_file.resolve()}",
        f"acl_file {acl.resolve()}",
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "set_tcp_nodelay true",
        "max_keepalive 600",
    ]
    if as_root:  # as root Mosquitto would become "mosquitto", who cannot read the 0600 users file
        out.append("user root")
    out += [f"listener {port} {host}", "protocol mqtt"]
    if ws_port is not None:  # libwebsockets binds to an interface by name, not to an address
        interface = ws_interface(host)
        out += [f"listener {ws_port}" + (f" {interface}" if interface else ""), "protocol websockets"]
    if tls is not None:
        out += [
            f"listener {tls.port} {tls.host}",
            "protocol mqtt",
            f"certfile {tls.cert_file.resolve()}",
            f"keyfile {tls.key_file.resolve()}",
        ]
    return "\n".join(out) + "\n"


def ws_interface(host: str) -> str | None:
    """The network interface a WebSocket listener on ``host`` binds to (None: every interface).

    Mosquitto 2.0's WebSocket listeners go through libwebsockets, which ignores an address given
    as ``listener PORT 127.0.0.1`` and listens on every interface (eclipse-mosquitto#2085,
    #3045); given an interface's name it binds to that interface's address. Raises ValueError
    for an address no interface of this machine has (IPv4 only)."""
    if host in ("", "0.0.0.0", "::", "*"):
        return None
    if host in LOOPBACK:
        return "lo"
    for _, name in socket.if_nameindex():
        if _ipv4_of(name) == host:
            return name
    raise ValueError(f"no network interface of this machine has the address {host}")


def _ipv4_of(interface: str) -> str | None:
    """The IPv4 address of ``interface`` (SIOCGIFADDR), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", interface.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class MosquittoBroker:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        users_file: Path,
        root: str = DEFAULT_ROOT,
        ws_port: int | None = None,
        tls: BrokerTls | None = None,
        login_audit: LoginAudit | None = None,
        binary: str | None = None,
    ) -> None:
        """``ws_port``: MQTT over WebSockets there (none: no WebSocket listener); ``login_audit``:
        where refused logins are audited (none: logged only); ``binary``: default find_mosquitto()."""
        self.host = host
        self.port = port
        self.ws_port = ws_port
        self.users_file = users_file
        self.root = root
        self.tls = tls
        self.login_audit = login_audit
        self.binary = binary
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._relay: asyncio.Task[None] | None = None
        self._cmd: list[str] = []
        self.restarts = 0  # times it was started again after it died
        self._pending: deque[str] = deque(maxlen=256)  # connections not logged in yet (addresses)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str | None:
        return f"ws://{self.host}:{self.ws_port}/" if self.ws_port is not None else None

    async def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("the embedded broker is already running")
        if not self.users_file.exists():
            raise FileNotFoundError(f"no users file {self.users_file} (dronectl users add ...)")
        binary = self.binary or find_mosquitto()
        if binary is None:
            raise FileNotFoundError("no mosquitto 2 on this machine (Debian: apt install mosquitto)")
        self._dir = tempfile.TemporaryDirectory(prefix="dronectl-mosquitto-")  # 0700
        directory = Path(self._dir.name)
        acl = directory / "acl"
        acl.write_text(acl_file(self.root), encoding="utf-8")
        conf = directory / "mosquitto.conf"
        conf.write_text(
            config_text(
                host=self.host,
                port=self.port,
                ws_port=self.ws_port,
                users_file=self.users_file,
                acl=acl,
                tls=self.tls,
                as_root=os.geteuid() == 0,
            ),
            encoding="utf-8",
        )
        self._cmd = [binary, "-c", str(conf)]
        try:
            await self._spawn()
        except BaseException:
            await self.stop()
            raise
        self._relay = asyncio.create_task(self._supervise(), name="broker.mosquitto")
        assert self._proc is not None
        announce(self.url, self.host, self.tls, broker="mosquitto", ws_url=self.ws_url, pid=self._proc.pid)

    async def _spawn(self) -> None:
        """Start Mosquitto and wait until it says it runs."""
        self._proc = await asyncio.create_subprocess_exec(
            *self._cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            # its own process group: a Ctrl-C in the terminal (SIGINT to the whole foreground
            # group) stops the service, which stops Mosquitto last; had Mosquitto taken the
            # signal too, the supervisor would start it again in the middle of the shutdown
            start_new_session=True,
        )
        await self._wait_running()

    async def _supervise(self) -> None:
        """Relay Mosquitto's log; if it dies while the service runs, start it again (after
        RESTART_DELAYS_S, the last one repeated): the fleet's clients reconnect to it."""
        attempt = 0
        while True:
            proc = self._proc
            if proc is not None:
                await self._relay_log(proc)
                code = await proc.wait()
                if self._proc is not proc:  # stopped by us
                    return
                log.error("broker.mosquitto.exited", code=code, restart_in_s=RESTART_DELAYS_S[attempt])
            await asyncio.sleep(RESTART_DELAYS_S[attempt])  # a back-off, not a wait for state
            attempt = min(attempt + 1, len(RESTART_DELAYS_S) - 1)
            try:
                await self._spawn()
            except (OSError, RuntimeError) as exc:
                log.error("broker.mosquitto.restart_failed", error=str(exc))
                self._proc = None
                continue
            self.restarts += 1
            attempt = 0
            assert self._proc is not None
            log.warning("broker.mosquitto.restarted", pid=self._proc.pid, restarts=self.restarts)

    async def _wait_running(self) -> None:
        """Until Mosquitto says it runs (its listeners are open then); its errors said if it stops."""
        assert self._proc is not None and self._proc.stderr is not None
        said: list[str] = []
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    raw = await self._proc.stderr.readline()
                    if not raw:
                        code = await self._proc.wait()
                        raise RuntimeError(f"mosquitto exited with {code}: {' / '.join(said[-5:])}")
                    text = self._text(raw)
                    said.append(text)
                    if text.startswith("mosquitto version") and text.endswith("running"):
                        return
                    if text.startswith("Error"):
                        log.error("broker.mosquitto", line=text)
        except TimeoutError:
            raise RuntimeError(f"mosquitto did not start within {START_TIMEOUT_S:g} s: {said[-5:]}") from None

    @staticmethod
    def _text(raw: bytes) -> str:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        match = _LINE.match(line)
        return match.group("text") if match else line

    async def _relay_log(self, proc: asyncio.subprocess.Process) -> None:
        """Mosquitto's log lines as JSON log events; refused logins into the login audit."""
        assert proc.stderr is not None
        while raw := await proc.stderr.readline():
            text = self._text(raw)
            if text.startswith("Error"):
                log.error("broker.mosquitto", line=text)
            elif _OWN_ACL_PATTERN.search(text):  # the public tree's read patterns: by design
                log.debug("broker.mosquitto", line=text)
            elif text.startswith("Warning"):
                log.warning("broker.mosquitto", line=text)
            else:
                log.info("broker.mosquitto", line=text)
            await self._watch_logins(text)

    async def _watch_logins(self, text: str) -> None:
        if match := _NEW_CONNECTION.match(text):
            self._pending.append(match.group("addr"))
        elif match := _CONNECTED.match(text):
            with contextlib.suppress(ValueError):
                self._pending.remove(match.group("addr"))
        elif _REFUSED.match(text):
            # Mosquitto names neither the user nor the address here: the address is the connection
            # still waiting to log in, when there is exactly one (else unknown)
            remote = self._pending.popleft() if len(self._pending) == 1 else ""
            remote = remote.rsplit(":", 1)[0]  # the host, not the client's port: bursts fold by host
            if self.login_audit is not None:
                await self.login_audit.failed("mqtt", "", remote, "bad user name or password (mosquitto)")
        elif _GONE.match(text) and len(self._pending) == 1:
            self._pending.clear()

    async def stop(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:  # first, so that nothing starts Mosquitto again meanwhile
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        if proc is not None:
            log.info("broker.embedded.stopped", url=self.url, broker="mosquitto")

    async def __aenter__(self) -> MosquittoBroker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
