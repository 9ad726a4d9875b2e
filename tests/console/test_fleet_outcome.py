"""The fleet model (from what the API publishes), exit codes, and the panel's fit in 80 columns."""

from __future__ import annotations

import re
from datetime import timedelta

from dronectl.operations.models import (
    Actor,
    ErrorBody,
    ErrorCode,
    Event,
    EventKind,
    Method,
    Phase,
    Progress,
    ProgressState,
    Reply,
    Role,
)
from dronectl.transports.console.fleet import FleetModel, classify
from dronectl.transports.console.outcome import CommandResult, ExitCode, exit_code_for
from dronectl.transports.console.panel import render_panel
from tests.console.helpers import NOW, TOPICS, fleet, state, telemetry

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def test_topics_are_classified_and_others_ignored() -> None:
    assert classify(TOPICS, "dronectl/v1/nests/7/state").nest_id == 7  # type: ignore[union-attr]
    assert classify(TOPICS, "dronectl/v1/nests/07/state") is None
    assert classify(TOPICS, "dronectl/v1/nests/7/commands") is None
    assert classify(TOPICS, "other/v1/status") is None
    model = FleetModel(TOPICS)
    assert model.apply("dronectl/v1/nests/7/state", b"{not json") is None
    assert model.apply("dronectl/v1/nests/5/state", state(7).model_dump_json().encode()) is None
    assert model.apply("dronectl/v1/status", b"") is None  # a cleared retained message
    assert model.ignored == 2 and model.nests == {}


def test_state_and_fresh_telemetry_make_the_row() -> None:
    model = fleet()
    holder = Actor(id="pilot-b", role=Role.PILOT)
    model.apply(
        TOPICS.nest_state(5), state(5, Phase.EN_ROUTE, holder=holder, alt_m=20.0).model_dump_json().encode()
    )
    row = model.row(5, NOW)
    assert (row.phase, row.alt_m, row.speed_mps, row.holder, row.battery_pct) == (
        "en_route",
        20.0,
        None,
        "pilot-b",
        88.0,
    )
    model.apply(TOPICS.nest_telemetry(5), telemetry(5, NOW + timedelta(seconds=1), 45.0, 12.5))
    row = model.row(5, NOW + timedelta(seconds=2))
    assert (row.alt_m, row.speed_mps, row.battery_pct) == (45.0, 12.5, 75.0)
    # an older sample never replaces a newer one; a stale one is not shown
    model.apply(TOPICS.nest_telemetry(5), telemetry(5, NOW, 10.0, 1.0))
    assert model.row(5, NOW + timedelta(seconds=2)).alt_m == 45.0
    assert model.row(5, NOW + timedelta(seconds=60)).speed_mps is None
    assert model.holder(5) == "pilot-b" and model.holder(3) is None


def test_events_and_unknown_nests() -> None:
    model = fleet()
    event = Event(kind=EventKind.LAUNCHED, at=NOW, nest_id=3, message="airborne")
    model.apply(TOPICS.events(), event.model_dump_json().encode())
    assert list(model.events) == [event]
    assert model.row(9, NOW).phase == "?"
    assert model.nest_ids() == [3, 5, 7]


def _refusal(code: ErrorCode) -> ErrorBody:
    return ErrorBody(code=code, message="no")


def test_exit_codes() -> None:
    assert exit_code_for(_refusal(ErrorCode.REFUSED), None, "me") is ExitCode.REFUSED
    assert exit_code_for(_refusal(ErrorCode.BUSY), None, "me") is ExitCode.REFUSED
    assert exit_code_for(_refusal(ErrorCode.BUSY), "pilot-b", "me") is ExitCode.NOT_IN_CONTROL
    assert exit_code_for(_refusal(ErrorCode.BUSY), "me", "me") is ExitCode.REFUSED
    assert exit_code_for(_refusal(ErrorCode.LINK_LOST), None, "me") is ExitCode.LINK_LOST
    assert exit_code_for(_refusal(ErrorCode.TIMEOUT), None, "me") is ExitCode.TIMEOUT
    assert exit_code_for(_refusal(ErrorCode.EXPIRED), None, "me") is ExitCode.TIMEOUT
    assert exit_code_for(_refusal(ErrorCode.FORBIDDEN), None, "me") is ExitCode.FORBIDDEN
    assert exit_code_for(_refusal(ErrorCode.UNKNOWN_METHOD), None, "me") is ExitCode.UNSUPPORTED
    assert exit_code_for(_refusal(ErrorCode.INVALID_ARGS), None, "me") is ExitCode.USAGE
    assert exit_code_for(_refusal(ErrorCode.UNAVAILABLE), None, "me") is ExitCode.NO_CONNECTION
    assert {int(code) for code in ExitCode} == set(range(10))


def test_result_messages_and_json() -> None:
    refused = CommandResult("id1", "launch", 3, "launch nest 3")
    refused.reply = Reply(
        id="id1",
        ok=False,
        error=ErrorBody(code=ErrorCode.REFUSED, message="launch refused", reasons=["wind 14 m/s over 12"]),
    )
    refused.exit_code = ExitCode.REFUSED
    assert refused.message() == "nest 3 launch refused: [refused] launch refused\n  - wind 14 m/s over 12"
    data = refused.to_json()
    assert (data["ok"], data["state"], data["exit_code"]) == (False, "refused", 3)
    assert data["error"]["reasons"] == ["wind 14 m/s over 12"]

    done = CommandResult("id2", "launch", 3, "launch nest 3")
    done.reply = Reply(id="id2", ok=True, result={"state": "accepted"})
    done.progress.append(
        Progress(
            id="id2",
            method=Method.LAUNCH,
            nest_id=3,
            state=ProgressState.SUCCEEDED,
            at=NOW,
            message="on station",
            result={"flight_id": "F1"},
        )
    )
    assert done.message() == "nest 3 launch succeeded: on station"
    assert done.to_json()["result"] == {"flight_id": "F1"} and done.to_json()["ok"] is True

    silent = CommandResult(
        "id3", "hold", 3, "hold nest 3", exit_code=ExitCode.TIMEOUT, local_error="no reply"
    )
    assert silent.state == "no_reply" and silent.to_json()["exit_code"] == 4


def test_panel_fits_16_nests_in_80_by_24() -> None:
    model = fleet(tuple(range(1, 17)))
    holder = Actor(id="pilot-a", role=Role.PILOT)
    model.apply(
        TOPICS.nest_state(16),
        state(16, Phase.ON_STATION, holder=holder, alt_m=60.0).model_dump_json().encode(),
    )
    text = ANSI_ESCAPE.sub("", render_panel(model, NOW, 80, "pilot-a"))
    lines = text.splitlines()
    assert len(lines) == 9  # header + 8 lines of two nests
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    assert any(" 16 on_station" in f" {line}" and "pilot-a" in line for line in lines)
    assert all(str(n) in text for n in range(1, 17))
    wide = ANSI_ESCAPE.sub("", render_panel(model, NOW, 160, "pilot-a")).splitlines()
    assert len(wide) == 5  # four to a line


def test_panel_before_any_state() -> None:
    assert "waiting" in render_panel(FleetModel(TOPICS), NOW, 80, "me")
