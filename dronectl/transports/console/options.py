"""Command-line options shared by ``dronectl console`` and the one-shot commands.

Defaults come from the environment where it makes sense, so a pilot's shell can set them once:
``DRONECTL_BROKER``, ``DRONECTL_ROOT``, ``DRONECTL_USER``, ``DRONECTL_ROLE``, ``DRONECTL_CREDENTIALS``,
``DRONECTL_VIDEO_URL``.

Logging in: the console is a user of the users file (``dronectl users``). ``--user`` (default: the
login name) and its password, from ``--credentials FILE`` (mode 0600, the password on its first
line), else ``DRONECTL_PASSWORD``, else asked for on the terminal. Who you are and your role are the
service's to know: ``--role`` only says which role you expect (the service refuses if it is not
yours); without it no role is claimed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from dronectl.domain.config import CityConfig, ConfigError, load_config
from dronectl.domain.identity import IdentityError, check_username
from dronectl.operations.models import Role
from dronectl.operations.topics import DEFAULT_ROOT, validate_root
from dronectl.transports.console.client import DEFAULT_TTL_S, REPLY_TIMEOUT_S, ClientSettings
from dronectl.transports.console.parsing import UsageError
from dronectl.transports.console.places import Places
from dronectl.transports.mqtt.settings import parse_broker_url

DEFAULT_VIDEO_URL = "http://127.0.0.1:8080"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--broker", default=env("DRONECTL_BROKER", "mqtt://127.0.0.1:1883"), help="mqtt://host:port"
    )
    group.add_argument("--root", default=env("DRONECTL_ROOT", DEFAULT_ROOT), help="topic root")
    group.add_argument(
        "--user",
        "--actor",
        dest="user",
        default=env("DRONECTL_USER") or env("DRONECTL_ACTOR"),
        help="your user name in the users file (default: your login name)",
    )
    group.add_argument(
        "--role",
        default=env("DRONECTL_ROLE"),
        choices=[r.value for r in Role],
        help="the role you expect to have (checked by the service); default: none claimed",
    )
    group.add_argument(
        "--credentials",
        default=env("DRONECTL_CREDENTIALS"),
        help="file (mode 0600) whose first line is your password; default: $DRONECTL_PASSWORD, or asked",
    )
    group.add_argument("--ca-file", default=None, help="CA bundle for mqtts://")
    group.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, help="seconds a command stays valid")
    group.add_argument("--timeout", type=float, default=REPLY_TIMEOUT_S, help="seconds to wait for a reply")
    group.add_argument("--config", default=None, help="city config, for place and nest names")
    group.add_argument(
        "--video-url", default=env("DRONECTL_VIDEO_URL", DEFAULT_VIDEO_URL), help="video server"
    )


def password(ns: argparse.Namespace, user: str) -> str | None:
    """The user's password: the credentials file, the environment, or the terminal (None: none)."""
    if ns.credentials:
        path = Path(ns.credentials)
        try:
            mode = path.stat().st_mode
            if mode & 0o077:
                raise UsageError(f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 {path}")
            return path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        except OSError as exc:
            raise UsageError(f"credentials file: {exc.strerror or exc}") from None
    if "DRONECTL_PASSWORD" in os.environ:
        return os.environ["DRONECTL_PASSWORD"]
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {user}: ")
    return None


def client_settings(ns: argparse.Namespace) -> ClientSettings:
    """The client settings from parsed options; UsageError when they are wrong."""
    user = ns.user or getpass.getuser()
    try:
        address = parse_broker_url(ns.broker)
        validate_root(ns.root)
        check_username(user)
    except (ValueError, IdentityError) as exc:
        raise UsageError(str(exc)) from None
    if address.username is not None:
        raise UsageError("give the user with --user and the password with --credentials, not in --broker")
    if not 0 < ns.ttl <= 600:
        raise UsageError("--ttl must be within 0..600 s")
    return ClientSettings(
        user=user,
        password=password(ns, user),
        role=Role(ns.role) if ns.role else None,
        broker=ns.broker,
        root=ns.root,
        ca_file=ns.ca_file,
        ttl_s=ns.ttl,
    )


def city(ns: argparse.Namespace) -> tuple[CityConfig, Places]:
    try:
        config = load_config(ns.config)
    except ConfigError as exc:
        raise UsageError(f"city config: {exc}") from None
    return config, Places.from_config(config)
