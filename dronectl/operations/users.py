"""The users file on disk: who may connect, with which password and role (``dronectl users``).

Three files side by side, each written whole (a temporary file renamed over it) with mode 0600:

    var/users            name:$7$... (mosquitto_passwd format: Mosquitto's password_file as is)
    var/users.roles      name:role
    var/users.service    the service's own broker password (the ``dronectl`` account), plain

Readers (:class:`Directory`) reread the files when they change, so a user added or removed
while the service runs counts from its next connection or request.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dronectl.domain.identity import (
    IdentityError,
    User,
    check_password,
    check_username,
    format_passwords,
    format_roles,
    generate_password,
    hash_password,
    parse_users,
    verify_password,
)
from dronectl.domain.roles import Role
from dronectl.operations.roles import SERVICE_USER

DEFAULT_USERS_FILE = Path("var/users")
FIRST_USER = "commander"


def roles_path(users_file: Path) -> Path:
    return users_file.with_name(users_file.name + ".roles")


def service_secret_path(users_file: Path) -> Path:
    return users_file.with_name(users_file.name + ".service")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a new 0600 file renamed over the old one (never half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_private(path: Path) -> str:
    """A secret file's text; refused when others may read it (as ssh does with keys)."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise IdentityError(f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 {path}")
    return path.read_text(encoding="utf-8")


def load_users(users_file: Path) -> dict[str, User]:
    """The users of ``users_file`` (none when it does not exist yet)."""
    if not users_file.exists():
        return {}
    roles = roles_path(users_file)
    roles_text = roles.read_text(encoding="utf-8") if roles.exists() else ""
    return parse_users(users_file.read_text(encoding="utf-8"), roles_text)


@contextlib.contextmanager
def locked(users_file: Path) -> Iterator[None]:
    """One writer at a time (two ``dronectl users`` at once must not lose a user)."""
    users_file.parent.mkdir(parents=True, exist_ok=True)
    lock = users_file.with_name(users_file.name + ".lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _save(users_file: Path, users: dict[str, User]) -> None:
    ordered = [users[name] for name in sorted(users)]
    # roles first: a reader seeing the new passwords finds every user's role
    write_private(roles_path(users_file), format_roles(ordered))
    write_private(users_file, format_passwords(ordered))


def add_user(users_file: Path, name: str, role: Role, password: str) -> User:
    check_username(name)
    check_password(password)
    if name == SERVICE_USER:
        raise IdentityError(f"{SERVICE_USER!r} is the service's own account")
    with locked(users_file):
        users = load_users(users_file)
        if name in users:
            raise IdentityError(f"user {name!r} exists already (dronectl users passwd {name})")
        users[name] = User(name, role, hash_password(password))
        _save(users_file, users)
    return users[name]


def set_password(users_file: Path, name: str, password: str) -> None:
    check_password(password)
    with locked(users_file):
        users = load_users(users_file)
        if name not in users:
            raise IdentityError(f"no user {name!r}")
        users[name] = User(name, users[name].role, hash_password(password))
        _save(users_file, users)


def remove_user(users_file: Path, name: str) -> None:
    if name == SERVICE_USER:
        raise IdentityError(f"{SERVICE_USER!r} is the service's own account; it cannot be removed")
    with locked(users_file):
        users = load_users(users_file)
        if name not in users:
            raise IdentityError(f"no user {name!r}")
        del users[name]
        _save(users_file, users)


@dataclass(frozen=True)
class Bootstrap:
    """What ``dronectl up`` set up: the service's broker credentials, and the first user's
    password when it just created the users file (to be shown once, never stored in clear)."""

    service_user: str
    service_password: str
    first_user: str | None = None
    first_password: str | None = None


def bootstrap(users_file: Path) -> Bootstrap:
    """Make sure the service has its account (and the file a commander, when it is new)."""
    with locked(users_file):
        users = load_users(users_file)
        first_user = first_password = None
        if not users:
            first_user, first_password = FIRST_USER, generate_password()
            users[first_user] = User(first_user, Role.COMMANDER, hash_password(first_password))
        secret = service_secret_path(users_file)
        service_password: str | None = None
        if secret.exists() and SERVICE_USER in users:
            service_password = read_private(secret).strip()
            if not verify_password(service_password, users[SERVICE_USER].password_hash):
                service_password = None  # the account's password was changed: make a new pair
        changed = first_user is not None
        if service_password is None:
            service_password = generate_password()
            users[SERVICE_USER] = User(SERVICE_USER, None, hash_password(service_password))
            write_private(secret, service_password + "\n")
            changed = True
        if changed:
            _save(users_file, users)
    return Bootstrap(SERVICE_USER, service_password, first_user, first_password)


CHECKS_AT_ONCE = 2  # password checks running at once: a login flood queues, the loop stays free


class Directory:
    """The users as the service sees them while it runs: reread when the files change."""

    def __init__(self, users_file: Path) -> None:
        self.users_file = users_file
        self._stamp: tuple[float, float] | None = None
        self._users: dict[str, User] = {}
        self._checking: asyncio.Semaphore | None = None  # made in the running loop, at first use

    def _stat(self) -> tuple[float, float]:
        def mtime(path: Path) -> float:
            try:
                return path.stat().st_mtime_ns
            except FileNotFoundError:
                return -1.0

        return (mtime(self.users_file), mtime(roles_path(self.users_file)))

    def users(self) -> dict[str, User]:
        stamp = self._stat()
        if stamp != self._stamp:
            self._users = load_users(self.users_file)
            self._stamp = stamp
        return self._users

    def get(self, name: str) -> User | None:
        return self.users().get(name)

    def role_of(self, name: str) -> Role | None:
        """A user's role; None for no such user and for the service's own account (it commands
        nothing). A broken users file counts as no users (refuse, never guess)."""
        try:
            user = self.get(name)
        except (IdentityError, OSError):
            return None
        return user.role if user is not None else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is right; None for a wrong password or an unknown user."""
        user = self.get(name)
        if user is None:
            verify_password(password, _dummy_hash())  # the same time for an unknown user
            return None
        return user if verify_password(password, user.password_hash) else None

    async def authenticate_off_loop(self, name: str, password: str) -> User | None:
        """``authenticate`` on a worker thread, at most ``CHECKS_AT_ONCE`` at a time. One check costs
        about 35 ms of CPU (PBKDF2, 50,000 rounds; hashlib lets go of the GIL): on the event loop a
        stream of guessed logins, each under a new user name so no throttle applies, would hold up
        everything the loop does, the nests' MAVLink heartbeats included."""
        if self._checking is None:
            self._checking = asyncio.Semaphore(CHECKS_AT_ONCE)
        async with self._checking:
            return await asyncio.to_thread(self.authenticate, name, password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password of anyone")
