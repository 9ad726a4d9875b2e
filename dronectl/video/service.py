"""The video side of a running service: ``async with open_video(fleet, dir) as hub``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from dronectl.nest.fleet import Fleet
from dronectl.video.hub import VideoHub
from dronectl.video.recorder import FlightRecorders
from dronectl.video.sources import FleetSources
from dronectl.video.talk_audit import TalkAudit


@contextlib.asynccontextmanager
async def open_video(fleet: Fleet, recordings_dir: Path | None) -> AsyncIterator[VideoHub]:
    """The hub over ``fleet``'s cameras, talk-back audited in the fleet's audit store; with
    ``recordings_dir``, every flight recorded there."""
    async with VideoHub(FleetSources(fleet)) as hub:
        hub.talk_audit = TalkAudit(fleet.audit, fleet.clock.wall)
        recorders = None
        if recordings_dir is not None:
            recorders = FlightRecorders(hub, fleet, recordings_dir)
            hub.recorders = recorders
            recorders.start()
        try:
            yield hub
        finally:
            if recorders is not None:
                recorders.close()
