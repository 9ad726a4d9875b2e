"""domain/dispatch/replay.py on rows with no incident (a flight's or a time range's, as
audit/evidence.collect_flight and collect_range gather them): no I/O, rows in, the replay out."""

from __future__ import annotations

from typing import Any

import pytest

from dronectl.domain.dispatch.replay import replay

T0 = 1_765_610_100.0


def _rows(subject: dict[str, Any]) -> dict[str, Any]:
    flight = {
        "flight_id": "f-9",
        "nest_id": 4,
        "started_at_unix_s": T0 + 1,
        "command_id": "go-9",
        "target_lat_deg": None,
        "target_lon_deg": None,
        "target_alt_m": None,
        "ended_at_unix_s": T0 + 9,
        "outcome": "completed",
        "note": None,
    }
    track = [
        {"at_unix_s": T0 + 2 + i, "lat_deg": 43.9, "lon_deg": 125.3 + i * 1e-3, "alt_m": 50.0,
         "speed_mps": 6.0, "battery_pct": 90.0}
        for i in range(3)
    ]  # fmt: skip
    events = [
        {"seq": 1, "at_unix_s": T0 + 2, "kind": "video_recording", "message": "video",
         "data": {"path": "/rec/nest04-f-9.mp4"}},
        {"seq": 2, "at_unix_s": T0 + 3, "kind": "incident.dispatched", "message": "go",
         "data": {"incident_id": "inc-elsewhere"}},
        {"seq": 3, "at_unix_s": T0 + 4, "kind": "lookout", "message": "ice", "data": {"snapshot_id": "s-1"}},
    ]  # fmt: skip
    launch = {
        "command_id": "go-9",
        "at_unix_s": T0,
        "actor_id": "pilot-1",
        "actor_role": "pilot",
        "nest_id": 4,
        "method": "launch",
        "args": {},
        "channel": "http",
        "outcomes": [{"seq": 1, "command_id": "go-9", "at_unix_s": T0, "outcome": "accepted", "code": None,
                      "message": None}],
    }  # fmt: skip
    return {
        "incident": None,
        "subject": subject,
        "window": {"since_unix_s": T0, "until_unix_s": T0 + 9.001},
        "flights": [{"flight": flight, "track": track, "events": events}],
        "commands": [launch],
        "transitions": [
            {"seq": 1, "nest_id": 4, "at_unix_s": T0 + 1, "from_state": "docked", "to_state": "launching",
             "cause": "launch"}
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    "subject",
    [
        {"kind": "flight", "flight_id": "f-9", "nest_id": 4},
        {"kind": "range", "since_unix_s": T0, "until_unix_s": T0 + 9.001},
    ],
)
def test_a_replay_with_no_incident(subject: dict[str, Any]) -> None:
    rows = _rows(subject)
    body = replay(rows, snapshot_url=lambda sid: f"/snapshots/{sid}.jpg", video_url=lambda _: None)
    assert body["subject"] == subject and body["subject"] is not subject  # a copy: JSON of its own
    assert body["incident"] is None
    assert body["milestones"] == []  # an incident.* event of some other incident is not one of these
    [launch] = body["commands"]  # with no incident, none is left out
    assert launch["actor"] == {"id": "pilot-1", "role": "pilot"} and launch["method"] == "launch"
    [flight] = body["flights"]
    assert [p["lon"] for p in flight["track"]] == pytest.approx([125.3, 125.301, 125.302])
    assert flight["track"][0]["heading_deg"] == pytest.approx(90.0, abs=0.1)  # flying east
    assert [t["to"] for t in body["transitions"]] == ["launching"]
    assert [e["kind"] for e in body["events"]] == ["video_recording", "incident.dispatched", "lookout"]
    assert [s["url"] for s in body["snapshots"]] == ["/snapshots/s-1.jpg"]
    assert body["videos"] == [
        {"flight_id": "f-9", "nest_id": 4, "name": "nest04-f-9.mp4", "started_at_unix_s": T0 + 2, "url": None}
    ]
    assert body["notes"] == ["recording of flight f-9: not found"]
    assert body["window"] == rows["window"]
