"""``dronectl evidence`` end to end on a real SQLite audit store written through the store's own
record functions: export then verify passes; one byte altered in any file of the zip makes
verify fail and name it; an unknown incident, a missing store, a non-zip are clear errors with
nothing written; the export is itself recorded in the audit store."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import zipfile
from pathlib import Path

import pytest

from dronectl.app.cli import main
from dronectl.audit import (
    AuditStore,
    CommandOutcome,
    CommandRecord,
    FlightEnd,
    FlightEvent,
    FlightOutcome,
    FlightStart,
    OutcomeRecord,
    TrackSample,
    TransitionRecord,
)
from tests.video.test_clip import write_recording

T0 = 1_765_610_100.0


async def _incident(db: Path, recordings: Path, snapshots: Path) -> None:
    async with await AuditStore.open(db) as s:
        await record_incident(s, recordings, snapshots)


async def record_incident(s: AuditStore, recordings: Path, snapshots: Path, video_s: int = 3) -> None:
    """Incident inc-1 served by flight f-1 of nest 7 (a track of 5 points 2 s apart from T0 + 2,
    a recording of ``video_s`` seconds from T0 + 3, a snapshot at T0 + 9), as the service records it."""
    video = recordings / "nest07-f-1.mp4"
    write_recording(video, video_s)
    (snapshots / "ice-n07-20251213T071502Z-3f9a1c.jpg").write_bytes(b"\xff\xd8 a picture")
    await s.record_command(
        CommandRecord(
            "inc-1",
            T0,
            "cc-1",
            "commander",
            None,
            "incident",
            {"kind": "accident"},
            CommandOutcome.ACCEPTED,
            "received",
        )
    )
    await s.record_command(
        CommandRecord(
            "cmd-launch",
            T0 + 1,
            "dispatcher",
            "automation",
            7,
            "launch",
            {"target": {"lat": 43.87}},
            CommandOutcome.ACCEPTED,
        )
    )
    await s.record_outcome(OutcomeRecord("cmd-launch", T0 + 5, CommandOutcome.SUCCEEDED))
    await s.record_transition(TransitionRecord(7, T0 + 2, "docked", "launching", "launch"))
    await s.start_flight(FlightStart("f-1", 7, T0 + 2, "cmd-launch", 43.87, 125.3, 80.0))
    for i in range(5):
        await s.record_track(TrackSample("f-1", T0 + 2 + 2 * i, 43.86 + i * 1e-3, 125.3, 260.0, 8.0, 90.0))
    await s.record_event(FlightEvent("f-1", T0 + 3, "video_recording", "video", {"path": str(video)}))
    await s.record_event(FlightEvent("f-1", T0 + 4, "incident.dispatched", "go", {"incident_id": "inc-1"}))
    await s.record_event(
        FlightEvent(
            "f-1",
            T0 + 9,
            "ground_units.request",
            "ice",
            {"snapshot_id": "ice-n07-20251213T071502Z-3f9a1c"},
        )
    )
    await s.record_outcome(OutcomeRecord("inc-1", T0 + 12, CommandOutcome.SUCCEEDED, "closed"))
    await s.end_flight(FlightEnd("f-1", T0 + 20, FlightOutcome.COMPLETED))


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    rec, snap = tmp_path / "rec", tmp_path / "snap"
    rec.mkdir()
    snap.mkdir()
    db = tmp_path / "audit.sqlite3"
    asyncio.run(_incident(db, rec, snap))
    out = tmp_path / "inc-1.zip"
    argv = ["evidence", "export", "inc-1", "--out", str(out), "--audit", str(db)]
    assert main([*argv, "--recordings", str(rec), "--snapshots", str(snap)]) == 0
    return db, out


def test_export_then_verify(exported: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    db, out = exported
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        timeline = json.loads(z.read("timeline.json"))
    assert {
        "video/nest07-f-1.mp4",
        "snapshots/ice-n07-20251213T071502Z-3f9a1c.jpg",
        "tracks.kml",
        "report.html",
        "tracks.geojson",
        "audit/rows.json",
        "timeline.json",
        "manifest.json",
    } <= names
    assert manifest["incident_id"] == "inc-1" and manifest["notes"] == []
    video = manifest["video"]["video/nest07-f-1.mp4"]
    assert video["cut"] is True and video["from_s"] == 0.0 and video["flight_id"] == "f-1"
    launch = [e for e in timeline if e["what"] == "command" and e["method"] == "launch"]
    assert launch[0]["actor"] == {"id": "dispatcher", "role": "automation"}
    assert main(["evidence", "verify", str(out)]) == 0
    assert "intact" in capsys.readouterr().out

    async def exports() -> list[dict[str, object]]:
        async with await AuditStore.open(db) as s:
            return [dict(c) for c in await s.commands() if c["method"] == "evidence.export"]

    [record] = asyncio.run(exports())
    assert record["actor_id"] == f"{getpass.getuser()}@{socket.gethostname()}"  # the OS account
    assert record["actor_role"] == "" and record["channel"] == "cli"  # no role claimed
    assert record["args"]["incident_id"] == "inc-1"  # type: ignore[index]


def test_one_byte_altered_in_any_file_is_named(
    exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _db, out = exported
    with zipfile.ZipFile(out) as z:
        files = {n: z.read(n) for n in z.namelist()}
    for name in files:
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as z:
            for n, d in files.items():
                z.writestr(n, d if n != name else d[:-1] + bytes([d[-1] ^ 1]))
        capsys.readouterr()
        assert main(["evidence", "verify", str(bad)]) == 1, name
        assert name in capsys.readouterr().err


def test_bad_input_is_a_clear_error(
    exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _out = exported
    out = tmp_path / "none.zip"
    assert main(["evidence", "export", "no-such", "--out", str(out), "--audit", str(db)]) == 2
    assert "no incident 'no-such'" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.part"))
    assert main(["evidence", "export", "inc-1", "--out", str(out), "--audit", str(tmp_path / "x.db")]) == 2
    assert "no audit store" in capsys.readouterr().err
    text = tmp_path / "not.zip"
    text.write_text("hello")
    assert main(["evidence", "verify", str(text)]) == 2
    assert "not a zip" in capsys.readouterr().err
