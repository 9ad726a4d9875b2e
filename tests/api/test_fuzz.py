"""Hypothesis fuzz of topics and payloads through dispatch (pure) and the API's message handler.

Every case is answered or ignored, nothing crashes, and no command reaches the controller unless
it is valid, unexpired, authorised for the role of the user its topic names (never the role it
claims), without a forged actor or a reply_to outside that user's replies, on a nest-command or
fleet topic, not retained, and new.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dronectl.domain.roles import Channel
from dronectl.operations.models import (
    FLEET_METHOD_ARGS,
    NEST_METHOD_ARGS,
    Method,
    ProgressState,
    Request,
    Role,
)
from dronectl.operations.port import Command, CommandUpdate
from dronectl.operations.requests import Dispatcher, Execute, Ignore, Refuse, Repeat, Sender, first_reply
from dronectl.operations.roles import may_call
from dronectl.operations.topics import FleetCommands, NestCommands, Topics
from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.fake_controller import FakeController

ROOT = "dronectl/v1"
NOW = datetime(2025, 1, 13, 8, 30, tzinfo=UTC)
NESTS = (1, 2, 3)

# the users file as the service would read it: the topic's last level is the sender
USERS = {"u": Role.PILOT, "c": Role.COMMANDER, "o": Role.OBSERVER, "a": Role.AUTOMATION, "r": Role.REPORTER}
senders = st.sampled_from(["u", "u", "c", "o", "a", "r", "nobody"])
good_topics = st.builds(
    lambda where, user: f"{ROOT}/{where}/{user}",
    st.sampled_from(["nests/1/commands", "nests/2/commands", "commands"]),
    senders,
)
topics = st.one_of(
    good_topics,
    good_topics,
    good_topics,
    st.sampled_from(
        [
            f"{ROOT}/nests/1/commands",
            f"{ROOT}/nests/3/commands/u",
            f"{ROOT}/commands",
            f"{ROOT}/incidents/c",
            f"{ROOT}/nests/4/commands/u",
            f"{ROOT}/nests/01/commands/u",
            f"{ROOT}/nests/1/state",
            f"{ROOT}/nests/1/commands/x/y",
            "dronectl/v2/commands/u",
        ]
    ),
    st.builds(lambda n: f"{ROOT}/nests/{n}/commands/u", st.text(max_size=5)),
    st.builds(lambda u: f"{ROOT}/commands/{u}", st.text(max_size=5)),
    st.text(max_size=40),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

valid_args = {
    "launch": {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 60}},
    "goto": {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 60}, "speed_mps": 10},
    "orbit": {"center": {"lat": 43.9, "lon": 125.3, "alt_m": 60}, "radius_m": 50},
    "speaker.say": {"text": "请减速", "lang": "zh"},
    "light.set": {"mode": "police"},
    "maintenance.set": {"on": True},
    "return_all": {"reason": "snow"},
    "incident.confirm": {"incident_id": "inc-1", "nest": 3},
    "patrol.start": {"kind": "black_ice", "stretch_id": "nanhu-bridge"},
    "patrol.stop": {"mission_id": "patrol-ice-nanhu-bridge-1"},
    "patrol.list": {"active_only": True},
}

requests_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.sampled_from(["a", "b", "c-1"]), st.text(max_size=10), st.integers()),
    "method": st.one_of(st.sampled_from([m.value for m in Method]), st.text(max_size=12)),
    "args": st.one_of(st.sampled_from(list(valid_args.values())), st.just({}), json_values),
    "actor": st.one_of(
        st.builds(
            lambda i, r: {"id": i, "role": r},
            st.sampled_from([*USERS, "x"]),
            st.sampled_from([r.value for r in Role] + ["root", ""]),
        ),
        json_values,
    ),
    "issued_at": st.one_of(
        st.builds(lambda s: (NOW + timedelta(seconds=s)).isoformat(), st.integers(-700, 700)),
        st.just("2025-01-13T08:30:00"),
        json_values,
    ),
    "ttl_s": st.one_of(st.floats(), st.integers(-5, 700), st.text(max_size=4)),
    "reply_to": st.one_of(
        st.none(),
        st.sampled_from(
            ["r/1", "r/#", "$SYS/x", "", f"{ROOT}/replies/u/1", f"{ROOT}/replies/c", f"{ROOT}/nests/1/state"]
        ),
        st.text(max_size=10),
    ),
    "extra": json_values,
}
requests = st.fixed_dictionaries({k: v for k, v in requests_fields.items() if k != "extra"})


NO_ARGS = {"hold", "return_home", "land", "abort", "speaker.stop", "control.take", "control.release"}


@st.composite
def good_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed requests (claiming any actor or none, so some are forbidden or forged),
    sometimes with one field spoiled."""
    method = draw(st.sampled_from([m.value for m in Method]))
    user = draw(st.sampled_from(list(USERS)))
    request: dict[str, Any] = {
        "id": draw(st.from_regex(r"[a-e][0-9]{0,2}", fullmatch=True)),
        "method": method,
        "args": {} if method in NO_ARGS else valid_args[method],
        "issued_at": (NOW + timedelta(seconds=draw(st.integers(-40, 10)))).isoformat(),
        "ttl_s": draw(st.sampled_from([5, 30, 60.5])),
        "reply_to": draw(st.sampled_from([None, "r/1", f"{ROOT}/replies/{user}/x", f"{ROOT}/replies/u/x"])),
    }
    if draw(st.booleans()):
        request["actor"] = {
            "id": user,
            "role": draw(st.sampled_from([USERS[user].value, "pilot", "commander"])),
        }
    spoil = draw(st.sampled_from([None, None, None, *requests_fields]))
    if spoil is not None:
        request[spoil] = draw(requests_fields[spoil])
    return request


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(_encode),
    requests.map(_encode),
    good_requests().map(_encode),
    good_requests().map(_encode),
    good_requests().map(_encode),
    good_requests().map(_encode),
    good_requests().map(lambda r: _encode(r)[: len(_encode(r)) // 2]),
)
retained = st.sampled_from([False, False, False, True])
messages = st.lists(st.tuples(topics, payloads, retained), min_size=1, max_size=12)


def _clock() -> float:
    return NOW.timestamp()


def _independently_valid(topic: str, payload: bytes, retained: bool) -> Command:
    """Re-derive, without the dispatcher, that this message deserved to be executed."""
    assert not retained
    where = Topics(ROOT).parse(topic, NESTS)
    assert isinstance(where, NestCommands | FleetCommands)
    role = USERS[where.user]  # a user of ours
    request = Request.model_validate_json(payload)
    assert request.actor is None or (request.actor.id, request.actor.role) == (where.user, role)
    assert request.reply_to is None or request.reply_to.startswith(f"{ROOT}/replies/{where.user}/")
    issued = request.issued_at.timestamp()
    assert issued - 5.0 <= _clock() <= issued + request.ttl_s
    table = NEST_METHOD_ARGS if isinstance(where, NestCommands) else FLEET_METHOD_ARGS
    method = Method(request.method)
    assert method in table
    assert may_call(role, method)
    table[method].model_validate(request.args)
    return Command(
        id=request.id,
        method=method,
        nest_id=where.nest_id if isinstance(where, NestCommands) else None,
        args=table[method].model_validate(request.args),
        actor_id=where.user,
        actor_role=role,
        issued_at_unix_s=issued,
        deadline_unix_s=issued + request.ttl_s,
        received_at_unix_s=_clock(),
        channel=Channel.MQTT,
    )


def _sender(topic: str) -> Sender | None:
    user = Topics(ROOT).sender(topic)
    return Sender(user, USERS[user], Channel.MQTT) if user in USERS else None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_dispatch_fuzz(batch: list[tuple[str, bytes, bool]]) -> None:
    dispatcher = Dispatcher(Topics(ROOT), NESTS, _clock)
    executed: set[str] = set()
    for topic, payload, retained in batch:
        decision = dispatcher.decide(topic, payload, _sender(topic), retained=retained)
        assert isinstance(decision, Execute | Refuse | Repeat | Ignore)
        if isinstance(decision, Execute):
            expected = _independently_valid(topic, payload, retained)
            assert decision.command == expected
            assert decision.command.id not in executed, "an id executed twice"
            executed.add(decision.command.id)
            dispatcher.remember(
                decision.command.id, first_reply(decision.command, CommandUpdate(ProgressState.ACCEPTED))
            )
        elif isinstance(decision, Refuse):
            assert not decision.reply.ok and decision.event.kind.value == "command_rejected"
        elif isinstance(decision, Repeat):
            assert decision.reply.repeated and decision.reply.id in executed | {decision.reply.id}


async def _through_the_api(batch: list[tuple[str, bytes, bool]]) -> list[Command]:
    controller = FakeController(NESTS, clock=_clock, step_s=0.0)
    settings = MqttSettings(broker="mqtt://127.0.0.1:1", root=ROOT)
    api = MqttApi(settings, controller, clock=_clock, role_of=USERS.get)
    async with asyncio.TaskGroup() as tasks:
        api._tasks = tasks  # commands run here, as under MqttApi.run (no broker: publishes are dropped)
        for topic, payload, retained in batch:
            await api._handle(topic, payload, retained=retained)
    return controller.executed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_api_handler_fuzz(batch: list[tuple[str, bytes, bool]]) -> None:
    executed = asyncio.run(_through_the_api(batch))
    ids = [c.id for c in executed]
    assert len(ids) == len(set(ids))
    for command in executed:
        assert any(_deserved(topic, payload, retained, command) for topic, payload, retained in batch)


def _deserved(topic: str, payload: bytes, retained: bool, command: Command) -> bool:
    if _safe_id(payload) != command.id:
        return False
    try:
        return _independently_valid(topic, payload, retained) == command
    except (AssertionError, ValueError):
        return False


def _safe_id(payload: bytes) -> str | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) else None
