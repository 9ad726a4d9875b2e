"""The stored snapshots over HTTP, with the same authorization as the live video.

    GET /snapshots/{id}.jpg    the JPEG a drone took when it found something (id: see snapshots.py)

404 for an id that is not one or a snapshot that does not exist; 401/403 from ``authorize``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from dronectl.automations.lookout.snapshots import SnapshotStore
from dronectl.transports.web.auth import Authorize

VIEW = "video.view"  # who may watch the video may see what it found


def add_snapshot_routes(app: web.Application, store: SnapshotStore, authorize: Authorize) -> None:
    async def snapshot(request: web.Request) -> web.Response:
        await authorize(request, VIEW)
        snapshot_id = request.match_info["id"]
        try:
            jpeg = await asyncio.to_thread(store.load, snapshot_id)
        except ValueError:
            raise web.HTTPNotFound(text=f"{snapshot_id!r} is not a snapshot id") from None
        if jpeg is None:
            raise web.HTTPNotFound(text=f"no snapshot {snapshot_id}")
        return web.Response(
            body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
        )

    app.router.add_get("/snapshots/{id}.jpg", snapshot)
