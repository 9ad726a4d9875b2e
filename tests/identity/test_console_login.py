"""The console logs in as a user of the users file: the embedded broker (passwords and ACL on)
and the MQTT API in front of a fake controller; ``dronectl`` one-shot commands as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dronectl.operations.users import Directory
from dronectl.transports.mqtt.broker import EmbeddedBroker
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.conftest import free_tcp_port
from tests.api.fake_controller import FakeController
from tests.conftest import REPO_ROOT
from tests.identity.accounts import TEST_PASSWORD, write_users


@contextlib.asynccontextmanager
async def service(tmp_path: Path) -> AsyncIterator[tuple[str, FakeController]]:
    users_file = tmp_path / "users"
    account = write_users(users_file)
    port = free_tcp_port()
    controller = FakeController(step_s=0.02)
    settings = MqttSettings(
        broker=f"mqtt://127.0.0.1:{port}",
        protocol="3.1.1",  # the embedded broker (amqtt) speaks no MQTT 5
        username=account.service_user,
        password=SecretStr(account.service_password),
    )
    async with EmbeddedBroker("127.0.0.1", port, users_file=users_file):
        api = MqttApi(settings, controller, role_of=Directory(users_file).role_of)
        task = asyncio.create_task(api.run())
        try:
            async with asyncio.timeout(15):
                await api.connected.wait()
            yield f"mqtt://127.0.0.1:{port}", controller
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def dronectl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DRONECTL_")}
    base["PYTHONPATH"] = str(REPO_ROOT)
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dronectl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,  # no terminal: never a prompt
        env={**base, **(env or {})},
        cwd=REPO_ROOT,
    )


def credentials(tmp_path: Path, password: str, mode: int = 0o600) -> Path:
    path = tmp_path / f"cred-{mode:o}"
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


async def test_the_console_logs_in_and_the_service_knows_who(tmp_path: Path) -> None:
    async with service(tmp_path) as (broker, controller):
        good = credentials(tmp_path, TEST_PASSWORD)
        done = await dronectl(
            "hold", "2", "--json", "--broker", broker, "--user", "pilot-a", "--credentials", str(good)
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert TEST_PASSWORD not in done.stdout + done.stderr
        (command,) = controller.executed
        assert (command.actor_id, command.actor_role.value) == ("pilot-a", "pilot")
        assert command.channel.value == "console"  # the audit's channel: the console said so

        # a claimed role that is not the user's: refused by the service, with the reason
        claimed = await dronectl(
            "maintenance", "2", "on", "--json", "--broker", broker,
            "--user", "pilot-a", "--role", "commander", "--credentials", str(good),
        )  # fmt: skip
        body = json.loads(claimed.stdout)
        assert claimed.returncode != 0 and "you are pilot-a (pilot)" in json.dumps(body)
        assert len(controller.executed) == 1

        # the observer is who it is: refused by its role
        watcher = await dronectl(
            "hold",
            "2",
            "--json",
            "--broker",
            broker,
            "--user",
            "watcher",
            env={"DRONECTL_PASSWORD": TEST_PASSWORD},
        )
        assert watcher.returncode == 8, watcher.stdout  # ExitCode.FORBIDDEN
        assert len(controller.executed) == 1


@pytest.mark.parametrize(
    ("user", "password"), [("pilot-a", "wrong-password"), ("nobody", TEST_PASSWORD), ("pilot-a", None)]
)
async def test_a_wrong_login_is_a_clear_error_and_sends_nothing(
    tmp_path: Path, user: str, password: str | None
) -> None:
    async with service(tmp_path) as (broker, controller):
        env = {"DRONECTL_PASSWORD": password} if password is not None else {}
        done = await dronectl("hold", "2", "--broker", broker, "--user", user, env=env)
        assert done.returncode == 6, done.stdout + done.stderr  # ExitCode.NO_CONNECTION
        assert "cannot connect" in done.stderr and "wrong password or no such user" in done.stderr
        assert controller.executed == []


async def test_a_credentials_file_others_can_read_is_refused(tmp_path: Path) -> None:
    loose = credentials(tmp_path, TEST_PASSWORD, 0o644)
    done = await dronectl(
        "hold", "2", "--broker", "mqtt://127.0.0.1:1", "--user", "pilot-a", "--credentials", str(loose)
    )
    assert done.returncode == 2 and "readable by others" in done.stderr
    url = await dronectl("hold", "2", "--broker", "mqtt://pilot-a:secret-in-url@127.0.0.1:1")
    assert url.returncode == 2 and "secret-in-url" not in url.stderr + url.stdout
