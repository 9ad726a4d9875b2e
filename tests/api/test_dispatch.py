"""Pure request handling: expiry, repeated ids, roles, malformed payloads, topics. No broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dronectl.domain.roles import Channel
from dronectl.operations.models import ErrorCode, LaunchArgs, Method, ProgressState, Reply, Role
from dronectl.operations.port import CommandUpdate
from dronectl.operations.requests import (
    AwaitFirst,
    Decision,
    Dispatcher,
    Execute,
    Ignore,
    IncidentAccepted,
    IncidentRejected,
    Refuse,
    Repeat,
    Sender,
    first_reply,
    progress,
)
from dronectl.operations.topics import Topics

NOW = datetime(2025, 1, 13, 8, 30, tzinfo=UTC)
TOPIC = "dronectl/v1/nests/3/commands"


class Clock:
    def __init__(self) -> None:
        self.now_s = NOW.timestamp()

    def __call__(self) -> float:
        return self.now_s


def _dispatcher(clock: Clock | None = None) -> Dispatcher:
    return Dispatcher(Topics(), range(1, 17), clock or Clock())


def _payload(**changes: Any) -> bytes:
    actor = changes.get("actor", {"id": "officer-7", "role": "pilot"})
    base: dict[str, Any] = {
        "id": "c-1",
        "method": "launch",
        "args": {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 60}},
        "actor": actor,
        "issued_at": NOW.isoformat(),
        "ttl_s": 10,
        "reply_to": f"dronectl/v1/replies/{actor['id']}/1",
    }
    base.update(changes)
    return json.dumps(base).encode()


def _sender_of(payload: bytes) -> Sender:
    """These tests vary the role through the envelope's actor: the sender is taken to be that user
    (as the broker and the roles file would make it); identity checks have tests of their own."""
    try:
        actor = json.loads(payload).get("actor", {})
        return Sender(actor["id"], Role(actor["role"]), Channel.MQTT)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return Sender("officer-7", Role.PILOT, Channel.MQTT)


def decide(d: Dispatcher, topic: str, payload: bytes, *, retained: bool = False) -> Decision:
    sender = _sender_of(payload)
    if topic.endswith(("/commands", "/incidents")):
        topic = f"{topic}/{sender.user}"
    return d.decide(topic, payload, sender, retained=retained)


def incident(d: Dispatcher, payload: bytes) -> IncidentAccepted | IncidentRejected:
    return d.incident(payload, _sender_of(payload))


def _refusal(decision: object, code: ErrorCode) -> Refuse:
    assert isinstance(decision, Refuse), decision
    assert decision.reply.error is not None
    assert decision.reply.error.code is code, decision.reply.error
    return decision


def test_a_valid_command_becomes_a_command() -> None:
    decision = decide(_dispatcher(), TOPIC, _payload())
    assert isinstance(decision, Execute)
    command = decision.command
    assert (command.id, command.method, command.nest_id) == ("c-1", Method.LAUNCH, 3)
    assert isinstance(command.args, LaunchArgs) and command.args.target.alt_m == 60
    assert command.actor_role is Role.PILOT
    assert command.deadline_unix_s == NOW.timestamp() + 10
    assert decision.reply_to == "dronectl/v1/replies/officer-7/1"


def test_expired_is_refused_never_executed() -> None:
    clock = Clock()
    clock.now_s += 10.5
    refusal = _refusal(decide(_dispatcher(clock), TOPIC, _payload()), ErrorCode.EXPIRED)
    assert "not executed" in refusal.reply.error.message  # type: ignore[union-attr]
    assert refusal.event.kind.value == "command_rejected" and refusal.event.nest_id == 3
    assert refusal.reply_to == "dronectl/v1/replies/officer-7/1"


def test_just_in_time_is_accepted() -> None:
    clock = Clock()
    clock.now_s += 9.9
    assert isinstance(decide(_dispatcher(clock), TOPIC, _payload()), Execute)


def test_issued_in_the_future_is_refused() -> None:
    future = (NOW + timedelta(seconds=60)).isoformat()
    _refusal(decide(_dispatcher(), TOPIC, _payload(issued_at=future)), ErrorCode.EXPIRED)


def test_repeated_id_answers_the_first_outcome() -> None:
    d = _dispatcher()
    first = decide(d, TOPIC, _payload())
    assert isinstance(first, Execute)
    # while the controller has not answered: not executed twice, answered once the first outcome exists
    pending = decide(d, TOPIC, _payload())
    assert isinstance(pending, AwaitFirst) and pending.command_id == "c-1" and d.pending("c-1")
    reply = first_reply(first.command, CommandUpdate(ProgressState.ACCEPTED))
    d.remember("c-1", reply)
    again = decide(d, TOPIC, _payload())
    assert isinstance(again, Repeat)
    assert again.reply.ok and again.reply.repeated and again.reply.id == "c-1"
    # a repeat with different content is still the same command: the first outcome again
    changed = decide(d, TOPIC, _payload(method="land", args={}))
    assert isinstance(changed, Repeat)


def test_repeated_refusal_is_refused_again_the_same_way() -> None:
    d = _dispatcher()
    _refusal(decide(d, TOPIC, _payload(actor={"id": "x", "role": "observer"})), ErrorCode.FORBIDDEN)
    again = decide(d, TOPIC, _payload())  # same id, now with a permitted role
    assert isinstance(again, Repeat)
    assert again.reply.error is not None and again.reply.error.code is ErrorCode.FORBIDDEN


def test_first_outcome_from_the_store_is_honoured() -> None:
    d = _dispatcher()
    assert d.request_id(_payload()) == "c-1" and not d.knows("c-1")
    d.remember("c-1", Reply(id="c-1", ok=True, result={"state": "accepted"}))
    assert isinstance(decide(d, TOPIC, _payload()), Repeat)


def test_unauthorised_roles() -> None:
    _refusal(
        decide(_dispatcher(), TOPIC, _payload(actor={"id": "x", "role": "observer"})), ErrorCode.FORBIDDEN
    )
    maintenance = _payload(id="m", method="maintenance.set", args={"on": True})
    refusal = _refusal(decide(_dispatcher(), TOPIC, maintenance), ErrorCode.FORBIDDEN)
    assert "commander" in refusal.reply.error.message  # type: ignore[union-attr]
    commander = _payload(
        id="m", method="maintenance.set", args={"on": True}, actor={"id": "c", "role": "commander"}
    )
    assert isinstance(decide(_dispatcher(), TOPIC, commander), Execute)
    take = _payload(id="t", method="control.take", args={}, actor={"id": "bot", "role": "automation"})
    _refusal(decide(_dispatcher(), TOPIC, take), ErrorCode.FORBIDDEN)


def test_unknown_methods_and_scopes() -> None:
    _refusal(decide(_dispatcher(), TOPIC, _payload(method="selfdestruct")), ErrorCode.UNKNOWN_METHOD)
    fleet_on_nest = _payload(method="return_all", args={}, actor={"id": "c", "role": "commander"})
    _refusal(decide(_dispatcher(), TOPIC, fleet_on_nest), ErrorCode.UNKNOWN_METHOD)
    _refusal(decide(_dispatcher(), "dronectl/v1/commands", _payload()), ErrorCode.UNKNOWN_METHOD)
    fleet = decide(_dispatcher(), "dronectl/v1/commands", fleet_on_nest)
    assert isinstance(fleet, Execute) and fleet.command.nest_id is None


def test_invalid_args_list_every_problem() -> None:
    bad = _payload(args={"target": {"lat": 95, "lon": 200, "alt_m": 60}})
    refusal = _refusal(decide(_dispatcher(), TOPIC, bad), ErrorCode.INVALID_ARGS)
    reasons = refusal.reply.error.reasons  # type: ignore[union-attr]
    assert any(r.startswith("args.target.lat") for r in reasons)
    assert any(r.startswith("args.target.lon") for r in reasons)


def test_unknown_nest() -> None:
    refusal = _refusal(
        decide(_dispatcher(), "dronectl/v1/nests/99/commands", _payload()), ErrorCode.UNKNOWN_NEST
    )
    assert refusal.reply_to is not None


def test_malformed_payloads() -> None:
    d = _dispatcher()
    no_address = _refusal(decide(d, TOPIC, b"not json"), ErrorCode.MALFORMED)
    assert no_address.reply_to is None and no_address.reply.id is None  # only the event goes out
    readable = b'{"id": "abc", "reply_to": "dronectl/v1/replies/officer-7/1", "method": "launch"}'
    refusal = _refusal(decide(d, TOPIC, readable), ErrorCode.MALFORMED)
    assert (refusal.reply.id, refusal.reply_to) == ("abc", "dronectl/v1/replies/officer-7/1")
    assert any("issued_at" in r for r in refusal.reply.error.reasons)  # type: ignore[union-attr]
    elsewhere = b'{"id": "abe", "reply_to": "r/1", "method": "launch"}'  # not the sender's: no answer
    assert _refusal(decide(d, TOPIC, elsewhere), ErrorCode.MALFORMED).reply_to is None
    wild = b'{"id": "abd", "reply_to": "r/#"}'
    assert _refusal(decide(d, TOPIC, wild), ErrorCode.MALFORMED).reply_to is None
    _refusal(decide(d, TOPIC, b"[" * 100_000), ErrorCode.MALFORMED)
    _refusal(decide(d, TOPIC, b" " * 70_000), ErrorCode.MALFORMED)
    _refusal(decide(d, TOPIC, b'"just a string"'), ErrorCode.MALFORMED)


def test_ignored() -> None:
    d = _dispatcher()
    assert isinstance(decide(d, TOPIC, _payload(), retained=True), Ignore)
    assert isinstance(decide(d, "dronectl/v1/nests/3/state", _payload()), Ignore)
    assert isinstance(decide(d, "dronectl/v1/incidents", _payload()), Ignore)
    assert isinstance(decide(d, TOPIC, _payload()), Execute)  # the retained copy did not mark the id


def test_incidents() -> None:
    d = _dispatcher()
    good = {
        "id": "inc-1",
        "kind": "traffic_accident",
        "position": {"lat": 43.8, "lon": 125.3},
        "priority": 1,
        "reported_at": NOW.isoformat(),
        "actor": {"id": "dispatch", "role": "commander"},
    }
    assert isinstance(incident(d, json.dumps(good).encode()), IncidentAccepted)
    assert isinstance(incident(d, b"{}"), IncidentRejected)
    assert isinstance(incident(d, b"\x00"), IncidentRejected)


def test_answers_from_controller_updates() -> None:
    d = _dispatcher()
    decision = decide(d, TOPIC, _payload())
    assert isinstance(decision, Execute)
    refused = first_reply(
        decision.command,
        CommandUpdate(
            ProgressState.FAILED, "launch refused", ErrorCode.REFUSED, ("wind 14 m/s over 12 m/s",)
        ),
    )
    assert not refused.ok and refused.error is not None
    assert refused.error.code is ErrorCode.REFUSED and refused.error.reasons == ["wind 14 m/s over 12 m/s"]
    done = progress(
        decision.command, CommandUpdate(ProgressState.SUCCEEDED, result={"a": 1}), NOW.timestamp()
    )
    assert (done.state, done.result, done.error, done.nest_id) == (ProgressState.SUCCEEDED, {"a": 1}, None, 3)
    failed = progress(
        decision.command, CommandUpdate(ProgressState.FAILED, "link lost", ErrorCode.LINK_LOST), 0
    )
    assert failed.error is not None and failed.error.code is ErrorCode.LINK_LOST


def test_lru_forgets_the_oldest() -> None:
    d = Dispatcher(Topics(), [3], Clock(), memory=100)
    for i in range(150):
        decide(d, TOPIC, _payload(id=f"c{i}", actor={"id": "x", "role": "observer"}))
    assert not d.knows("c0") and d.knows("c149")


def test_time_is_judged_at_receipt_not_when_decided() -> None:
    """A message that waited in a backlog is judged at the time it was read: one issued 60 s ahead
    stays refused however late it is decided, and its repeat later is refused the same way;
    one that was in time when read is a command even if its ttl has run out since (the
    controller refuses to *start* it after its deadline)."""
    clock = Clock()
    d = _dispatcher(clock)
    sender = Sender("officer-7", Role.PILOT, Channel.MQTT)
    topic = f"{TOPIC}/officer-7"
    ahead = _payload(id="ahead", issued_at=(NOW + timedelta(seconds=60)).isoformat())
    read_at = clock.now_s
    clock.now_s += 61  # decided a minute after it was read: issued_at is in the past by now
    refusal = _refusal(d.decide(topic, ahead, sender, received_at_unix_s=read_at), ErrorCode.EXPIRED)
    assert "60.0 s in the future" in refusal.reply.error.message  # type: ignore[union-attr]
    again = d.decide(topic, ahead, sender, received_at_unix_s=clock.now_s)
    assert isinstance(again, Repeat) and again.reply.error is not None
    in_time = d.decide(topic, _payload(id="in-time"), sender, received_at_unix_s=read_at + 9)
    assert isinstance(in_time, Execute) and in_time.command.received_at_unix_s == read_at + 9


def test_args_must_be_finite_and_small() -> None:
    nan = _payload(args={"target": {"lat": 43.9, "lon": 125.3, "alt_m": 60}}).replace(b"60}", b"NaN}")
    _refusal(decide(_dispatcher(), TOPIC, nan), ErrorCode.MALFORMED)
    blob = _payload(args={"blob": "x" * 5000})
    refusal = _refusal(decide(_dispatcher(), TOPIC, blob), ErrorCode.MALFORMED)
    assert any("larger than 4096 bytes" in r for r in refusal.reply.error.reasons)  # type: ignore[union-attr]


def test_a_flood_of_refusals_never_pushes_out_a_command_that_ran() -> None:
    d = Dispatcher(Topics(), range(1, 17), Clock(), memory=100)
    assert isinstance(decide(d, TOPIC, _payload()), Execute)
    for n in range(500):
        _refusal(decide(d, TOPIC, _payload(id=f"bad-{n}", method="fly")), ErrorCode.UNKNOWN_METHOD)
    assert isinstance(decide(d, TOPIC, _payload()), AwaitFirst)  # still known: never run twice
