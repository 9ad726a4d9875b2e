"""After the incident, over HTTP (issue 16): the list of incidents, one incident's replay, its
recordings for the page's <video>, and its evidence package.

    GET  /api/incidents                     the latest incidents, newest first (?limit=, at most 500)
    GET  /api/incidents/{id}/replay         the incident's replay (domain/dispatch/replay.py): tracks,
                                            transitions, commands with actor and outcomes, events,
                                            milestones against 1-3-5, snapshots and recordings (URLs)
    POST /api/incidents/{id}/evidence       its evidence package, the zip ``dronectl evidence
                                            export`` writes; the export is recorded in the audit
                                            store with the signed-in user as actor
    GET  /recordings/{name}.mp4             a flight's recording (byte ranges: the <video> seeks)

Replaying and the recordings: ``replay.view`` (observer, pilot, commander: the people of the
command center; not the automation's or a reporting system's account). Exporting:
``evidence.export`` (commander). An unknown incident: 404 with a JSON ``error`` and ``message``.
Everything comes from the audit store and the recordings directory; nothing new is recorded
except the export itself. The rows are gathered by :func:`dronectl.audit.evidence.collect`, the
package built by :func:`dronectl.video.evidence.package`: the CLI's own code.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path, PurePath
from typing import Any

import structlog
from aiohttp import web

from dronectl.audit import AuditError, AuditStore
from dronectl.audit.evidence import collect
from dronectl.automations.lookout.snapshots import SnapshotStore
from dronectl.domain.dispatch.replay import replay
from dronectl.domain.evidence_timeline import UnknownIncidentError
from dronectl.domain.roles import Channel
from dronectl.transports.web.auth import Authorize
from dronectl.video.evidence import export_record, package

log = structlog.get_logger("dronectl.transports.web.replay")

VIEW = "replay.view"
EXPORT = "evidence.export"
RECORDING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.mp4$")
RECORDINGS_PREFIX = "/recordings/"


def _json_error(cls: type[web.HTTPException], error: str, message: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": error, "message": message}), content_type="application/json")


class Replays:
    """The routes above over one audit store, recordings directory and snapshot store."""

    def __init__(
        self, store: AuditStore, recordings: Path, snapshots: SnapshotStore, authorize: Authorize
    ) -> None:
        self.store = store
        self.recordings = recordings
        self.snapshots = snapshots
        self.authorize = authorize

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/api/incidents", self.incidents)
        app.router.add_get("/api/incidents/{id}/replay", self.replay)
        app.router.add_post("/api/incidents/{id}/evidence", self.evidence)
        app.router.add_get(RECORDINGS_PREFIX + "{name}", self.recording)

    async def _rows(self, incident_id: str) -> dict[str, Any]:
        try:
            return await collect(self.store, incident_id)
        except UnknownIncidentError as exc:
            raise _json_error(web.HTTPNotFound, "unknown_incident", str(exc)) from None
        except AuditError as exc:
            log.error("replay.audit_failed", incident=incident_id, error=str(exc))
            raise _json_error(web.HTTPServiceUnavailable, "audit_unavailable", str(exc)) from None

    async def incidents(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        try:
            limit = min(max(int(request.query.get("limit", "100")), 1), 500)
        except ValueError:
            raise _json_error(web.HTTPBadRequest, "bad_limit", "limit: a whole number") from None
        try:
            rows = await self.store.incidents(limit=limit)
        except AuditError as exc:
            raise _json_error(web.HTTPServiceUnavailable, "audit_unavailable", str(exc)) from None
        out = []
        for r in rows:
            last = r["outcomes"][-1] if r["outcomes"] else None
            out.append(
                {
                    "id": r["command_id"],
                    "at_unix_s": r["at_unix_s"],
                    "actor": {"id": r["actor_id"], "role": r["actor_role"]},
                    "kind": r["args"].get("kind"),
                    "priority": r["args"].get("priority"),
                    "text": r["args"].get("text"),
                    "state": (last["code"] or last["outcome"]) if last else None,
                }
            )
        return web.json_response({"incidents": out})

    def _snapshot_url(self, snapshot_id: str) -> str | None:
        try:
            found = self.snapshots.path(snapshot_id).is_file()
        except ValueError:
            return None
        return SnapshotStore.url(snapshot_id) if found else None

    def _video_url(self, recorded: str) -> str | None:
        name = PurePath(recorded).name
        if not RECORDING.match(name) or not (self.recordings / name).is_file():
            return None
        return RECORDINGS_PREFIX + name

    async def replay(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        rows = await self._rows(request.match_info["id"])
        body = await asyncio.to_thread(
            replay, rows, snapshot_url=self._snapshot_url, video_url=self._video_url
        )
        return web.json_response(body)

    async def evidence(self, request: web.Request) -> web.Response:
        """The package, as ``dronectl evidence export`` makes it; recorded before it is sent."""
        actor = await self.authorize(request, EXPORT)
        incident_id = request.match_info["id"]
        rows = await self._rows(incident_id)
        data, notes = await asyncio.to_thread(package, rows, self.recordings, self.snapshots.directory)
        name = f"evidence-{re.sub(r'[^A-Za-z0-9._-]', '_', incident_id)[:100]}.zip"
        record = export_record(
            rows, data, name, actor_id=actor.id, actor_role=actor.role.value, channel=Channel.HTTP.value
        )
        try:
            await self.store.record_command(record)
        except AuditError as exc:  # not recorded: not handed out
            log.error("evidence.audit_failed", incident=incident_id, error=str(exc))
            raise _json_error(web.HTTPServiceUnavailable, "audit_unavailable", str(exc)) from None
        log.info("evidence.exported", incident=incident_id, actor=actor.id, bytes=len(data), notes=len(notes))
        return web.Response(
            body=data,
            content_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Manifest-SHA256": str(record.args["manifest_sha256"]),
            },
        )

    async def recording(self, request: web.Request) -> web.StreamResponse:
        await self.authorize(request, VIEW)
        name = request.match_info["name"]
        path = self.recordings / name
        if not RECORDING.match(name) or not path.is_file():
            raise web.HTTPNotFound(text=f"no recording {name[:100]!r}")
        # aiohttp answers Range requests (206) itself: the <video> fetches what it seeks to
        return web.FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


def add_replay_routes(
    app: web.Application, store: AuditStore, recordings: Path, snapshots: SnapshotStore, authorize: Authorize
) -> None:
    Replays(store, recordings, snapshots, authorize).mount(app)
