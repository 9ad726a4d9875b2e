"""The payload models: strict, closed, ranges enforced, in step with the core's vocabulary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dronectl.domain.nest_state import NestPhase
from dronectl.operations.models import (
    NEST_METHOD_ARGS,
    ErrorBody,
    ErrorCode,
    Incident,
    LaunchArgs,
    LightSetArgs,
    Method,
    OrbitArgs,
    Phase,
    Reply,
    Request,
    Role,
    SpeakerSayArgs,
)


def _request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "c-1",
        "method": "launch",
        "args": {"target": {"lat": 43.9, "lon": 125.3, "alt_m": 60}},
        "actor": {"id": "officer-7", "role": "pilot"},
        "issued_at": "2025-01-13T08:30:00Z",
        "ttl_s": 10,
        "reply_to": "dronectl/v1/replies/pilot/1",
    }
    base.update(changes)
    return base


def test_a_valid_request_parses() -> None:
    request = Request.model_validate_json(json.dumps(_request()))
    assert request.actor is not None and request.actor.role is Role.PILOT
    assert request.issued_at == datetime(2025, 1, 13, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "changes",
    [
        {"extra": 1},  # unknown field
        {"id": ""},
        {"id": "has space"},
        {"id": "x" * 129},
        {"ttl_s": 0},
        {"ttl_s": 601},
        {"ttl_s": "10"},  # no coercion from strings
        {"issued_at": "2025-01-13T08:30:00"},  # no time zone
        {"actor": {"id": "a", "role": "admin"}},
        {"actor": {"id": "a", "role": "pilot", "level": 9}},
        {"reply_to": "replies/+/x"},  # wildcard
        {"reply_to": "$SYS/x"},
        {"reply_to": ""},
        {"args": []},
    ],
)
def test_bad_envelopes_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Request.model_validate_json(json.dumps(_request(**changes)))


def test_nan_is_refused() -> None:
    text = json.dumps(_request()).replace('"ttl_s": 10', '"ttl_s": NaN')
    with pytest.raises(ValidationError):
        Request.model_validate_json(text)


@pytest.mark.parametrize(
    ("model", "args"),
    [
        (LaunchArgs, {"target": {"lat": 91, "lon": 0, "alt_m": 50}}),
        (LaunchArgs, {"target": {"lat": 43, "lon": 125, "alt_m": 2}}),  # below 5 m
        (LaunchArgs, {"target": {"lat": 43, "lon": 125}}),
        (LaunchArgs, {"target": {"lat": "43", "lon": 125, "alt_m": 50}}),
        (OrbitArgs, {"center": {"lat": 43, "lon": 125, "alt_m": 50}, "radius_m": 5}),
        (SpeakerSayArgs, {"text": ""}),
        (SpeakerSayArgs, {"text": "x" * 501}),
        (SpeakerSayArgs, {"text": "hi", "lang": "chinese!"}),
        (LightSetArgs, {"mode": "disco"}),
        (LightSetArgs, {}),
    ],
)
def test_bad_args_are_refused(model: type[LaunchArgs], args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(args)


def test_every_method_has_an_args_model() -> None:
    assert NEST_METHOD_ARGS[Method.LIGHT_SET] is LightSetArgs
    assert LightSetArgs.model_validate({"mode": "police"}).mode == "police"
    assert SpeakerSayArgs.model_validate({"text": "请减速"}).lang == "zh"


def test_reply_is_ok_xor_error() -> None:
    Reply(id="a", ok=True, result={})
    Reply(id=None, ok=False, error=ErrorBody(code=ErrorCode.MALFORMED, message="bad"))
    with pytest.raises(ValidationError):
        Reply(id="a", ok=True, error=ErrorBody(code=ErrorCode.FAILED, message="x"))
    with pytest.raises(ValidationError):
        Reply(id="a", ok=False)


def test_api_phases_are_the_state_machine_phases() -> None:
    assert {p.value for p in Phase} == {p.value for p in NestPhase}


def test_incident_parses_and_is_strict() -> None:
    incident = {
        "id": "inc-1",
        "kind": "black_ice",
        "position": {"lat": 43.8, "lon": 125.3},
        "priority": 2,
        "text": "路面结冰",
        "reported_at": "2024-12-13T07:05:00+08:00",
        "actor": {"id": "dispatch", "role": "commander"},
    }
    assert Incident.model_validate_json(json.dumps(incident)).priority == 2
    with pytest.raises(ValidationError):
        Incident.model_validate_json(json.dumps({**incident, "priority": 0}))
    with pytest.raises(ValidationError):
        Incident.model_validate_json(json.dumps({**incident, "kind": "Black Ice"}))
