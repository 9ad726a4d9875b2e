"""After the incident, over HTTP (issue 16): the list of incidents and of flights, the replay of
an incident, of a flight or of a time range, the recordings for the page's <video>, and an
incident's evidence package.

    GET  /api/incidents                     the latest incidents, newest first (?limit=, at most 500)
    GET  /api/incidents/{id}/replay         the incident's replay (domain/dispatch/replay.py): tracks,
                                            transitions, commands with actor and outcomes, events,
                                            milestones against 1-3-5, snapshots and recordings (URLs)
    GET  /api/flights                       the latest flights, newest first (?limit=, at most 500)
    GET  /api/flights/{id}/replay           a flight's replay: its track, events, snapshots and
                                            recording, its nest's commands and transitions from the
                                            command that launched it to its end (no milestones)
    GET  /api/replay?since=&until=          a time range's replay: every flight in the air in it, every
                                            command and transition recorded in it; ISO 8601 with an
                                            offset or Unix seconds; at most 24 h (audit/evidence.py)
    POST /api/incidents/{id}/evidence       its evidence package, the zip ``dronectl evidence
                                            export`` writes; the export is recorded in the audit
                                            store with the signed-in user as actor
    GET  /recordings/{name}.mp4             a flight's recording (byte ranges: the <video> seeks)

Replaying and the recordings: ``replay.view`` (observer, pilot, commander: the people of the
command center; not the automation's or a reporting system's account). Exporting:
``evidence.export`` (commander). An unknown incident or flight: 404, a range that is malformed,
reversed or too long (or too busy): 400, each with a JSON ``error`` and ``message``.
Everything comes from the audit store and the recordings directory; nothing new is recorded
except the export itself. The rows are gathered by :mod:`dronectl.audit.evidence`, the
package built by :func:`dronectl.video.evidence.package`: the CLI's own code.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

import structlog
from aiohttp import web

from dronectl.audit import AuditError, AuditStore
from dronectl.audit.evidence import collect, collect_flight, collect_range
from dronectl.automations.lookout.snapshots import SnapshotStore
from dronectl.domain.dispatch.replay import replay
from dronectl.domain.evidence_timeline import ReplayRangeError, UnknownFlightError, UnknownIncidentError
from dronectl.domain.roles import Channel
from dronectl.transports.web.auth import Authorize
from dronectl.video.evidence import export_record, package

log = structlog.get_logger("dronectl.transports.web.replay")

VIEW = "replay.view"
EXPORT = "evidence.export"
RECORDING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.mp4$")
RECORDINGS_PREFIX = "/recordings/"


def parse_time(name: str, text: str | None) -> float:
    """A query's time: Unix seconds, or ISO 8601 with an offset (``2025-12-13T07:15:00+08:00``,
    ``...Z``); ValueError in words otherwise (a time with no offset is ambiguous: refused)."""
    if text is None or not text.strip():
        raise ValueError(f"{name}: missing (ISO 8601 with an offset, or Unix seconds)")
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name}: {text[:60]!r} is not ISO 8601 nor Unix seconds") from None
        if when.tzinfo is None:
            raise ValueError(f"{name}: {text[:60]!r} has no UTC offset (add Z or +hh:mm)") from None
        return when.timestamp()
    if not math.isfinite(value):
        raise ValueError(f"{name}: {text[:60]!r} is not a time")
    return value


def _limit(request: web.Request) -> int:
    try:
        return min(max(int(request.query.get("limit", "100")), 1), 500)
    except ValueError:
        raise _json_error(web.HTTPBadRequest, "bad_limit", "limit: a whole number") from None


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
        app.router.add_get("/api/flights", self.flights)
        app.router.add_get("/api/flights/{id}/replay", self.flight_replay)
        app.router.add_get("/api/replay", self.range_replay)
        app.router.add_post("/api/incidents/{id}/evidence", self.evidence)
        app.router.add_get(RECORDINGS_PREFIX + "{name}", self.recording)

    async def _rows(self, incident_id: str) -> dict[str, Any]:
        return await self._gather(lambda: collect(self.store, incident_id), incident=incident_id)

    async def _gather(self, rows: Callable[[], Awaitable[dict[str, Any]]], **what: Any) -> dict[str, Any]:
        """``rows()``, its errors as JSON ones: unknown 404, a bad range 400, no audit store 503."""
        try:
            return await rows()
        except UnknownIncidentError as exc:
            raise _json_error(web.HTTPNotFound, "unknown_incident", str(exc)) from None
        except UnknownFlightError as exc:
            raise _json_error(web.HTTPNotFound, "unknown_flight", str(exc)) from None
        except ReplayRangeError as exc:
            raise _json_error(web.HTTPBadRequest, "bad_range", str(exc)) from None
        except AuditError as exc:
            log.error("replay.audit_failed", **what, error=str(exc))
            raise _json_error(web.HTTPServiceUnavailable, "audit_unavailable", str(exc)) from None

    async def incidents(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        limit = _limit(request)
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

    async def flights(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        limit = _limit(request)
        try:
            rows = await self.store.flights(limit=limit)
        except AuditError as exc:
            raise _json_error(web.HTTPServiceUnavailable, "audit_unavailable", str(exc)) from None
        out = [
            {
                "id": r["flight_id"],
                "nest_id": r["nest_id"],
                "started_at_unix_s": r["started_at_unix_s"],
                "ended_at_unix_s": r["ended_at_unix_s"],
                "outcome": r["outcome"],
            }
            for r in rows
        ]
        return web.json_response({"flights": out})

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

    async def _replay(self, rows: dict[str, Any]) -> web.Response:
        body = await asyncio.to_thread(
            replay, rows, snapshot_url=self._snapshot_url, video_url=self._video_url
        )
        return web.json_response(body)

    async def replay(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        return await self._replay(await self._rows(request.match_info["id"]))

    async def flight_replay(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        flight_id = request.match_info["id"]
        rows = await self._gather(lambda: collect_flight(self.store, flight_id), flight=flight_id)
        return await self._replay(rows)

    async def range_replay(self, request: web.Request) -> web.Response:
        await self.authorize(request, VIEW)
        try:
            since = parse_time("since", request.query.get("since"))
            until = parse_time("until", request.query.get("until"))
        except ValueError as exc:
            raise _json_error(web.HTTPBadRequest, "bad_range", str(exc)) from None
        rows = await self._gather(lambda: collect_range(self.store, since, until), since=since, until=until)
        return await self._replay(rows)

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
