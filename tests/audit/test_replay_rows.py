"""A flight's and a time range's replay rows (dronectl/audit/evidence.py) on both backends: the
flights in the air at some moment of a range (open ones too), every nest's transitions, a
flight's window from the command that launched it to its end, and the ranges refused."""

from __future__ import annotations

import pytest

from dronectl.audit import (
    AuditStore,
    CommandOutcome,
    CommandRecord,
    FlightEnd,
    FlightOutcome,
    FlightStart,
    TrackSample,
    TransitionRecord,
)
from dronectl.audit.evidence import RANGE_MAX_FLIGHTS, collect_flight, collect_range
from dronectl.domain.evidence_timeline import ReplayRangeError, UnknownFlightError


def launch(command_id: str, at: float, nest_id: int) -> CommandRecord:
    return CommandRecord(command_id, at, "pilot-1", "pilot", nest_id, "launch", {}, CommandOutcome.ACCEPTED)


async def _flights(store: AuditStore) -> None:
    """f-early 10..20 (nest 1), f-mid 30..40 (nest 2), f-open from 50 (nest 3, not ended)."""
    for flight_id, nest, start, end in (
        ("f-early", 1, 10.0, 20.0),
        ("f-mid", 2, 30.0, 40.0),
        ("f-open", 3, 50.0, None),
    ):
        await store.record_command(launch(f"go-{flight_id}", start - 1, nest))
        await store.record_transition(TransitionRecord(nest, start, "docked", "launching", "launch"))
        await store.start_flight(FlightStart(flight_id, nest, start, f"go-{flight_id}"))
        await store.record_track(TrackSample(flight_id, start + 1, 43.9, 125.3, 60.0, 5.0, 90.0))
        if end is not None:
            await store.end_flight(FlightEnd(flight_id, end, FlightOutcome.COMPLETED))
    await store.record_command(launch("go-other-nest", 35.0, 1))


async def test_flights_between_are_those_in_the_air_in_the_range(location: str) -> None:
    async with await AuditStore.open(location) as store:
        await _flights(store)
        ids = [
            [f["flight_id"] for f in await store.flights_between(since, until)]
            for since, until in (
                (0.0, 10.0),
                (0.0, 10.5),
                (20.0, 30.0),
                (20.5, 30.0),
                (41.0, 1e9),
                (15.0, 60.0),
            )
        ]
        assert ids == [
            [],  # ends where f-early starts: [since, until)
            ["f-early"],
            ["f-early"],  # f-early ended at 20: in the air at 20
            [],
            ["f-open"],  # not ended: still in the air
            ["f-early", "f-mid", "f-open"],
        ]
        assert [f["flight_id"] for f in await store.flights_between(0.0, 1e9, limit=2)] == [
            "f-early",
            "f-mid",
        ]
        every = await store.transitions(None, since_unix_s=15.0, until_unix_s=51.0)
        assert [(t["nest_id"], t["at_unix_s"]) for t in every] == [(2, 30.0), (3, 50.0)]


async def test_a_flights_rows_run_from_its_launch_to_its_end(location: str) -> None:
    async with await AuditStore.open(location) as store:
        await _flights(store)
        rows = await collect_flight(store, "f-mid")
        with pytest.raises(UnknownFlightError, match="no flight 'nope'"):
            await collect_flight(store, "nope")
    assert rows["incident"] is None
    assert rows["subject"] == {"kind": "flight", "flight_id": "f-mid", "nest_id": 2}
    assert rows["window"] == {"since_unix_s": 29.0, "until_unix_s": pytest.approx(40.001)}
    assert [d["flight"]["flight_id"] for d in rows["flights"]] == ["f-mid"]
    assert [c["command_id"] for c in rows["commands"]] == ["go-f-mid"]  # not nest 1's at 35
    assert [(t["nest_id"], t["to_state"]) for t in rows["transitions"]] == [(2, "launching")]


async def test_a_ranges_rows_and_the_ranges_refused(location: str) -> None:
    async with await AuditStore.open(location) as store:
        await _flights(store)
        rows = await collect_range(store, 25.0, 45.0)
        assert rows["incident"] is None and rows["subject"] == {
            "kind": "range",
            "since_unix_s": 25.0,
            "until_unix_s": 45.0,
        }
        assert [d["flight"]["flight_id"] for d in rows["flights"]] == ["f-mid"]
        assert [c["command_id"] for c in rows["commands"]] == ["go-f-mid", "go-other-nest"]
        assert [t["nest_id"] for t in rows["transitions"]] == [2]
        for since, until, said in (
            (45.0, 25.0, "until must be after since"),
            (25.0, 25.0, "until must be after since"),
            (0.0, 24 * 3600 + 1.0, "at most 24 h"),
            (float("nan"), 1.0, "finite"),
        ):
            with pytest.raises(ReplayRangeError, match=said):
                await collect_range(store, since, until)
        for i in range(RANGE_MAX_FLIGHTS):
            await store.start_flight(FlightStart(f"busy-{i}", 4, 100.0 + i))
        with pytest.raises(ReplayRangeError, match=f"more than {RANGE_MAX_FLIGHTS} flights"):
            await collect_range(store, 0.0, 3600.0)
