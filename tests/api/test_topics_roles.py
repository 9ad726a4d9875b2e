"""The topic tree, strict topic parsing, roles and the Mosquitto ACL file."""

from __future__ import annotations

import pytest

from dronectl.api import roles
from dronectl.api.models import Method, Role
from dronectl.api.topics import (
    FleetCommands,
    Incidents,
    NestCommands,
    Topics,
    UnknownNest,
    matches,
    validate_root,
)

T = Topics("dronectl/v1")
NESTS = frozenset(range(1, 17))


def test_topic_tree() -> None:
    assert T.status() == "dronectl/v1/status"
    assert T.nest_state(7) == "dronectl/v1/nests/7/state"
    assert T.nest_telemetry(7) == "dronectl/v1/nests/7/telemetry"
    assert T.nest_events(7) == "dronectl/v1/nests/7/events"
    assert T.events() == "dronectl/v1/events"
    assert T.nest_commands(7) == "dronectl/v1/nests/7/commands"
    assert T.subscriptions() == (
        "dronectl/v1/nests/+/commands",
        "dronectl/v1/commands",
        "dronectl/v1/incidents",
    )
    assert Topics("city/a/b").status() == "city/a/b/status"


def test_parse_incoming() -> None:
    assert T.parse("dronectl/v1/nests/7/commands", NESTS) == NestCommands(7)
    assert T.parse("dronectl/v1/nests/16/commands", NESTS) == NestCommands(16)
    assert T.parse("dronectl/v1/commands", NESTS) == FleetCommands()
    assert T.parse("dronectl/v1/incidents", NESTS) == Incidents()
    assert T.parse("dronectl/v1/nests/17/commands", NESTS) == UnknownNest("17")
    assert T.parse("dronectl/v1/nests/07/commands", NESTS) == UnknownNest("07")
    assert T.parse("dronectl/v1/nests/abc/commands", NESTS) == UnknownNest("abc")


@pytest.mark.parametrize(
    "topic",
    [
        "dronectl/v1/nests/7/state",  # ours, but not incoming
        "dronectl/v1/nests/7/commands/x",
        "dronectl/v1/nests//commands",
        "dronectl/v1/nests/+/commands",
        "dronectl/v1/commands/",
        "dronectl/v2/commands",
        "dronectl/v1",
        "other/dronectl/v1/commands",
        "dronectl/v1/status",
        "",
    ],
)
def test_parse_rejects_everything_else(topic: str) -> None:
    assert T.parse(topic, NESTS) is None


@pytest.mark.parametrize("root", ["", "/a", "a/", "a//b", "a/+/b", "a/#", "$SYS/x", "a\x00"])
def test_bad_roots(root: str) -> None:
    with pytest.raises(ValueError):
        validate_root(root)


def test_matches() -> None:
    assert matches("a/nests/7/commands", "a/nests/+/commands")
    assert not matches("a/nests/7/commands/x", "a/nests/+/commands")
    assert matches("a/b/c", "a/#")
    assert matches("a", "a/#")
    assert not matches("$SYS/x", "#")
    assert not matches("a/b", "a/b/c")


def test_roles() -> None:
    assert not any(roles.may_call(Role.OBSERVER, m) for m in Method)
    assert roles.may_call(Role.PILOT, Method.LAUNCH)
    assert roles.may_call(Role.PILOT, Method.CONTROL_TAKE)
    assert not roles.may_call(Role.PILOT, Method.MAINTENANCE_SET)
    assert not roles.may_call(Role.PILOT, Method.RETURN_ALL)
    assert all(roles.may_call(Role.COMMANDER, m) for m in Method)
    assert roles.may_call(Role.AUTOMATION, Method.SPEAKER_SAY)
    assert not roles.may_call(Role.AUTOMATION, Method.CONTROL_TAKE)
    assert not roles.may_call(Role.AUTOMATION, Method.ABORT)


def test_acl_file() -> None:
    text = roles.acl_file("city/v1", {"svc": roles.SERVICE, "watcher": Role.OBSERVER, "ops": Role.COMMANDER})
    blocks = {b.split("\n")[0]: b for b in text.split("\n\n") if b.startswith("user ")}
    assert "topic readwrite city/v1/#" in blocks["user svc"]
    assert "write" not in blocks["user watcher"].replace("# role", "")
    assert "topic write city/v1/commands" in blocks["user ops"]
    assert "pattern read city/v1/replies/%u/#" in text
    with pytest.raises(ValueError):
        roles.acl_file("city/v1", {"two words": Role.PILOT})


def test_checked_in_acl_is_current() -> None:
    assert roles.main(["--check"]) == 0, "run: python -m dronectl.api.roles"
