"""After the incident over HTTP (dronectl/transports/web/replay.py): the incidents listed, one
incident's replay as JSON (its shape, from the audit store the service writes), the recordings
with byte ranges, the evidence package for a commander (audited with the user as actor); an
unknown incident is a 404 that says so, a role that may not is refused. The flights listed, a
flight's and a time range's replay (no incident, its subject said); an unknown flight a 404, a
malformed, reversed or too long range a 400 that says why."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime

import pytest

from dronectl.domain.evidence import verify
from dronectl.operations.models import Role
from tests.evidence.test_evidence_package import T0, record_incident
from tests.web.conftest import Web

SNAPSHOT = "ice-n07-20251213T071502Z-3f9a1c"


@pytest.fixture
async def incident(web_api: Web) -> Web:
    await record_incident(web_api.audit, web_api.recordings, web_api.snapshots)
    return web_api


async def _get(web: Web, path: str, role: Role = Role.OBSERVER) -> tuple[int, object]:
    async with web.client.get(path, headers=web.headers(role)) as res:
        text = await res.text()
        return res.status, json.loads(text) if res.content_type == "application/json" else text


async def test_the_replay_of_an_incident(incident: Web) -> None:
    status, body = await _get(incident, "/api/incidents/inc-1/replay")
    assert status == 200 and isinstance(body, dict)
    assert set(body) == {
        "incident", "window", "flights", "transitions", "commands", "events", "milestones",
        "snapshots", "videos", "notes",
    }  # fmt: skip
    assert body["incident"]["id"] == "inc-1" and body["incident"]["actor"] == {
        "id": "cc-1",
        "role": "commander",
    }
    assert body["window"]["since_unix_s"] == T0
    [flight] = body["flights"]
    assert (flight["flight_id"], flight["nest_id"], len(flight["track"])) == ("f-1", 7, 5)
    first = flight["track"][0]
    assert set(first) == {"at_unix_s", "lat", "lon", "alt_m", "speed_mps", "heading_deg"}
    assert (first["at_unix_s"], first["lat"], first["lon"], first["alt_m"]) == (T0 + 2, 43.86, 125.3, 260.0)
    assert first["heading_deg"] == pytest.approx(0.0, abs=0.1)  # flying north: its course
    assert body["transitions"] == [
        {"at_unix_s": T0 + 2, "nest_id": 7, "from": "docked", "to": "launching", "cause": "launch"}
    ]
    [launch] = body["commands"]  # the incident itself is "incident", not a command
    assert launch["method"] == "launch" and launch["actor"] == {"id": "dispatcher", "role": "automation"}
    assert [o["outcome"] for o in launch["outcomes"]] == ["accepted", "succeeded"]
    assert [e["kind"] for e in body["events"]] == [
        "video_recording",
        "incident.dispatched",
        "ground_units.request",
    ]
    assert [(m["milestone"], m["elapsed_s"]) for m in body["milestones"]] == [
        ("received", 0.0),
        ("closed", 12.0),
    ]
    assert body["snapshots"] == [
        {
            "at_unix_s": T0 + 9,
            "id": SNAPSHOT,
            "url": f"/snapshots/{SNAPSHOT}.jpg",
            "flight_id": "f-1",
            "nest_id": 7,
            "message": "ice",
        }
    ]
    assert body["videos"] == [
        {
            "flight_id": "f-1",
            "nest_id": 7,
            "name": "nest07-f-1.mp4",
            "started_at_unix_s": T0 + 3,
            "url": "/recordings/nest07-f-1.mp4",
        }
    ]
    assert body["notes"] == []
    status, listed = await _get(incident, "/api/incidents")
    assert status == 200 and isinstance(listed, dict)
    assert [(i["id"], i["kind"], i["state"]) for i in listed["incidents"]] == [
        ("inc-1", "accident", "closed")
    ]


async def test_the_recordings_are_served_with_byte_ranges(incident: Web) -> None:
    whole = (incident.recordings / "nest07-f-1.mp4").read_bytes()
    headers = {**incident.headers(Role.OBSERVER), "Range": "bytes=100-199"}
    async with incident.client.get("/recordings/nest07-f-1.mp4", headers=headers) as res:
        assert res.status == 206 and res.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
        assert await res.read() == whole[100:200]
    for name in ("nope.mp4", "..%2Faudit.sqlite3", "nest07-f-1.txt"):
        status, _ = await _get(incident, f"/recordings/{name}")
        assert status == 404, name
    async with incident.client.get("/recordings/nest07-f-1.mp4") as res:
        assert res.status == 401  # no token, no video


async def test_an_unknown_incident_is_a_404_that_says_so(incident: Web) -> None:
    status, body = await _get(incident, "/api/incidents/no-such/replay")
    assert status == 404
    assert body == {"error": "unknown_incident", "message": "no incident 'no-such' in the audit store"}
    async with incident.client.post(
        "/api/incidents/no-such/evidence", headers=incident.headers(Role.COMMANDER)
    ) as res:
        assert res.status == 404


@pytest.mark.parametrize("role", [Role.AUTOMATION, Role.REPORTER])
async def test_roles_outside_the_command_center_may_not_replay(incident: Web, role: Role) -> None:
    for path in ("/api/incidents", "/api/incidents/inc-1/replay", "/recordings/nest07-f-1.mp4"):
        status, text = await _get(incident, path, role)
        assert status == 403 and f"role {role.value} may not replay.view" in str(text), path


@pytest.mark.parametrize("role", [Role.OBSERVER, Role.PILOT])
async def test_only_a_commander_exports_evidence(incident: Web, role: Role) -> None:
    async with incident.client.post("/api/incidents/inc-1/evidence", headers=incident.headers(role)) as res:
        assert res.status == 403
        assert "may not evidence.export (allowed: commander)" in await res.text()
    assert [c for c in await incident.audit.commands() if c["method"] == "evidence.export"] == []


async def test_a_commander_exports_the_package_and_the_export_is_audited(incident: Web) -> None:
    async with incident.client.post(
        "/api/incidents/inc-1/evidence", headers=incident.headers(Role.COMMANDER)
    ) as res:
        assert res.status == 200 and res.content_type == "application/zip"
        assert res.headers["Content-Disposition"] == 'attachment; filename="evidence-inc-1.zip"'
        data = await res.read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    assert verify(files, "audit/rows.json").intact
    assert {"video/nest07-f-1.mp4", f"snapshots/{SNAPSHOT}.jpg", "report.html"} <= set(files)
    [record] = [c for c in await incident.audit.commands() if c["method"] == "evidence.export"]
    assert (record["actor_id"], record["actor_role"], record["channel"]) == (
        "commander-1",
        "commander",
        "http",
    )
    assert record["args"]["incident_id"] == "inc-1" and record["args"]["file"] == "evidence-inc-1.zip"
    assert record["args"]["manifest_sha256"] == res.headers["X-Manifest-SHA256"]


async def test_the_page_greys_the_export_button_except_for_a_commander(web_api: Web) -> None:
    for role, allowed in ((Role.COMMANDER, True), (Role.PILOT, False), (Role.OBSERVER, False)):
        async with web_api.client.get("/api/me", headers=web_api.headers(role)) as res:
            assert ("evidence.export" in (await res.json())["methods"]) is allowed


# --- a flight's and a time range's replay ---------------------------------------------------------


async def test_the_flights_listed_and_one_flights_replay(incident: Web) -> None:
    status, listed = await _get(incident, "/api/flights?limit=5")
    assert status == 200 and listed == {
        "flights": [
            {"id": "f-1", "nest_id": 7, "started_at_unix_s": T0 + 2, "ended_at_unix_s": T0 + 20,
             "outcome": "completed"}
        ]
    }  # fmt: skip
    status, body = await _get(incident, "/api/flights/f-1/replay", Role.PILOT)
    assert status == 200 and isinstance(body, dict)
    assert body["subject"] == {"kind": "flight", "flight_id": "f-1", "nest_id": 7}
    assert body["incident"] is None and body["milestones"] == []
    # from the command that launched it (T0 + 1) to the flight's end
    assert body["window"] == {"since_unix_s": T0 + 1, "until_unix_s": pytest.approx(T0 + 20.001)}
    [flight] = body["flights"]
    assert flight["flight_id"] == "f-1" and len(flight["track"]) == 5
    [launch] = body["commands"]  # the incident has no nest: not the nest's command
    assert launch["method"] == "launch" and launch["actor"] == {"id": "dispatcher", "role": "automation"}
    assert [t["to"] for t in body["transitions"]] == ["launching"]
    assert [v["url"] for v in body["videos"]] == ["/recordings/nest07-f-1.mp4"]
    assert [s["id"] for s in body["snapshots"]] == [SNAPSHOT] and body["notes"] == []


async def test_an_unknown_flight_is_a_404_that_says_so(incident: Web) -> None:
    status, body = await _get(incident, "/api/flights/no-such/replay")
    assert status == 404
    assert body == {"error": "unknown_flight", "message": "no flight 'no-such' in the audit store"}
    status, body = await _get(incident, "/api/flights?limit=many")
    assert status == 400 and isinstance(body, dict) and body["error"] == "bad_limit"


@pytest.mark.parametrize(
    "query",
    [
        f"since={T0}&until={T0 + 30}",  # Unix seconds
        "since=2025-12-13T15:15:00%2B08:00&until=2025-12-13T07:15:30Z",  # ISO 8601, two offsets
    ],
)
async def test_a_time_ranges_replay(incident: Web, query: str) -> None:
    assert datetime.fromisoformat("2025-12-13T07:15:00Z").timestamp() == T0
    status, body = await _get(incident, f"/api/replay?{query}")
    assert status == 200 and isinstance(body, dict), body
    assert body["subject"] == {"kind": "range", "since_unix_s": T0, "until_unix_s": T0 + 30}
    assert body["window"] == {"since_unix_s": T0, "until_unix_s": T0 + 30}
    assert body["incident"] is None and body["milestones"] == []
    assert [f["flight_id"] for f in body["flights"]] == ["f-1"]
    # every command in the range, the incident too (a command of no nest)
    assert [(c["method"], c["actor"]["id"]) for c in body["commands"]] == [
        ("incident", "cc-1"),
        ("launch", "dispatcher"),
    ]
    assert [t["nest_id"] for t in body["transitions"]] == [7]
    assert [v["url"] for v in body["videos"]] == ["/recordings/nest07-f-1.mp4"]


async def test_a_range_with_no_flight_is_an_empty_replay(incident: Web) -> None:
    status, body = await _get(incident, f"/api/replay?since={T0 + 100}&until={T0 + 200}")
    assert status == 200 and isinstance(body, dict)
    assert (body["flights"], body["commands"], body["transitions"], body["videos"]) == ([], [], [], [])


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("", "since: missing"),
        (f"since={T0}", "until: missing"),
        ("since=yesterday&until=1", "since: 'yesterday' is not ISO 8601 nor Unix seconds"),
        ("since=2025-12-13T07:15:00&until=2025-12-13T08:15:00Z", "has no UTC offset"),
        (f"since={T0}&until=nan", "until: 'nan' is not a time"),
        (f"since={T0 + 30}&until={T0}", "until must be after since"),
        (f"since={T0}&until={T0 + 24 * 3600 + 1}", "a range of at most 24 h"),
    ],
)
async def test_a_bad_range_is_a_400_that_says_why(incident: Web, query: str, said: str) -> None:
    status, body = await _get(incident, f"/api/replay?{query}")
    assert status == 400 and isinstance(body, dict), body
    assert body["error"] == "bad_range" and said in body["message"], body


@pytest.mark.parametrize("role", [Role.AUTOMATION, Role.REPORTER])
async def test_roles_outside_the_command_center_may_not_replay_a_flight_or_a_range(
    incident: Web, role: Role
) -> None:
    for path in ("/api/flights", "/api/flights/f-1/replay", f"/api/replay?since={T0}&until={T0 + 30}"):
        status, text = await _get(incident, path, role)
        assert status == 403 and f"role {role.value} may not replay.view" in str(text), path
        async with incident.client.get(path) as res:
            assert res.status == 401, path  # no token
