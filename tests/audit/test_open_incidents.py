"""The incidents a restart must pick up: recorded, no final outcome; and the flights that carry
an incident's milestones."""

from __future__ import annotations

from dronectl.audit import (
    AuditStore,
    CommandOutcome,
    CommandRecord,
    FlightEvent,
    FlightStart,
    OutcomeRecord,
)


def incident(command_id: str, at_unix_s: float, method: str = "incident") -> CommandRecord:
    return CommandRecord(
        command_id=command_id,
        at_unix_s=at_unix_s,
        actor_id="cc-1",
        actor_role="commander",
        nest_id=None,
        method=method,
        args={"kind": "accident", "priority": 2},
        outcome=CommandOutcome.ACCEPTED,
        code="received",
    )


async def test_open_incidents_are_those_without_a_final_outcome(location: str) -> None:
    async with await AuditStore.open(location) as store:
        await store.record_command(incident("inc-closed", 1.0))
        await store.record_command(incident("inc-queued", 2.0))
        await store.record_command(incident("inc-flying", 3.0))
        await store.record_command(incident("not-an-incident", 4.0, method="launch"))
        await store.record_outcome(OutcomeRecord("inc-closed", 5.0, CommandOutcome.IN_PROGRESS, "on_scene"))
        await store.record_outcome(OutcomeRecord("inc-closed", 6.0, CommandOutcome.SUCCEEDED, "closed"))
        await store.record_outcome(OutcomeRecord("inc-queued", 5.0, CommandOutcome.IN_PROGRESS, "queued"))
        await store.record_outcome(OutcomeRecord("inc-flying", 5.0, CommandOutcome.IN_PROGRESS, "dispatched"))
        await store.record_outcome(OutcomeRecord("inc-flying", 6.0, CommandOutcome.IN_PROGRESS, "failed"))

        rows = await store.open_incidents()

    assert [r["command_id"] for r in rows] == ["inc-queued", "inc-flying"]
    assert [o["code"] for o in rows[1]["outcomes"]] == ["received", "dispatched", "failed"]
    assert rows[0]["args"] == {"kind": "accident", "priority": 2} and rows[0]["actor_id"] == "cc-1"


async def test_incident_flights_in_the_order_first_used(location: str) -> None:
    async with await AuditStore.open(location) as store:
        for flight_id, nest_id in (("f-a", 3), ("f-b", 5)):
            await store.start_flight(FlightStart(flight_id, nest_id, 1.0))
        await store.record_event(FlightEvent("f-a", 2.0, "incident.airborne", "", {"incident_id": "inc-1"}))
        await store.record_event(FlightEvent("f-a", 3.0, "on_station", "", {"incident_id": "inc-1"}))
        await store.record_event(FlightEvent("f-b", 4.0, "incident.airborne", "", {"incident_id": "inc-2"}))
        await store.record_event(FlightEvent("f-b", 5.0, "incident.dispatched", "", {"incident_id": "inc-1"}))
        await store.record_event(FlightEvent("f-a", 6.0, "incident.closed", "", {"incident_id": "inc-1"}))

        assert await store.incident_flights("inc-1") == ["f-a", "f-b"]
        assert await store.incident_flights("inc-2") == ["f-b"]
        assert await store.incident_flights("inc-3") == []


async def test_open_commands_of_a_nest_are_those_without_a_final_outcome(location: str) -> None:
    async with await AuditStore.open(location) as store:
        for command_id, nest_id, method in (
            ("done", 3, "launch"),
            ("running", 3, "orbit"),
            ("other-nest", 4, "hold"),
            ("inc", 3, "incident"),
        ):
            await store.record_command(
                CommandRecord(command_id, 1.0, "a", "pilot", nest_id, method, {}, CommandOutcome.ACCEPTED)
            )
        await store.record_outcome(OutcomeRecord("done", 2.0, CommandOutcome.SUCCEEDED))
        await store.record_outcome(OutcomeRecord("running", 2.0, CommandOutcome.IN_PROGRESS, "circling"))
        assert [r["command_id"] for r in await store.open_commands(3)] == ["running"]
        await store.record_outcome(OutcomeRecord("running", 3.0, CommandOutcome.FAILED, "interrupted"))
        assert await store.open_commands(3) == []
