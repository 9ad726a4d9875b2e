"""Pictures kept as evidence of what a drone found: one JPEG file per snapshot, by id.

An id is ``{kind}-n{nest}-{capture time, UTC}-{random}`` (``ice-n03-20251213T071502Z-3f9a1c``):
unique, sortable by time, and safe as a file name and in a URL. ``path`` refuses anything else,
so a request can never read outside the directory.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

SnapshotSink = Callable[[int, str, bytes], Awaitable[None]]  # (nest, snapshot id, JPEG)

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,19}-n\d{2,3}-\d{8}T\d{6}Z-[0-9a-f]{6}$")
URL_PREFIX = "/snapshots/"


class SnapshotStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def new_id(kind: str, nest_id: int, capture_unix_s: float) -> str:
        stamp = datetime.fromtimestamp(capture_unix_s, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        snapshot_id = f"{kind}-n{nest_id:02d}-{stamp}-{secrets.token_hex(3)}"
        if not ID_PATTERN.match(snapshot_id):
            raise ValueError(f"snapshot kind {kind!r} must be lowercase letters, digits or _")
        return snapshot_id

    @staticmethod
    def url(snapshot_id: str) -> str:
        return f"{URL_PREFIX}{snapshot_id}.jpg"

    def path(self, snapshot_id: str) -> Path:
        """The file of ``snapshot_id``; ValueError for anything that is not an id of ours."""
        if not ID_PATTERN.match(snapshot_id):
            raise ValueError(f"{snapshot_id!r} is not a snapshot id")
        return self.directory / f"{snapshot_id}.jpg"

    def save(self, snapshot_id: str, jpeg: bytes) -> Path:
        """Write the picture (atomically: a reader never sees half a file). Blocking: call it in
        a worker thread."""
        if not jpeg.startswith(b"\xff\xd8"):
            raise ValueError("not a JPEG picture")
        path = self.path(snapshot_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(jpeg)
        partial.replace(path)
        return path

    def load(self, snapshot_id: str) -> bytes | None:
        """The picture, or None when there is no such snapshot. Blocking."""
        path = self.path(snapshot_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
