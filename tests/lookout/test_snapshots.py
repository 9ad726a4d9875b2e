"""Snapshots: ids safe as file names, stored atomically, served with the video's authorization."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.automations.lookout.snapshots import SnapshotStore
from dronectl.operations.models import Actor, Role
from dronectl.transports.web.snapshots import add_snapshot_routes

Client = TestClient[web.Request, web.Application]


def jpeg() -> bytes:
    image = np.full((72, 128, 3), (238, 214, 190), np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def test_ids_are_unique_sortable_and_refuse_paths(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    a = store.new_id("ice", 3, 1765610102.0)
    b = store.new_id("ice", 3, 1765610102.0)
    assert a != b and a.startswith("ice-n03-20251213T071502Z-")
    assert store.url(a) == f"/snapshots/{a}.jpg"
    for bad in ("../etc/passwd", "ice-n03-20251213T071502Z-zzzzzz", "", "ICE-n03-20251213T071502Z-abcdef"):
        with pytest.raises(ValueError):
            store.path(bad)
    with pytest.raises(ValueError):
        store.new_id("Bad Kind", 3, 0.0)


def test_save_and_load(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snaps")
    snapshot_id = store.new_id("ice", 12, 1765610102.0)
    assert store.load(snapshot_id) is None
    data = jpeg()
    path = store.save(snapshot_id, data)
    assert path.parent == tmp_path / "snaps" and store.load(snapshot_id) == data
    assert not list((tmp_path / "snaps").glob("*.part"))
    with pytest.raises(ValueError, match="not a JPEG"):
        store.save(store.new_id("ice", 12, 0.0), b"GIF89a")


async def authorize(request: web.Request, action: str) -> Actor:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token != "observer-token":
        raise web.HTTPUnauthorized(text="a bearer token is needed")
    if action != "video.view":
        raise web.HTTPForbidden(text=f"may not {action}")
    return Actor(id="observer", role=Role.OBSERVER)


@pytest.fixture
async def client(
    tmp_path: Path,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], SnapshotStore]]:
    store = SnapshotStore(tmp_path)
    app = web.Application()
    add_snapshot_routes(app, store, authorize)
    async with TestClient(TestServer(app)) as c:
        yield c, store


async def test_served_over_http_with_authorization(
    client: tuple[Client, SnapshotStore],
) -> None:
    http, store = client
    snapshot_id = store.new_id("ice", 3, 1765610102.0)
    data = jpeg()
    store.save(snapshot_id, data)
    url = store.url(snapshot_id)
    assert (await http.get(url)).status == 401
    ok = await http.get(url, headers={"Authorization": "Bearer observer-token"})
    assert ok.status == 200 and ok.content_type == "image/jpeg" and await ok.read() == data
    missing = await http.get(
        store.url(store.new_id("ice", 3, 0.0)), headers={"Authorization": "Bearer observer-token"}
    )
    assert missing.status == 404 and "no snapshot" in await missing.text()
    bad = await http.get("/snapshots/..%2Fsecret.jpg", headers={"Authorization": "Bearer observer-token"})
    assert bad.status == 404
