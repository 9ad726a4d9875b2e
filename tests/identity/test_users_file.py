"""The users file: our $7$ hashes, mosquitto_passwd's and a real Mosquitto agree; 0600 files;
`dronectl users` add/passwd/remove/list; bad input changes nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dronectl.domain.identity import (
    IdentityError,
    LoginThrottle,
    check_username,
    hash_password,
    parse_users,
    verify_password,
)
from dronectl.domain.roles import Role
from dronectl.operations.users import (
    Directory,
    add_user,
    bootstrap,
    load_users,
    remove_user,
    roles_path,
    service_secret_path,
    set_password,
)

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def test_our_hash_verifies_and_a_wrong_password_does_not() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$7$")
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct hors", hashed)
    assert not verify_password("correct horse", "$6$abc$def")
    assert not verify_password("correct horse", "$7$x$$")


def test_mosquitto_passwd_hashes_verify_here(tmp_path: Path) -> None:
    assert MOSQUITTO_PASSWD is not None, (
        "mosquitto_passwd is not installed: scripts/system-deps.sh installs it"
    )
    path = tmp_path / "pw"
    subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(path), "alice", "s3cret-pass"], check=True)
    name, _, hashed = path.read_text().strip().partition(":")
    assert name == "alice" and hashed.startswith("$7$")
    assert verify_password("s3cret-pass", hashed)
    assert not verify_password("s3cret-pasS", hashed)


@pytest.mark.parametrize("name", ["", "a/b", "a+b", "#", "x" * 65, "-lead", "a b", "é"])
def test_bad_user_names_are_refused(name: str) -> None:
    with pytest.raises(IdentityError):
        check_username(name)


def test_add_passwd_remove_and_the_files_are_private(tmp_path: Path) -> None:
    users_file = tmp_path / "var" / "users"
    add_user(users_file, "li.wei", Role.PILOT, "pilot-password")
    add_user(users_file, "zhao", Role.COMMANDER, "commander-password")
    for path in (users_file, roles_path(users_file)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = load_users(users_file)
    assert {n: u.role for n, u in users.items()} == {"li.wei": Role.PILOT, "zhao": Role.COMMANDER}
    assert "pilot-password" not in users_file.read_text()
    directory = Directory(users_file)
    assert directory.authenticate("li.wei", "pilot-password") is not None
    assert directory.authenticate("li.wei", "wrong-password") is None
    assert directory.authenticate("nobody", "pilot-password") is None

    set_password(users_file, "li.wei", "another-password")
    assert directory.authenticate("li.wei", "pilot-password") is None  # reread on change
    assert directory.authenticate("li.wei", "another-password") is not None
    remove_user(users_file, "zhao")
    assert directory.role_of("zhao") is None and directory.role_of("li.wei") is Role.PILOT


def test_bad_input_changes_nothing(tmp_path: Path) -> None:
    users_file = tmp_path / "users"
    add_user(users_file, "li.wei", Role.PILOT, "pilot-password")
    before = (users_file.read_bytes(), roles_path(users_file).read_bytes())
    with pytest.raises(IdentityError, match="exists already"):
        add_user(users_file, "li.wei", Role.COMMANDER, "whatever-password")
    with pytest.raises(IdentityError, match="at least 8"):
        add_user(users_file, "wang", Role.PILOT, "short")
    with pytest.raises(IdentityError, match="invalid user name"):
        add_user(users_file, "wang/1", Role.PILOT, "long-enough")
    with pytest.raises(IdentityError, match="no user"):
        set_password(users_file, "nobody", "long-enough")
    with pytest.raises(IdentityError, match="service's own account"):
        remove_user(users_file, "dronectl")
    assert (users_file.read_bytes(), roles_path(users_file).read_bytes()) == before


def test_roles_file_must_agree_with_the_users_file() -> None:
    with pytest.raises(IdentityError, match="disagree about: b"):
        parse_users("a:$7$1$AA==$AA==\nb:$7$1$AA==$AA==\n", "a:pilot\n")
    with pytest.raises(IdentityError, match="unknown role"):
        parse_users("a:$7$1$AA==$AA==\n", "a:admiral\n")


def test_bootstrap_creates_a_commander_once_and_the_service_account(tmp_path: Path) -> None:
    users_file = tmp_path / "users"
    first = bootstrap(users_file)
    assert first.first_user == "commander" and first.first_password
    directory = Directory(users_file)
    assert directory.authenticate("commander", first.first_password) is not None
    assert directory.role_of("commander") is Role.COMMANDER
    assert directory.authenticate(first.service_user, first.service_password) is not None
    assert directory.role_of(first.service_user) is None  # the service commands nothing
    assert stat.S_IMODE(service_secret_path(users_file).stat().st_mode) == 0o600
    again = bootstrap(users_file)
    assert again.first_user is None and again.first_password is None
    assert again.service_password == first.service_password


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dronectl.app.cli", "users", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_the_users_command(tmp_path: Path) -> None:
    users_file = str(tmp_path / "users")
    added = _cli(
        "--users", users_file, "add", "li.wei", "--role", "pilot", "--password-stdin", stdin="pw-12345678\n"
    )
    assert added.returncode == 0, added.stderr
    assert "pw-12345678" not in added.stdout + added.stderr
    listed = _cli("--users", users_file, "list")
    assert listed.stdout.splitlines() == ["li.wei\tpilot"]
    bad = _cli("--users", users_file, "add", "li.wei", "--role", "admiral", "--password-stdin", stdin="x\n")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    short = _cli("--users", users_file, "passwd", "li.wei", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert Directory(Path(users_file)).authenticate("li.wei", "pw-12345678") is not None
    assert _cli("--users", users_file, "remove", "li.wei").returncode == 0
    assert _cli("--users", users_file, "list").stdout == ""


def test_users_init_prints_the_first_password_once(tmp_path: Path) -> None:
    users_file = str(tmp_path / "users")
    first = _cli("--users", users_file, "init")
    password = first.stdout.strip().rpartition("password ")[2]
    assert first.returncode == 0 and password
    assert Directory(Path(users_file)).authenticate("commander", password) is not None
    again = _cli("--users", users_file, "init")
    assert again.returncode == 0 and password not in again.stdout


def test_login_throttle() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60.0)
    for t in (0.0, 1.0, 2.0):
        assert throttle.allowed("li.wei", t)
        throttle.failed("li.wei", t)
    assert not throttle.allowed("li.wei", 30.0)  # three failures in the minute: wait
    assert throttle.allowed("zhao", 30.0)  # others are not concerned
    assert throttle.allowed("li.wei", 60.5)  # the first failure has left the window
    throttle.succeeded("li.wei")
    assert throttle.allowed("li.wei", 61.0)
