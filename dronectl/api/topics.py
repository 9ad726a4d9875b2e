"""The topic tree under a configurable root (default ``dronectl/v1``), and strict parsing of what comes in.

Published by the service::

    {root}/status                    retained ControllerStatus (last will: offline)
    {root}/nests/{nest}/state        retained NestState, on change
    {root}/nests/{nest}/telemetry    Telemetry, 2 Hz airborne / 0.2 Hz docked (configurable)
    {root}/nests/{nest}/events       Event of that nest
    {root}/events                    every Event (fleet-wide view)
    {root}/traffic/{stretch}         retained: the latest congestion reading of a road stretch
    {root}/nests/{nest}/snapshots/{id}  a picture a drone took of what it found (JPEG bytes, not JSON)

Received by the service::

    {root}/nests/{nest}/commands     Request for one nest
    {root}/commands                  Request for the fleet (return_all)
    {root}/incidents                 Incident

``{nest}`` is the nest number in decimal without leading zeros (``7``, not ``07``).
Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

DEFAULT_ROOT = "dronectl/v1"


def validate_root(root: str) -> str:
    """A root is one or more non-empty levels without wildcards, NUL or a leading ``$``."""
    if not root or root.startswith(("$", "/")) or root.endswith("/"):
        raise ValueError(f"invalid topic root {root!r}")
    if any(ch in root for ch in "+#\x00") or "" in root.split("/") or len(root) > 128:
        raise ValueError(f"invalid topic root {root!r}")
    return root


@dataclass(frozen=True)
class NestCommands:
    nest_id: int


@dataclass(frozen=True)
class FleetCommands:
    pass


@dataclass(frozen=True)
class Incidents:
    pass


@dataclass(frozen=True)
class UnknownNest:
    """A nest-command topic of the right shape naming a nest we do not manage."""

    token: str


Inbound = NestCommands | FleetCommands | Incidents | UnknownNest


def parse_nest_token(token: str) -> int | None:
    """``"7"`` -> 7; anything but a plain decimal 1..250 without leading zeros -> None."""
    if not token.isascii() or not token.isdigit() or token.startswith("0") or len(token) > 3:
        return None
    value = int(token)
    return value if 1 <= value <= 250 else None


@dataclass(frozen=True)
class Topics:
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        validate_root(self.root)

    # --- published --------------------------------------------------------------------------

    def status(self) -> str:
        return f"{self.root}/status"

    def nest_state(self, nest_id: int) -> str:
        return f"{self.root}/nests/{nest_id}/state"

    def nest_telemetry(self, nest_id: int) -> str:
        return f"{self.root}/nests/{nest_id}/telemetry"

    def nest_events(self, nest_id: int) -> str:
        return f"{self.root}/nests/{nest_id}/events"

    def events(self) -> str:
        return f"{self.root}/events"

    def nest_snapshot(self, nest_id: int, snapshot_id: str) -> str:
        """A JPEG (raw bytes): the picture of a detection, named in its event's ``snapshot_id``."""
        return f"{self.root}/nests/{nest_id}/snapshots/{snapshot_id}"

    def traffic(self, stretch_id: str) -> str:
        return f"{self.root}/traffic/{stretch_id}"

    # --- received ---------------------------------------------------------------------------

    def nest_commands(self, nest_id: int) -> str:
        return f"{self.root}/nests/{nest_id}/commands"

    def commands(self) -> str:
        return f"{self.root}/commands"

    def incidents(self) -> str:
        return f"{self.root}/incidents"

    def subscriptions(self) -> tuple[str, ...]:
        """The filters the service subscribes to (and the only topics it acts on)."""
        return (f"{self.root}/nests/+/commands", self.commands(), self.incidents())

    def replies(self, username: str) -> str:
        """Suggested reply_to prefix for a client: only that user may read it (see roles.acl_file)."""
        return f"{self.root}/replies/{username}"

    def parse(self, topic: str, nest_ids: Collection[int]) -> Inbound | None:
        """What an incoming topic means; None when it is not one of ours (ignore the message)."""
        prefix = self.root + "/"
        if not topic.startswith(prefix) or any(ch in topic for ch in "+#\x00"):
            return None
        rest = topic[len(prefix) :].split("/")
        if rest == ["commands"]:
            return FleetCommands()
        if rest == ["incidents"]:
            return Incidents()
        if len(rest) == 3 and rest[0] == "nests" and rest[2] == "commands" and rest[1]:
            nest_id = parse_nest_token(rest[1])
            if nest_id is None or nest_id not in nest_ids:
                return UnknownNest(rest[1])
            return NestCommands(nest_id)
        return None


def matches(topic: str, topic_filter: str) -> bool:
    """MQTT filter matching (``+`` one level, ``#`` the rest); ``$`` topics never match wildcards."""
    t_levels = topic.split("/")
    f_levels = topic_filter.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(f_levels):
        if level == "#":
            return True
        if index >= len(t_levels):
            return False
        if level != "+" and level != t_levels[index]:
            return False
    return len(t_levels) == len(f_levels)
