"""The topic tree under a configurable root (default ``dronectl/v1``), and strict parsing of what comes in.

Published by the service::

    {root}/status                    retained ControllerStatus (last will: offline)
    {root}/instances/{id}/status     retained InstanceStatus, one per instance (its last will: offline)
    {root}/nests/{nest}/state        retained NestState, on change
    {root}/nests/{nest}/telemetry    Telemetry, 2 Hz airborne / 0.2 Hz docked (configurable)
    {root}/nests/{nest}/events       Event of that nest
    {root}/events                    every Event (fleet-wide view)
    {root}/traffic/{stretch}         retained: the latest congestion reading of a road stretch
    {root}/nests/{nest}/snapshots/{id}  a picture a drone took of what it found (JPEG bytes, not JSON)

Received by the service, each under the sender's user name (the broker lets a user write only
under its own name, so the last level *is* the authenticated sender)::

    {root}/nests/{nest}/commands/{user}   Request for one nest
    {root}/commands/{user}                Request for the fleet (return_all, patrols, ...)
    {root}/incidents/{user}               Incident

Replies go to the request's ``reply_to``, which must lie under ``{root}/replies/{user}``.
``{nest}`` is the nest number in decimal without leading zeros (``7``, not ``07``).
Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from dronectl.domain.identity import USERNAME
from dronectl.domain.limits import MAX_NEST_ID

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
    user: str


@dataclass(frozen=True)
class FleetCommands:
    user: str


@dataclass(frozen=True)
class Incidents:
    user: str


@dataclass(frozen=True)
class UnknownNest:
    """A nest-command topic of the right shape naming a nest we do not manage."""

    token: str
    user: str


Inbound = NestCommands | FleetCommands | Incidents | UnknownNest


_NEST_DIGITS = len(str(MAX_NEST_ID))


def parse_nest_token(token: str) -> int | None:
    """``"7"`` -> 7; anything but a plain decimal 1..MAX_NEST_ID without leading zeros -> None."""
    if not token.isascii() or not token.isdigit() or token.startswith("0") or len(token) > _NEST_DIGITS:
        return None
    value = int(token)
    return value if 1 <= value <= MAX_NEST_ID else None


@dataclass(frozen=True)
class Topics:
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        validate_root(self.root)

    # --- published --------------------------------------------------------------------------

    def status(self) -> str:
        return f"{self.root}/status"

    def instance_status(self, instance_id: str) -> str:
        """One instance's retained status (several instances); ValueError for an id that is not
        one topic level."""
        if not instance_id or any(c in instance_id for c in "/+#\x00"):
            raise ValueError(f"instance id {instance_id!r} cannot be an MQTT topic level")
        return f"{self.root}/instances/{instance_id}/status"

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

    def nest_commands(self, nest_id: int, user: str) -> str:
        return f"{self.root}/nests/{nest_id}/commands/{user}"

    def commands(self, user: str) -> str:
        return f"{self.root}/commands/{user}"

    def incidents(self, user: str) -> str:
        return f"{self.root}/incidents/{user}"

    def all_incidents(self) -> str:
        """The filter for every user's incidents (what the console and the service read)."""
        return f"{self.root}/incidents/+"

    def subscriptions(self) -> tuple[str, ...]:
        """The filters the service subscribes to (and the only topics it acts on)."""
        return (f"{self.root}/nests/+/commands/+", f"{self.root}/commands/+", self.all_incidents())

    def replies(self, username: str) -> str:
        """A user's reply prefix: reply_to must lie under it; only that user may read it (roles.py)."""
        return f"{self.root}/replies/{username}"

    def is_reply_topic_of(self, topic: str, username: str) -> bool:
        prefix = self.replies(username)
        return topic == prefix or topic.startswith(prefix + "/")

    def sender(self, topic: str) -> str | None:
        """The user name a received topic ends with (None: not a valid user name)."""
        user = topic.rsplit("/", 1)[-1]
        return user if USERNAME.fullmatch(user) else None

    def parse(self, topic: str, nest_ids: Collection[int]) -> Inbound | None:
        """What an incoming topic means; None when it is not one of ours (ignore the message)."""
        prefix = self.root + "/"
        if not topic.startswith(prefix) or any(ch in topic for ch in "+#\x00"):
            return None
        rest = topic[len(prefix) :].split("/")
        user = rest[-1]
        if not USERNAME.fullmatch(user):
            return None
        if rest[:-1] == ["commands"]:
            return FleetCommands(user)
        if rest[:-1] == ["incidents"]:
            return Incidents(user)
        if len(rest) == 4 and rest[0] == "nests" and rest[2] == "commands" and rest[1]:
            nest_id = parse_nest_token(rest[1])
            if nest_id is None or nest_id not in nest_ids:
                return UnknownNest(rest[1], user)
            return NestCommands(nest_id, user)
        return None


def matches(topic: str, topic_filter: str) -> bool:
    """MQTT filter matching (``+`` one level, ``#`` the rest); ``$`` topics never match wildcards.

    For the ACL of roles.py, in this pure layer, where the import contracts keep aiomqtt out; the
    MQTT transport itself uses aiomqtt's ``Topic.matches``. This one also keeps ``$SYS`` topics
    from matching a leading wildcard, as the MQTT spec says (aiomqtt's does not)."""
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
