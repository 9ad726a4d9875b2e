"""Losing PostgreSQL mid-flight: new commands are refused with a clear error, the flight's facts
wait in the local spool (nothing lost, the nest never sees an error) and reach the database in
their order when it is back -- also after a restart of the instance during the outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dronectl.audit import (
    AuditStore,
    AuditUnavailableError,
    CommandOutcome,
    CommandRecord,
    FlightEnd,
    FlightEvent,
    FlightOutcome,
    FlightStart,
    LoginFailureRecord,
    OutcomeRecord,
    TrackSample,
    TransitionRecord,
)
from tests.pg import allow_connections, query, terminate_connections

T0 = 1_760_000_000.0


def cmd(command_id: str) -> CommandRecord:
    return CommandRecord(command_id, T0, "alice", "pilot", 3, "launch", {}, CommandOutcome.ACCEPTED)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@contextmanager
def outage(url: str) -> Iterator[None]:
    allow_connections(url, False)
    terminate_connections(url)
    try:
        yield
    finally:
        allow_connections(url, True)


async def fly_through_outage(store: AuditStore) -> None:
    """What a nest records while the database is away: none of it may raise."""
    await store.record_transition(TransitionRecord(3, T0 + 10, "en_route", "on_station", "arrived"))
    for i in range(3):
        await store.record_track(TrackSample("f1", T0 + 11 + i, 43.9, 125.3, 300.0 + i, 5.0, 80.0 - i))
    await store.record_event(FlightEvent("f1", T0 + 14, "returning", "battery", {"battery_pct": 30}))
    await store.record_outcome(OutcomeRecord("c1", T0 + 15, CommandOutcome.SUCCEEDED, message="done"))
    await store.end_flight(FlightEnd("f1", T0 + 20, FlightOutcome.COMPLETED, "landed in the dock"))
    await store.record_login_failure(
        LoginFailureRecord(T0 + 21, "http", "x", "10.0.0.9", "wrong password", 3)
    )


def stored(url: str) -> dict[str, list[tuple[object, ...]]]:
    return {
        "transitions": query(url, "SELECT to_state FROM transitions ORDER BY seq"),
        "track": query(url, "SELECT alt_m FROM track ORDER BY seq"),
        "events": query(url, "SELECT kind FROM flight_events ORDER BY seq"),
        "outcomes": query(url, "SELECT outcome FROM command_outcomes WHERE command_id = 'c1' ORDER BY seq"),
        "ends": query(url, "SELECT outcome FROM flight_ends"),
        "logins": query(url, "SELECT user_name, attempts FROM login_failures"),
    }


EXPECTED = {
    "transitions": [("en_route",), ("on_station",)],
    "track": [(300.0,), (301.0,), (302.0,)],
    "events": [("returning",)],
    "outcomes": [("accepted",), ("succeeded",)],
    "ends": [("completed",)],
    "logins": [("x", 3)],
}


async def begin(store: AuditStore) -> None:
    await store.record_command(cmd("c1"))
    await store.start_flight(FlightStart("f1", 3, T0, command_id="c1"))
    await store.record_transition(TransitionRecord(3, T0 + 1, "launching", "en_route", "climbed"))


async def test_flight_facts_wait_in_the_spool_and_commands_are_refused(pg_url: str, tmp_path: Path) -> None:
    async with await AuditStore.open(pg_url, spool_path=tmp_path / "spool.sqlite3") as store:
        await begin(store)
        with outage(pg_url):
            with pytest.raises(AuditUnavailableError, match="unreachable"):
                await store.record_command(cmd("c2"))  # a new command: refused, nothing can be audited
            await fly_through_outage(store)
            assert store.spooled == 8
            assert query(pg_url.rsplit("/", 1)[0] + "/postgres", "SELECT 1") == [(1,)]  # the server is up
        await wait_for(lambda: store.spooled == 0)
        assert stored(pg_url) == EXPECTED
        assert query(pg_url, "SELECT count(*) FROM spool_applied") == [(8,)]
        assert await store.command("c2") is None
        await store.record_command(cmd("c3"))  # and commands are taken again


async def test_what_was_spooled_before_a_restart_reaches_the_database(pg_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite3"
    async with await AuditStore.open(pg_url, spool_path=spool) as store:
        await begin(store)
        with outage(pg_url):
            await fly_through_outage(store)
            assert store.spooled == 8
        # closed (the instance stops) before the replay could run: the records stay on disk
    async with await AuditStore.open(pg_url, spool_path=spool) as store:
        await wait_for(lambda: store.spooled == 0)
    assert stored(pg_url) == EXPECTED
