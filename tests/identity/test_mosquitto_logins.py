"""Refused logins at the embedded Mosquitto reach the login audit, from Mosquitto's own log: the
first of a burst at once, with the client's host; the rest from that host counted into the burst
(whatever user name was tried: Mosquitto does not say). A good login writes nothing, and no
password is ever in the audit."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from dronectl.audit import LoginFailureRecord
from dronectl.operations.login_audit import LoginAudit
from dronectl.transports.mqtt.mosquitto import MosquittoBroker
from tests.api.command_center import poll_until
from tests.api.conftest import free_tcp_port
from tests.identity.accounts import TEST_PASSWORD, write_users

PUB = shutil.which("mosquitto_pub")
assert PUB, "mosquitto-clients is not installed: scripts/system-deps.sh installs it"
WRONG = "not-the-password-7f3a"


async def _pub(port: int, user: str, password: str) -> int:
    assert PUB is not None
    proc = await asyncio.create_subprocess_exec(
        PUB, "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password, "-t", "x", "-m", "y",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await proc.wait()


async def test_a_refused_login_is_audited_with_the_clients_address(tmp_path: Path) -> None:
    users_file = tmp_path / "users"
    write_users(users_file)
    written: list[LoginFailureRecord] = []

    async def sink(record: LoginFailureRecord) -> None:
        written.append(record)

    audit = LoginAudit(sink)
    port = free_tcp_port()
    async with MosquittoBroker("127.0.0.1", port, users_file=users_file, login_audit=audit):
        assert await _pub(port, "observer-1", TEST_PASSWORD) == 0  # a good login: nothing written
        assert await _pub(port, "observer-1", WRONG) != 0
        await poll_until(lambda: bool(written), timeout_s=10.0, what="the refused login audited")
        assert await _pub(port, "nobody-here", WRONG) != 0  # the same key: counted into the burst
        for _ in range(3):
            assert await _pub(port, "observer-1", WRONG) != 0
    [record] = written
    assert record.channel == "mqtt" and record.remote_addr == "127.0.0.1"
    assert "mosquitto" in record.reason and record.user_name == ""
    assert WRONG not in repr(record)
    await audit.flush()  # the window has not passed: the burst is still being counted
    assert audit.bursts.drain()[0].attempts == 4
