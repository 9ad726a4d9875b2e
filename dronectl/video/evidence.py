"""An incident's evidence package as zip bytes, and the audit record of its export (issue 16).

One builder for both ways to export: ``dronectl evidence export`` (app/evidence.py, channel
``cli``) and the command-center page's button (transports/web/replay.py, channel ``web``). The
rows come from :func:`dronectl.audit.evidence.collect`; the recordings are cut to the incident's
window without re-encoding (clip.py), else kept whole (the manifest says which). Blocking (it
reads files and cuts video): run :func:`package` in a worker thread from the event loop.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dronectl.audit import CommandOutcome, CommandRecord
from dronectl.domain.evidence import MANIFEST_NAME, build_manifest, canonical_json, sha256_hex
from dronectl.domain.evidence_report import report_html
from dronectl.domain.evidence_timeline import recordings as recorded_videos
from dronectl.domain.evidence_timeline import snapshot_ids, timeline
from dronectl.domain.evidence_tracks import tracks_geojson, tracks_kml
from dronectl.video.clip import cut

ROWS_NAME = "audit/rows.json"
EXPORT_METHOD = "evidence.export"


def _video(path: Path, started_unix_s: float, window: Mapping[str, float]) -> tuple[bytes, dict[str, Any]]:
    """The incident's stretch of a recording, cut without re-encoding; the whole file when it
    cannot be cut (said in the returned description)."""
    start_s = max(0.0, window["since_unix_s"] - started_unix_s)
    end_s = window["until_unix_s"] - started_unix_s
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / path.name
        try:
            from_s, to_s = cut(path, clip, start_s, end_s)
        except ValueError as exc:
            return path.read_bytes(), {"cut": False, "why": str(exc)}
        return clip.read_bytes(), {"cut": True, "from_s": round(from_s, 3), "to_s": round(to_s, 3)}


def package(rows: dict[str, Any], recordings: Path | None, snapshots: Path | None) -> tuple[bytes, list[str]]:
    """The zip's bytes, and notes on what could not be included. ``recordings``: the directory
    of the flights' .mp4 files (None: where they were recorded); ``snapshots``: the directory of
    the snapshots (None: var/snapshots)."""
    notes: list[str] = []
    files: dict[str, bytes] = {
        ROWS_NAME: canonical_json(rows),
        "timeline.json": json.dumps(timeline(rows), indent=1, ensure_ascii=False).encode(),
    }
    flights = [(d["flight"]["flight_id"], d["flight"]["nest_id"], d["track"]) for d in rows["flights"]]
    incident_id = rows["incident"]["command_id"]
    files["tracks.geojson"] = json.dumps(tracks_geojson(flights)).encode()
    files["tracks.kml"] = tracks_kml(flights, f"incident {incident_id}").encode()
    files["report.html"] = report_html(rows["incident"], timeline(rows), flights).encode()
    for sid in snapshot_ids(rows):
        path = (snapshots or Path("var/snapshots")) / f"{sid}.jpg"
        if path.is_file():
            files[f"snapshots/{sid}.jpg"] = path.read_bytes()
        else:
            notes.append(f"snapshot {sid}: no file {path}")
    videos: dict[str, Any] = {}
    for flight_id, recorded, started_unix_s in recorded_videos(rows):
        path = Path(recorded) if recordings is None else recordings / Path(recorded).name
        if path.is_file():
            name = f"video/{path.name}"
            files[name], videos[name] = _video(path, started_unix_s, rows["window"])
            videos[name]["flight_id"] = flight_id
        else:
            notes.append(f"recording of flight {flight_id}: no file {path}")
    info = {
        "incident_id": incident_id,
        "window": rows["window"],
        "notes": notes,
        "video": videos,
    }
    files[MANIFEST_NAME] = build_manifest(files, rows, info)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue(), notes


def manifest_sha256(zip_bytes: bytes) -> str:
    """The SHA-256 of a package's manifest.json."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        return sha256_hex(z.read(MANIFEST_NAME))


def export_record(
    rows: dict[str, Any], zip_bytes: bytes, file_name: str, *, actor_id: str, actor_role: str, channel: str
) -> CommandRecord:
    """The audit record of an export: a command ``evidence.export`` by ``actor_id`` over
    ``channel``, with the incident, the file's name and the manifest's and rows' SHA-256."""
    incident_id = rows["incident"]["command_id"]
    return CommandRecord(
        command_id=f"evidence-{uuid.uuid4()}",
        at_unix_s=time.time(),
        actor_id=actor_id,
        actor_role=actor_role,
        nest_id=None,
        method=EXPORT_METHOD,
        args={
            "incident_id": incident_id,
            "file": file_name,
            "manifest_sha256": manifest_sha256(zip_bytes),
            "audit_rows_sha256": sha256_hex(canonical_json(rows)),
        },
        outcome=CommandOutcome.SUCCEEDED,
        message=f"evidence of incident {incident_id} exported",
        channel=channel,
    )
