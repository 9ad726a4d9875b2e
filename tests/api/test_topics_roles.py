"""The topic tree, strict topic parsing, roles and the Mosquitto ACL file."""

from __future__ import annotations

import pytest

from dronectl.operations import roles
from dronectl.operations.models import Method, Role
from dronectl.operations.topics import (
    FleetCommands,
    Incidents,
    NestCommands,
    Topics,
    UnknownNest,
    matches,
    parse_nest_token,
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
    assert T.nest_commands(7, "li.wei") == "dronectl/v1/nests/7/commands/li.wei"
    assert T.commands("li.wei") == "dronectl/v1/commands/li.wei"
    assert T.incidents("desk-1") == "dronectl/v1/incidents/desk-1"
    assert T.subscriptions() == (
        "dronectl/v1/nests/+/commands/+",
        "dronectl/v1/commands/+",
        "dronectl/v1/incidents/+",
    )
    assert T.is_reply_topic_of("dronectl/v1/replies/li.wei/1", "li.wei")
    assert T.is_reply_topic_of("dronectl/v1/replies/li.wei", "li.wei")
    assert not T.is_reply_topic_of("dronectl/v1/replies/li.weix/1", "li.wei")
    assert not T.is_reply_topic_of("dronectl/v1/nests/2/state", "li.wei")
    assert Topics("city/a/b").status() == "city/a/b/status"


def test_parse_incoming() -> None:
    assert T.parse("dronectl/v1/nests/7/commands/li.wei", NESTS) == NestCommands(7, "li.wei")
    assert T.parse("dronectl/v1/nests/16/commands/x", NESTS) == NestCommands(16, "x")
    assert T.parse("dronectl/v1/commands/zhao", NESTS) == FleetCommands("zhao")
    assert T.parse("dronectl/v1/incidents/desk-1", NESTS) == Incidents("desk-1")
    assert T.parse("dronectl/v1/nests/17/commands/x", NESTS) == UnknownNest("17", "x")
    assert T.parse("dronectl/v1/nests/07/commands/x", NESTS) == UnknownNest("07", "x")
    assert T.parse("dronectl/v1/nests/abc/commands/x", NESTS) == UnknownNest("abc", "x")


@pytest.mark.parametrize(
    "topic",
    [
        "dronectl/v1/nests/7/state",  # ours, but not incoming
        "dronectl/v1/nests/7/commands",  # no user: nobody sends from there
        "dronectl/v1/nests/7/commands/x/y",
        "dronectl/v1/nests//commands/x",
        "dronectl/v1/nests/+/commands/x",
        "dronectl/v1/nests/7/commands/-x",  # not a user name
        "dronectl/v1/commands/",
        "dronectl/v1/commands",
        "dronectl/v1/incidents",
        "dronectl/v2/commands/x",
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
    text = roles.acl_file("city/v1")
    assert "user dronectl\ntopic readwrite city/v1/#" in text
    assert "pattern read city/v1/replies/%u/#" in text
    for topic in ("city/v1/nests/+/commands/%u", "city/v1/commands/%u", "city/v1/incidents/%u"):
        assert f"pattern write {topic}\n" in text
    writes = [line for line in text.splitlines() if " write " in line or "readwrite" in line]
    assert len(writes) == 4  # the three own-name patterns and the service's tree
    with pytest.raises(ValueError):
        roles.acl_file("city/+")


@pytest.mark.parametrize(
    ("user", "access", "topic", "ok"),
    [
        ("li.wei", "write", "r/nests/3/commands/li.wei", True),
        ("li.wei", "write", "r/nests/3/commands/zhao", False),
        ("li.wei", "write", "r/commands/li.wei", True),
        ("li.wei", "write", "r/incidents/li.wei", True),
        ("li.wei", "write", "r/nests/3/state", False),
        ("li.wei", "write", "r/replies/li.wei/1", False),
        ("li.wei", "read", "r/replies/li.wei/x/1", True),
        ("li.wei", "read", "r/replies/li.wei", True),
        ("li.wei", "read", "r/replies/zhao/1", False),
        ("li.wei", "read", "r/nests/3/state", True),
        ("li.wei", "read", "r/nests/3/commands/zhao", False),
        ("li.wei", "read", "r/incidents/desk-1", True),
        ("li.wei", "read", "r/status", True),
        ("li.wei", "read", "r/instances/dronectl-a/status", True),
        ("li.wei", "write", "r/instances/dronectl-a/status", False),
        ("dronectl", "read", "r/nests/3/commands/zhao", True),
        ("dronectl", "write", "r/nests/3/state", True),
        ("dronectl", "write", "other/x", False),
        ("a+b", "write", "r/commands/a+b", False),
    ],
)
def test_embedded_acl(user: str, access: str, topic: str, ok: bool) -> None:
    assert roles.allowed("r", user, access, topic) is ok


def test_checked_in_acl_is_current() -> None:
    assert roles.main(["--check"]) == 0, "run: python -m dronectl.operations.roles"


def test_nest_numbers_go_to_4000() -> None:
    assert [parse_nest_token(t) for t in ("1", "251", "256", "4000")] == [1, 251, 256, 4000]
    assert [parse_nest_token(t) for t in ("0", "4001", "04", "40000", "1e3")] == [None] * 5
