"""TLS for MQTT from `dronectl certs`: a connection with the generated CA works, one without it
fails, on the embedded broker's 8883-style listener and on a Mosquitto with the same files; the
service itself connects over mqtts:// with the CA."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dronectl.app.certs import make_certs
from dronectl.operations.users import Directory
from dronectl.transports.mqtt.broker import BrokerTls, EmbeddedBroker
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings, TlsSettings
from tests.api.command_center import CommandCenter
from tests.api.conftest import _listening, free_tcp_port, mosquitto_binary
from tests.api.fake_controller import FakeController
from tests.identity.accounts import TEST_PASSWORD, write_users


async def _tls_login(port: int, ca: Path | None) -> None:
    """Log in as pilot-a over TLS, trusting ``ca`` (None: only the system's CAs)."""
    cc = CommandCenter("127.0.0.1", port, username="pilot-a", password=TEST_PASSWORD)
    cc.client.tls_set(ca_certs=str(ca) if ca is not None else None, cert_reqs=ssl.CERT_REQUIRED)
    await cc.connect()
    cc.close()


def test_certs_are_made_once_with_private_keys(tmp_path: Path) -> None:
    files = make_certs(tmp_path / "tls", ["broker.example", "10.0.0.5"])
    for name in ("ca.key", "server.key"):
        assert stat.S_IMODE(files[name].stat().st_mode) == 0o600
    ca_before = files["ca.pem"].read_bytes()
    again = make_certs(tmp_path / "tls", ["other.example"])
    assert again["ca.pem"].read_bytes() == ca_before  # the CA is kept: clients need not change
    context = ssl.create_default_context(cafile=str(files["ca.pem"]))
    context.load_cert_chain(str(again["server.pem"]), str(again["server.key"]))  # a matching pair


async def test_embedded_broker_tls_with_and_without_the_ca(tmp_path: Path) -> None:
    tls_files = make_certs(tmp_path / "tls", [])
    users_file = tmp_path / "users"
    account = write_users(users_file)
    plain, secure = free_tcp_port(), free_tcp_port()
    tls = BrokerTls(tls_files["server.pem"], tls_files["server.key"], port=secure)
    async with EmbeddedBroker("127.0.0.1", plain, users_file=users_file, tls=tls):
        await _tls_login(secure, tls_files["ca.pem"])
        with pytest.raises(ssl.SSLError):
            await _tls_login(secure, None)

        # the service over mqtts:// with the CA
        settings = MqttSettings(
            broker=f"mqtts://127.0.0.1:{secure}",
            protocol="3.1.1",  # the embedded broker (amqtt) speaks no MQTT 5
            tls=TlsSettings(ca_file=tls_files["ca.pem"]),
            username=account.service_user,
            password=SecretStr(account.service_password),
        )
        api = MqttApi(settings, FakeController(), role_of=Directory(users_file).role_of)
        task = asyncio.create_task(api.run())
        try:
            async with asyncio.timeout(15):
                await api.connected.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.contextmanager
def tls_mosquitto(tmp_path: Path) -> Iterator[int]:
    binary = mosquitto_binary()
    assert binary is not None, "no mosquitto binary: scripts/system-deps.sh installs it"
    files = make_certs(tmp_path / "tls", [])
    users_file = tmp_path / "users"
    write_users(users_file)
    port = free_tcp_port()
    conf = tmp_path / "mosquitto.conf"
    lines = ["per_listener_settings false", "allow_anonymous false", f"password_file {users_file}"]
    if os.geteuid() == 0:
        lines.append("user root")  # else Mosquitto becomes "mosquitto", who cannot read 0600 files
    lines += [
        f"listener {port} 127.0.0.1",
        f"cafile {files['ca.pem']}",
        f"certfile {files['server.pem']}",
        f"keyfile {files['server.key']}",
    ]
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("mosquitto with TLS did not start")
            time.sleep(0.02)  # polling for the port, bounded
        yield port
    finally:
        process.kill()
        process.wait(10)


async def test_mosquitto_tls_with_and_without_the_ca(tmp_path: Path) -> None:
    with tls_mosquitto(tmp_path) as port:
        await _tls_login(port, tmp_path / "tls" / "ca.pem")
        with pytest.raises(ssl.SSLError):
            await _tls_login(port, None)
