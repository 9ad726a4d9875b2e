"""An incident's audit rows, gathered once for everything made of them (issue 16): the evidence
package (``dronectl evidence export``, the page's export button) and the after-action replay.

Through the store's own queries: the incident (a ``commands`` row, method ``incident``, with
every outcome), the flights that carry its milestones with their track and events, and the
commands and transitions of those flights' nests between the incident's first and last moment.
"""

from __future__ import annotations

from typing import Any

from dronectl.audit.store import AuditStore
from dronectl.domain.evidence_timeline import UnknownIncidentError


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
