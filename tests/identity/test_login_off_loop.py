"""A password check (PBKDF2, ~35 ms of CPU) never runs on the event loop: the broker's logins and the
page's sign-in share the loop with the nests' MAVLink heartbeats, and guessed logins under ever new
user names escape the per-user throttle."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import dronectl.operations.users as users
from dronectl.operations.users import CHECKS_AT_ONCE, Directory
from tests.identity.accounts import TEST_PASSWORD, write_users


async def test_the_check_runs_while_the_loop_runs_other_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handshake, not a timing: the check waits for a task of the loop to open the gate, which it
    could never do if the check held the loop."""
    users_file = tmp_path / "users"
    write_users(users_file)
    gate = threading.Event()
    real_verify = users.verify_password

    def gated_verify(password: str, encoded: str) -> bool:
        if not gate.wait(timeout=30):
            raise AssertionError("the event loop never ran while a password was being checked")
        return real_verify(password, encoded)

    monkeypatch.setattr(users, "verify_password", gated_verify)

    async def open_gate() -> None:
        gate.set()

    opener = asyncio.create_task(open_gate())
    user = await Directory(users_file).authenticate_off_loop("pilot-a", TEST_PASSWORD)
    await opener
    assert user is not None and user.name == "pilot-a"


async def test_a_flood_of_checks_runs_a_few_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users_file = tmp_path / "users"
    write_users(users_file)
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()
    real_verify = users.verify_password

    def counting_verify(password: str, encoded: str) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(timeout=30)
        with lock:
            running -= 1
        return real_verify(password, encoded)

    monkeypatch.setattr(users, "verify_password", counting_verify)
    directory = Directory(users_file)
    checks = [asyncio.create_task(directory.authenticate_off_loop(f"guess-{n}", "wrong")) for n in range(12)]
    async with asyncio.timeout(30):  # the loop stays free: poll until the first checks are running
        while True:
            with lock:
                if running >= CHECKS_AT_ONCE:
                    break
            await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(*checks) == [None] * 12  # unknown users: all refused
    assert most == CHECKS_AT_ONCE
