"""The after-action replay (issue 16) of an incident, a flight or a time range, as the
command-center page plays it: what the audit rows (audit/evidence.py, the evidence package's own
gathering) say, arranged on one clock. Pure: rows in, a JSON-ready dict out; where the pictures
and recordings are fetched from is the caller's (``snapshot_url``, ``video_url``).

An incident's replay names the incident (``incident``) and its milestones. A flight's or a
range's has ``incident`` None, no milestones, and says what it is in ``subject``: ``{"kind":
"flight", "flight_id", "nest_id"}`` or ``{"kind": "range", "since_unix_s", "until_unix_s"}``.

Times are Unix seconds. A track point's heading is its course over the ground (the bearing to
the next point; the last point keeps the one before): the audit store records positions, not
the drone's yaw. A recording's second 0 is the time of its ``video_recording`` event, as in the
evidence package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

from dronectl.domain.dispatch.milestones import Milestone
from dronectl.domain.evidence_timeline import recordings
from dronectl.domain.geo import GeoPoint, bearing_deg

MILESTONES = frozenset(m.value for m in Milestone)


def track(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A flight's track rows as replay points: time, position, altitude and course."""
    points = [
        {
            "at_unix_s": s["at_unix_s"],
            "lat": s["lat_deg"],
            "lon": s["lon_deg"],
            "alt_m": s["alt_m"],
            "speed_mps": s["speed_mps"],
            "heading_deg": None,
        }
        for s in samples
    ]
    heading: float | None = None
    for i, p in enumerate(points):
        nxt = points[i + 1] if i + 1 < len(points) else None
        if nxt is not None and (nxt["lat"], nxt["lon"]) != (p["lat"], p["lon"]):
            heading = round(bearing_deg(GeoPoint(p["lat"], p["lon"]), GeoPoint(nxt["lat"], nxt["lon"])), 1)
        p["heading_deg"] = heading  # hovering, or the last point: the course it last had
    return points


def _incident(row: Mapping[str, Any]) -> dict[str, Any]:
    args = row["args"] or {}
    position = args.get("position") if isinstance(args.get("position"), dict) else None
    return {
        "id": row["command_id"],
        "at_unix_s": row["at_unix_s"],
        "actor": {"id": row["actor_id"], "role": row["actor_role"]},
        "kind": args.get("kind"),
        "priority": args.get("priority"),
        "text": args.get("text"),
        "position": {"lat": position["lat"], "lon": position["lon"]} if position else None,
    }


def _outcomes(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"at_unix_s": o["at_unix_s"], "outcome": o["outcome"], "code": o["code"], "message": o["message"]}
        for o in row["outcomes"]
    ]


def _milestones(rows: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each milestone the incident reached (its outcomes), against its 1-3-5 target when the
    flight's event recorded one."""
    incident = rows["incident"]
    measured: dict[str, Mapping[str, Any]] = {}
    for d in rows["flights"]:
        for e in d["events"]:
            data = e["data"] or {}
            if e["kind"].startswith("incident.") and data.get("incident_id") == incident["command_id"]:
                measured.setdefault(e["kind"].removeprefix("incident."), data)
    out = []
    for o in incident["outcomes"]:
        if o["code"] not in MILESTONES:
            continue
        data = measured.get(o["code"], {})
        out.append(
            {
                "at_unix_s": o["at_unix_s"],
                "milestone": o["code"],
                "outcome": o["outcome"],
                "message": o["message"],
                "elapsed_s": data.get("elapsed_s", round(o["at_unix_s"] - incident["at_unix_s"], 3)),
                "target_s": data.get("target_s"),
                "met": data.get("met"),
            }
        )
    return out


def replay(
    rows: Mapping[str, Any],
    *,
    snapshot_url: Callable[[str], str | None],
    video_url: Callable[[str], str | None],
) -> dict[str, Any]:
    """The replay of the incident, flight or range in ``rows``. ``snapshot_url(id)``,
    ``video_url(recorded path)``: where the page fetches them, None when the file is not there
    (then said in ``notes``)."""
    incident = rows["incident"]
    incident_id = incident["command_id"] if incident is not None else None
    nest_of = {d["flight"]["flight_id"]: d["flight"]["nest_id"] for d in rows["flights"]}
    events = [
        {
            "at_unix_s": e["at_unix_s"],
            "flight_id": d["flight"]["flight_id"],
            "nest_id": d["flight"]["nest_id"],
            "kind": e["kind"],
            "message": e["message"],
            "data": e["data"],
        }
        for d in rows["flights"]
        for e in d["events"]
    ]
    events.sort(key=lambda e: e["at_unix_s"])
    notes: list[str] = []
    snapshots = []
    for e in events:
        sid = (e["data"] or {}).get("snapshot_id")
        if isinstance(sid, str) and sid and "/" not in sid:
            url = snapshot_url(sid)
            if url is None:
                notes.append(f"snapshot {sid}: not found")
            snapshots.append(
                {
                    "at_unix_s": e["at_unix_s"],
                    "id": sid,
                    "url": url,
                    "flight_id": e["flight_id"],
                    "nest_id": e["nest_id"],
                    "message": e["message"],
                }
            )
    videos = []
    for flight_id, recorded, started_unix_s in recordings(rows):
        url = video_url(recorded)
        if url is None:
            notes.append(f"recording of flight {flight_id}: not found")
        videos.append(
            {
                "flight_id": flight_id,
                "nest_id": nest_of.get(flight_id),
                "name": PurePath(recorded).name,
                "started_at_unix_s": started_unix_s,
                "url": url,
            }
        )
    out: dict[str, Any] = {} if incident is not None else {"subject": dict(rows["subject"])}
    return out | {
        "incident": _incident(incident) if incident is not None else None,
        "window": dict(rows["window"]),
        "flights": [
            {
                "flight_id": d["flight"]["flight_id"],
                "nest_id": d["flight"]["nest_id"],
                "started_at_unix_s": d["flight"]["started_at_unix_s"],
                "ended_at_unix_s": d["flight"]["ended_at_unix_s"],
                "outcome": d["flight"]["outcome"],
                "track": track(d["track"]),
            }
            for d in rows["flights"]
        ],
        "transitions": [
            {
                "at_unix_s": t["at_unix_s"],
                "nest_id": t["nest_id"],
                "from": t["from_state"],
                "to": t["to_state"],
                "cause": t["cause"],
            }
            for t in rows["transitions"]
        ],
        "commands": [
            {
                "at_unix_s": c["at_unix_s"],
                "command_id": c["command_id"],
                "nest_id": c["nest_id"],
                "method": c["method"],
                "actor": {"id": c["actor_id"], "role": c["actor_role"]},
                "channel": c["channel"],
                "args": c["args"],
                "outcomes": _outcomes(c),
            }
            for c in rows["commands"]
            if c["command_id"] != incident_id
        ],
        "events": events,
        "milestones": _milestones(rows) if incident is not None else [],
        "snapshots": snapshots,
        "videos": videos,
        "notes": notes,
    }
