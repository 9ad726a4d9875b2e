"""What a restarted dispatcher does with each incident the audit store holds open (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from dronectl.audit import CommandRow, OutcomeRow
from dronectl.automations.incidents.recovery import (
    DroneNow,
    Resume,
    StoredIncidentError,
    recovery,
    stored_incident,
)
from dronectl.domain.nest_state import NestPhase

ARGS: dict[str, Any] = {
    "kind": "accident",
    "position": {"lat": 43.85, "lon": 125.30},
    "priority": 2,
    "text": "",
    "reported_at": "2026-12-13T06:40:00Z",
}


def row(
    codes: list[str], args: dict[str, Any] | None = None, messages: dict[str, str] | None = None
) -> CommandRow:
    outcomes = [
        OutcomeRow(
            seq=i,
            command_id="inc-1",
            at_unix_s=100.0 + i,
            outcome="accepted" if i == 0 else "in_progress",
            code=code,
            message=(messages or {}).get(code),
        )
        for i, code in enumerate(codes)
    ]
    return CommandRow(
        command_id="inc-1",
        at_unix_s=100.0,
        actor_id="cc-desk-2",
        actor_role="commander",
        nest_id=None,
        method="incident",
        args=ARGS if args is None else args,
        outcomes=outcomes,
        channel="mqtt",
    )


def drone(
    nest_id: int = 3,
    flight_id: str | None = "f-1",
    phase: NestPhase = NestPhase.ON_STATION,
    command_id: str | None = "inc-1.1.launch.n3",
) -> DroneNow:
    flying = phase in (NestPhase.EN_ROUTE, NestPhase.ON_STATION, NestPhase.RETURNING, NestPhase.LANDING)
    return DroneNow(nest_id, phase is not NestPhase.OFFLINE, flying, phase, flight_id, command_id)


def test_the_incident_is_read_back_as_it_came_in() -> None:
    s = stored_incident(row(["received", "queued"]), ["f-1"])
    assert s.incident.id == "inc-1" and s.incident.priority == 2 and s.incident.actor.id == "cc-desk-2"
    assert [m.milestone.value for m in s.milestones] == ["received", "queued"]
    assert s.stage == "queued" and s.flight_ids == ("f-1",) and s.times_resumed == 0


def test_an_unreadable_record_says_why() -> None:
    with pytest.raises(StoredIncidentError, match="priority"):
        stored_incident(row(["received"], args={**ARGS, "priority": 9}), [])


@pytest.mark.parametrize("codes", [["received"], ["received", "queued"], ["received", "proposed"]])
def test_nothing_dispatched_yet_is_planned_again(codes: list[str]) -> None:
    decision = recovery(stored_incident(row(codes), []), [drone(flight_id=None, phase=NestPhase.READY)])
    assert decision.action is Resume.REPLAN and codes[-1] in decision.reason


def test_a_confirmation_is_kept() -> None:
    messages = {"confirmed": "incident inc-1: confirmed by cc-desk-2: nest 7"}
    s = stored_incident(row(["received", "proposed", "confirmed"], messages=messages), [])
    assert s.confirmation == ("cc-desk-2", 7)
    assert stored_incident(row(["received", "proposed"]), []).confirmation is None


def test_a_drone_still_on_the_incidents_flight_is_followed() -> None:
    s = stored_incident(row(["received", "dispatched", "airborne", "on_scene"]), ["f-1"])
    decision = recovery(s, [drone(nest_id=7, flight_id="f-0"), drone(flight_id="f-1")])
    assert decision.action is Resume.FOLLOW and decision.nest_id == 3 and decision.flight_id == "f-1"
    assert "over the scene" in decision.reason
    en_route = stored_incident(row(["received", "dispatched", "airborne"]), ["f-1"])
    assert "on its way" in recovery(en_route, [drone(flight_id="f-1")]).reason


def test_a_launch_not_yet_recorded_with_the_incident_is_found_by_its_command() -> None:
    s = stored_incident(row(["received", "dispatched"]), [])
    decision = recovery(s, [drone(flight_id="f-9", command_id="inc-1.r1.4.launch.n3")])
    assert decision.action is Resume.FOLLOW and decision.flight_id == "f-9"
    other = recovery(s, [drone(flight_id="f-9", command_id="inc-10.1.launch.n3")])
    assert other.action is Resume.CLOSE


@pytest.mark.parametrize(
    ("now", "why"),
    [
        (drone(flight_id=None, phase=NestPhase.CHARGING, command_id=None), "no drone flies flight f-1"),
        (drone(flight_id="f-2", command_id="patrol-7.launch"), "no drone flies flight f-1"),
        (drone(phase=NestPhase.RETURNING), "left the scene (returning)"),
        (drone(phase=NestPhase.OFFLINE), "not reachable"),
    ],
)
def test_a_drone_gone_closes_the_incident(now: DroneNow, why: str) -> None:
    s = stored_incident(row(["received", "dispatched", "airborne", "on_scene"]), ["f-1"])
    decision = recovery(s, [now])
    assert decision.action is Resume.CLOSE and why in decision.reason


def test_a_failed_attempt_starts_over() -> None:
    s = stored_incident(row(["received", "dispatched", "airborne", "failed", "queued", "resumed"]), ["f-1"])
    assert [m.milestone.value for m in s.attempt] == ["queued", "resumed"]
    decision = recovery(s, [drone(flight_id="f-1")])
    assert decision.action is Resume.REPLAN  # the drone of the failed attempt is not its own any more
    assert s.times_resumed == 1
