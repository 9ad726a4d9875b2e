"""Command-line options shared by ``dronectl console`` and the one-shot commands.

Defaults come from the environment where it makes sense, so a pilot's shell can set them once:
``DRONECTL_BROKER``, ``DRONECTL_ROOT``, ``DRONECTL_ACTOR``, ``DRONECTL_ROLE``, ``DRONECTL_MQTT_USER``,
``DRONECTL_MQTT_PASSWORD``, ``DRONECTL_VIDEO_URL``.
"""

from __future__ import annotations

import argparse
import getpass
import os

from pydantic import ValidationError

from dronectl.api.models import Actor, Role
from dronectl.api.settings import parse_broker_url
from dronectl.api.topics import DEFAULT_ROOT, validate_root
from dronectl.config import CityConfig, ConfigError, load_config
from dronectl.console.client import DEFAULT_TTL_S, REPLY_TIMEOUT_S, ClientSettings
from dronectl.console.parsing import UsageError
from dronectl.console.places import Places

DEFAULT_VIDEO_URL = "http://127.0.0.1:8080"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--broker", default=env("DRONECTL_BROKER", "mqtt://127.0.0.1:1883"), help="mqtt://host:port"
    )
    group.add_argument("--root", default=env("DRONECTL_ROOT", DEFAULT_ROOT), help="topic root")
    group.add_argument("--actor", default=env("DRONECTL_ACTOR"), help="who you are (default: login name)")
    group.add_argument(
        "--role",
        default=env("DRONECTL_ROLE", Role.PILOT.value),
        choices=[r.value for r in Role],
        help="your role",
    )
    group.add_argument("--username", default=env("DRONECTL_MQTT_USER"), help="MQTT user name")
    group.add_argument("--ca-file", default=None, help="CA bundle for mqtts://")
    group.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, help="seconds a command stays valid")
    group.add_argument("--timeout", type=float, default=REPLY_TIMEOUT_S, help="seconds to wait for a reply")
    group.add_argument("--config", default=None, help="city config, for place and nest names")
    group.add_argument(
        "--video-url", default=env("DRONECTL_VIDEO_URL", DEFAULT_VIDEO_URL), help="video server"
    )


def client_settings(ns: argparse.Namespace) -> ClientSettings:
    """The client settings from parsed options; UsageError when they are wrong."""
    try:
        parse_broker_url(ns.broker)
        validate_root(ns.root)
        actor = Actor(id=ns.actor or getpass.getuser(), role=Role(ns.role))
    except (ValueError, ValidationError) as exc:
        raise UsageError(str(exc)) from None
    if not 0 < ns.ttl <= 600:
        raise UsageError("--ttl must be within 0..600 s")
    return ClientSettings(
        actor=actor,
        broker=ns.broker,
        root=ns.root,
        username=ns.username,
        password=os.environ.get("DRONECTL_MQTT_PASSWORD"),
        ca_file=ns.ca_file,
        ttl_s=ns.ttl,
    )


def city(ns: argparse.Namespace) -> tuple[CityConfig, Places]:
    try:
        config = load_config(ns.config)
    except ConfigError as exc:
        raise UsageError(f"city config: {exc}") from None
    return config, Places.from_config(config)
