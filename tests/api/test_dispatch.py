"""Pure request handling: expiry, repeated ids, roles, malformed payloads, topics. No broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dronectl.api.controller import CommandUpdate
from dronectl.api.dispatch import (
    Dispatcher,
    Execute,
    Ignore,
    IncidentAccepted,
    IncidentRejected,
    Refuse,
    Repeat,
    first_reply,
    progress,
)
from dronectl.api.models import ErrorCode, LaunchArgs, Method, ProgressState, Reply, Role
from dronectl.api.topics import Topics

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
    base: dict[str, Any] = {
        "id": "c-1",
        "method": "launch",
        "args": {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 60}},
        "actor": {"id": "officer-7", "role": "pilot"},
        "issued_at": NOW.isoformat(),
        "ttl_s": 10,
        "reply_to": "dronectl/v1/replies/pilot/1",
    }
    base.update(changes)
    return json.dumps(base).encode()


def _refusal(decision: object, code: ErrorCode) -> Refuse:
    assert isinstance(decision, Refuse), decision
    assert decision.reply.error is not None
    assert decision.reply.error.code is code, decision.reply.error
    return decision


def test_a_valid_command_becomes_a_command() -> None:
    decision = _dispatcher().decide(TOPIC, _payload())
    assert isinstance(decision, Execute)
    command = decision.command
    assert (command.id, command.method, command.nest_id) == ("c-1", Method.LAUNCH, 3)
    assert isinstance(command.args, LaunchArgs) and command.args.target.alt_m == 60
    assert command.actor_role is Role.PILOT
    assert command.deadline_unix_s == NOW.timestamp() + 10
    assert decision.reply_to == "dronectl/v1/replies/pilot/1"


def test_expired_is_refused_never_executed() -> None:
    clock = Clock()
    clock.now_s += 10.5
    refusal = _refusal(_dispatcher(clock).decide(TOPIC, _payload()), ErrorCode.EXPIRED)
    assert "not executed" in refusal.reply.error.message  # type: ignore[union-attr]
    assert refusal.event.kind.value == "command_rejected" and refusal.event.nest_id == 3
    assert refusal.reply_to == "dronectl/v1/replies/pilot/1"


def test_just_in_time_is_accepted() -> None:
    clock = Clock()
    clock.now_s += 9.9
    assert isinstance(_dispatcher(clock).decide(TOPIC, _payload()), Execute)


def test_issued_in_the_future_is_refused() -> None:
    future = (NOW + timedelta(seconds=60)).isoformat()
    _refusal(_dispatcher().decide(TOPIC, _payload(issued_at=future)), ErrorCode.EXPIRED)


def test_repeated_id_answers_the_first_outcome() -> None:
    d = _dispatcher()
    first = d.decide(TOPIC, _payload())
    assert isinstance(first, Execute)
    # while the controller has not answered: ignored, not executed twice
    assert isinstance(d.decide(TOPIC, _payload()), Ignore)
    reply = first_reply(first.command, CommandUpdate(ProgressState.ACCEPTED))
    d.remember("c-1", reply)
    again = d.decide(TOPIC, _payload())
    assert isinstance(again, Repeat)
    assert again.reply.ok and again.reply.repeated and again.reply.id == "c-1"
    # a repeat with different content is still the same command: the first outcome again
    changed = d.decide(TOPIC, _payload(method="land", args={}))
    assert isinstance(changed, Repeat)


def test_repeated_refusal_is_refused_again_the_same_way() -> None:
    d = _dispatcher()
    _refusal(d.decide(TOPIC, _payload(actor={"id": "x", "role": "observer"})), ErrorCode.FORBIDDEN)
    again = d.decide(TOPIC, _payload())  # same id, now with a permitted role
    assert isinstance(again, Repeat)
    assert again.reply.error is not None and again.reply.error.code is ErrorCode.FORBIDDEN


def test_first_outcome_from_the_store_is_honoured() -> None:
    d = _dispatcher()
    assert d.request_id(_payload()) == "c-1" and not d.knows("c-1")
    d.remember("c-1", Reply(id="c-1", ok=True, result={"state": "accepted"}))
    assert isinstance(d.decide(TOPIC, _payload()), Repeat)


def test_unauthorised_roles() -> None:
    _refusal(
        _dispatcher().decide(TOPIC, _payload(actor={"id": "x", "role": "observer"})), ErrorCode.FORBIDDEN
    )
    maintenance = _payload(id="m", method="maintenance.set", args={"on": True})
    refusal = _refusal(_dispatcher().decide(TOPIC, maintenance), ErrorCode.FORBIDDEN)
    assert "commander" in refusal.reply.error.message  # type: ignore[union-attr]
    commander = _payload(
        id="m", method="maintenance.set", args={"on": True}, actor={"id": "c", "role": "commander"}
    )
    assert isinstance(_dispatcher().decide(TOPIC, commander), Execute)
    take = _payload(id="t", method="control.take", args={}, actor={"id": "bot", "role": "automation"})
    _refusal(_dispatcher().decide(TOPIC, take), ErrorCode.FORBIDDEN)


def test_unknown_methods_and_scopes() -> None:
    _refusal(_dispatcher().decide(TOPIC, _payload(method="selfdestruct")), ErrorCode.UNKNOWN_METHOD)
    fleet_on_nest = _payload(method="return_all", args={}, actor={"id": "c", "role": "commander"})
    _refusal(_dispatcher().decide(TOPIC, fleet_on_nest), ErrorCode.UNKNOWN_METHOD)
    _refusal(_dispatcher().decide("dronectl/v1/commands", _payload()), ErrorCode.UNKNOWN_METHOD)
    fleet = _dispatcher().decide("dronectl/v1/commands", fleet_on_nest)
    assert isinstance(fleet, Execute) and fleet.command.nest_id is None


def test_invalid_args_list_every_problem() -> None:
    bad = _payload(args={"target": {"lat": 95, "lon": 200, "alt_m": 60}})
    refusal = _refusal(_dispatcher().decide(TOPIC, bad), ErrorCode.INVALID_ARGS)
    reasons = refusal.reply.error.reasons  # type: ignore[union-attr]
    assert any(r.startswith("args.target.lat") for r in reasons)
    assert any(r.startswith("args.target.lon") for r in reasons)


def test_unknown_nest() -> None:
    refusal = _refusal(
        _dispatcher().decide("dronectl/v1/nests/99/commands", _payload()), ErrorCode.UNKNOWN_NEST
    )
    assert refusal.reply_to is not None


def test_malformed_payloads() -> None:
    d = _dispatcher()
    no_address = _refusal(d.decide(TOPIC, b"not json"), ErrorCode.MALFORMED)
    assert no_address.reply_to is None and no_address.reply.id is None  # only the event goes out
    readable = b'{"id": "abc", "reply_to": "r/1", "method": "launch"}'
    refusal = _refusal(d.decide(TOPIC, readable), ErrorCode.MALFORMED)
    assert (refusal.reply.id, refusal.reply_to) == ("abc", "r/1")
    assert any("actor" in r for r in refusal.reply.error.reasons)  # type: ignore[union-attr]
    wild = b'{"id": "abd", "reply_to": "r/#"}'
    assert _refusal(d.decide(TOPIC, wild), ErrorCode.MALFORMED).reply_to is None
    _refusal(d.decide(TOPIC, b"[" * 100_000), ErrorCode.MALFORMED)
    _refusal(d.decide(TOPIC, b" " * 70_000), ErrorCode.MALFORMED)
    _refusal(d.decide(TOPIC, b'"just a string"'), ErrorCode.MALFORMED)


def test_ignored() -> None:
    d = _dispatcher()
    assert isinstance(d.decide(TOPIC, _payload(), retained=True), Ignore)
    assert isinstance(d.decide("dronectl/v1/nests/3/state", _payload()), Ignore)
    assert isinstance(d.decide("dronectl/v1/incidents", _payload()), Ignore)
    assert isinstance(d.decide(TOPIC, _payload()), Execute)  # the retained copy did not mark the id


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
    assert isinstance(d.incident(json.dumps(good).encode()), IncidentAccepted)
    assert isinstance(d.incident(b"{}"), IncidentRejected)
    assert isinstance(d.incident(b"\x00"), IncidentRejected)


def test_answers_from_controller_updates() -> None:
    d = _dispatcher()
    decision = d.decide(TOPIC, _payload())
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
        d.decide(TOPIC, _payload(id=f"c{i}", actor={"id": "x", "role": "observer"}))
    assert not d.knows("c0") and d.knows("c149")
