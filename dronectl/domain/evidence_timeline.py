"""What an incident's audit rows say, read without I/O (issue 16): the timeline the evidence
package writes, the snapshots and recordings its flights' events name. Shared by the package
(``dronectl evidence export``, the page's export) and the after-action replay (domain/dispatch/replay.py).

``rows`` is what :func:`dronectl.audit.evidence.collect` returns: the incident (a ``commands``
row), its window, its flights with track and events, the commands and transitions of its nests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dronectl.domain.errors import DronectlError


class EvidenceError(DronectlError):
    """Bad input for an export or a verification, in words."""


class UnknownIncidentError(EvidenceError):
    """No incident of that id in the audit store."""


class UnknownFlightError(EvidenceError):
    """No flight of that id in the audit store."""


class ReplayRangeError(EvidenceError):
    """A time range that cannot be replayed: reversed, empty, too long, or too busy."""


def timeline(rows: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything in the rows, one entry per fact, in time order."""
    out: list[dict[str, Any]] = []
    for c in rows["commands"]:
        out.append(
            {
                "at_unix_s": c["at_unix_s"],
                "what": "command",
                "nest_id": c["nest_id"],
                "method": c["method"],
                "actor": {"id": c["actor_id"], "role": c["actor_role"]},
                "command_id": c["command_id"],
                "args": c["args"],
            }
        )
        for o in c["outcomes"]:
            out.append(
                {
                    "at_unix_s": o["at_unix_s"],
                    "what": "outcome",
                    "command_id": c["command_id"],
                    "outcome": o["outcome"],
                    "code": o["code"],
                    "message": o["message"],
                }
            )
    for t in rows["transitions"]:
        out.append({"at_unix_s": t["at_unix_s"], "what": "transition", **t})
    for d in rows["flights"]:
        f = d["flight"]
        for e in d["events"]:
            out.append(
                {
                    "at_unix_s": e["at_unix_s"],
                    "what": "event",
                    "flight_id": f["flight_id"],
                    "nest_id": f["nest_id"],
                    **e,
                }
            )
    return sorted(out, key=lambda e: e["at_unix_s"])


def snapshot_ids(rows: Mapping[str, Any]) -> list[str]:
    """Every snapshot a flight event names (``data.snapshot_id``), sorted, once each."""
    ids = [(e["data"] or {}).get("snapshot_id") for d in rows["flights"] for e in d["events"]]
    return sorted({i for i in ids if isinstance(i, str) and "/" not in i and i})


def recordings(rows: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(flight, recorded path, when its first picture was written) of every recording: the
    recording's second 0 is taken as the time of its ``video_recording`` event."""
    found = []
    for d in rows["flights"]:
        for e in d["events"]:
            path = (e["data"] or {}).get("path")
            if e["kind"] == "video_recording" and isinstance(path, str):
                found.append((d["flight"]["flight_id"], path, e["at_unix_s"]))
    return list(dict.fromkeys(found))
