"""Users: names, password hashes in Mosquitto's format, and the text of the users and roles files.

Pure (no file I/O; the caller reads and writes the files):

- the users file is exactly what ``mosquitto_passwd`` writes, one ``name:hash`` per line, the hash
  ``$7$<iterations>$<salt, base64>$<PBKDF2-HMAC-SHA512, base64>``, so one file serves a real
  Mosquitto (``password_file``) and the embedded broker;
- the roles file beside it gives each user its role, one ``name:role`` per line; ``service`` is
  the dronectl service's own broker account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dronectl.domain.errors import DronectlError
from dronectl.domain.roles import Role

PBKDF2_ITERATIONS = 50_000  # Mosquitto's own default is 101; the hash names its count, both verify
SALT_BYTES = 12  # as mosquitto_passwd
SERVICE_ROLE = "service"  # the service's own account: the whole topic tree, no commands
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class IdentityError(DronectlError):
    """A bad user name, role, password or users/roles file content."""


def check_username(name: str) -> str:
    """A name usable as one MQTT topic level and in Mosquitto's ``%u``: letters, digits, ``._-``."""
    if not USERNAME.fullmatch(name):
        raise IdentityError(
            f"invalid user name {name!r}: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < 8:
        raise IdentityError("a password needs at least 8 characters")
    if len(password) > 1024 or any(ch in password for ch in "\r\n\x00"):
        raise IdentityError("a password must be one line of at most 1024 characters")
    return password


def generate_password() -> str:
    """A fresh random password (about 128 bits), safe to type and to put in a shell variable."""
    return secrets.token_urlsafe(16)


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """``$7$`` PBKDF2-SHA512 hash, as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, password_hash: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash; False for anything else (no exception)."""
    parts = password_hash.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7" or not parts[2].isdigit():
        return False
    iterations = int(parts[2])
    if not 1 <= iterations <= 10_000_000:
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class User:
    name: str
    role: Role | None  # None: the service's own account (SERVICE_ROLE)
    password_hash: str

    @property
    def role_name(self) -> str:
        return self.role.value if self.role is not None else SERVICE_ROLE


def parse_role(text: str) -> Role | None:
    if text == SERVICE_ROLE:
        return None
    try:
        return Role(text)
    except ValueError:
        names = ", ".join([*(r.value for r in Role), SERVICE_ROLE])
        raise IdentityError(f"unknown role {text!r} (roles: {names})") from None


def _pairs(text: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep or not value:
            raise IdentityError(f"{what}, line {number}: expected name:value")
        check_username(name)
        if name in out:
            raise IdentityError(f"{what}, line {number}: user {name!r} appears twice")
        out[name] = value
    return out


def parse_users(passwords_text: str, roles_text: str) -> dict[str, User]:
    """The users of a users file and its roles file; a user must be in both."""
    hashes = _pairs(passwords_text, "users file")
    roles = _pairs(roles_text, "roles file")
    missing = sorted(set(hashes) ^ set(roles))
    if missing:
        raise IdentityError(f"users and roles files disagree about: {', '.join(missing)}")
    return {name: User(name, parse_role(roles[name]), hashes[name]) for name in hashes}


def format_passwords(users: Iterable[User]) -> str:
    return "".join(f"{user.name}:{user.password_hash}\n" for user in users)


def format_roles(users: Iterable[User]) -> str:
    header = "# dronectl roles: one user:role per line (the users file beside holds the passwords)\n"
    return header + "".join(f"{user.name}:{user.role_name}\n" for user in users)


def roles_of(users: Mapping[str, User]) -> dict[str, Role | None]:
    return {name: user.role for name, user in users.items()}


class LoginThrottle:
    """Failed logins per key (a user name): after ``max_failures`` within ``window_s`` further
    attempts are refused unchecked until the oldest failure leaves the window. Time injected."""

    def __init__(self, max_failures: int = 5, window_s: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now_s: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now_s - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def allowed(self, key: str, now_s: float) -> bool:
        return len(self._recent(key, now_s)) < self.max_failures

    def failed(self, key: str, now_s: float) -> None:
        self._failures.setdefault(key, []).append(now_s)
        if len(self._failures) > 10_000:  # bounded memory under a flood of made-up names
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
