"""Audit rows gathered once for everything made of them (issue 16): an incident's for the
evidence package (``dronectl evidence export``, the page's export button) and the after-action
replay; a flight's and a time range's for the replay alone.

Through the store's own queries. An incident (:func:`collect`): the ``commands`` row, method
``incident``, with every outcome, the flights that carry its milestones with their track and
events, and the commands and transitions of those flights' nests between the incident's first
and last moment. A flight (:func:`collect_flight`): its track and events, the command that
launched it, and its nest's commands and transitions from that command to the flight's end. A
range (:func:`collect_range`): every flight in the air at some moment of it (whole), and every
command and transition recorded in it; at most :data:`RANGE_MAX_S` long, with at most
:data:`RANGE_MAX_FLIGHTS` flights and :data:`RANGE_MAX_COMMANDS` commands (ReplayRangeError
beyond: a shorter range then).

The rows are one shape: ``incident`` (None for a flight or a range), ``subject`` (for a flight
or a range: what was asked for), ``window``, ``flights``, ``commands``, ``transitions``.
"""

from __future__ import annotations

import math
from typing import Any

from dronectl.audit.rows import FlightDetail
from dronectl.audit.store import AuditStore
from dronectl.domain.evidence_timeline import ReplayRangeError, UnknownFlightError, UnknownIncidentError

RANGE_MAX_S = 24 * 3600.0
RANGE_MAX_FLIGHTS = 50
RANGE_MAX_COMMANDS = 5000


async def collect(store: AuditStore, incident_id: str) -> dict[str, Any]:
    """The audit rows an incident's package is made of (UnknownIncidentError for an unknown one)."""
    incident = await store.command(incident_id)
    if incident is None or incident["method"] != "incident":
        raise UnknownIncidentError(f"no incident {incident_id!r} in the audit store")
    flights = [
        d for f in await store.incident_flights(incident_id) if (d := await store.flight(f)) is not None
    ]
    times = [incident["at_unix_s"], *(o["at_unix_s"] for o in incident["outcomes"])]
    for d in flights:
        times += [d["flight"]["started_at_unix_s"], *(e["at_unix_s"] for e in d["events"])]
        if d["flight"]["ended_at_unix_s"] is not None:
            times.append(d["flight"]["ended_at_unix_s"])
    since, until = min(times), max(times) + 0.001
    nests = sorted({d["flight"]["nest_id"] for d in flights})
    commands = [incident]
    transitions = []
    for nest in nests:
        commands += await store.commands(nest_id=nest, since_unix_s=since, until_unix_s=until)
        transitions += await store.transitions(nest, since_unix_s=since, until_unix_s=until)
    return {
        "incident": incident,
        "window": {"since_unix_s": since, "until_unix_s": until},
        "flights": flights,
        "commands": commands,
        "transitions": transitions,
    }


def _flight_times(d: FlightDetail) -> list[float]:
    """Every moment a flight's rows name: its start, end, track and events."""
    times = [d["flight"]["started_at_unix_s"], *(e["at_unix_s"] for e in d["events"])]
    times += [p["at_unix_s"] for p in d["track"]]
    if d["flight"]["ended_at_unix_s"] is not None:
        times.append(d["flight"]["ended_at_unix_s"])
    return times


async def collect_flight(store: AuditStore, flight_id: str) -> dict[str, Any]:
    """A flight's replay rows (UnknownFlightError for an unknown one)."""
    detail = await store.flight(flight_id)
    if detail is None:
        raise UnknownFlightError(f"no flight {flight_id!r} in the audit store")
    flight = detail["flight"]
    times = _flight_times(detail)
    launch = await store.command(flight["command_id"]) if flight["command_id"] else None
    if launch is not None:
        times.append(launch["at_unix_s"])  # who sent it up, and when
    since, until = min(times), max(times) + 0.001
    nest = flight["nest_id"]
    return {
        "incident": None,
        "subject": {"kind": "flight", "flight_id": flight_id, "nest_id": nest},
        "window": {"since_unix_s": since, "until_unix_s": until},
        "flights": [detail],
        "commands": await store.commands(
            nest_id=nest, since_unix_s=since, until_unix_s=until, limit=RANGE_MAX_COMMANDS
        ),
        "transitions": await store.transitions(nest, since_unix_s=since, until_unix_s=until),
    }


async def collect_range(store: AuditStore, since_unix_s: float, until_unix_s: float) -> dict[str, Any]:
    """The replay rows of [since, until) (ReplayRangeError for a range it will not replay)."""
    if not (math.isfinite(since_unix_s) and math.isfinite(until_unix_s)):
        raise ReplayRangeError("since and until: finite times")
    if until_unix_s <= since_unix_s:
        raise ReplayRangeError("until must be after since")
    if until_unix_s - since_unix_s > RANGE_MAX_S:
        raise ReplayRangeError(f"a range of at most {RANGE_MAX_S / 3600:g} h; choose a shorter one")
    rows = await store.flights_between(since_unix_s, until_unix_s, limit=RANGE_MAX_FLIGHTS + 1)
    if len(rows) > RANGE_MAX_FLIGHTS:
        raise ReplayRangeError(f"more than {RANGE_MAX_FLIGHTS} flights in that range; choose a shorter one")
    commands = await store.commands(
        since_unix_s=since_unix_s, until_unix_s=until_unix_s, limit=RANGE_MAX_COMMANDS + 1
    )
    if len(commands) > RANGE_MAX_COMMANDS:
        raise ReplayRangeError(f"more than {RANGE_MAX_COMMANDS} commands in that range; choose a shorter one")
    flights = [d for r in rows if (d := await store.flight(r["flight_id"])) is not None]
    return {
        "incident": None,
        "subject": {"kind": "range", "since_unix_s": since_unix_s, "until_unix_s": until_unix_s},
        "window": {"since_unix_s": since_unix_s, "until_unix_s": until_unix_s},
        "flights": flights,
        "commands": commands,
        "transitions": await store.transitions(None, since_unix_s=since_unix_s, until_unix_s=until_unix_s),
    }
