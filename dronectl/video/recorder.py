"""Every flight's video recorded to a file as evidence, referenced from the flight's record.

One recorder per nest in flight: it starts when the nest's phase says the drone is leaving
(LAUNCHING) or in the air, and stops when the flight is over. It joins the nest's ingest like
any viewer (so the camera streams once, however many watch) and writes the access units as they
came (``VideoFile``). On the ground no recorder runs, so no camera streams for nothing.

The flight record gets a ``video_recording`` event with the file's path when recording starts,
and a ``video_recorded`` event with what was written when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from dronectl.audit import FlightEvent
from dronectl.nest.controller import Listener, NestController, NestEvent
from dronectl.nest.fleet import Fleet
from dronectl.video.errors import VideoError
from dronectl.video.hub import Subscription, VideoHub
from dronectl.video.sources import WATCHABLE
from dronectl.video.video_file import VideoFile

log = structlog.get_logger(__name__)

RETRY_S = 2.0


def recording_path(directory: Path, nest_id: int, flight_id: str) -> Path:
    return directory / f"nest{nest_id:02d}-{flight_id}.mp4"


class FlightRecorders:
    """Watches every nest of ``fleet``; records each flight through ``hub`` into ``directory``."""

    def __init__(self, hub: VideoHub, fleet: Fleet, directory: Path) -> None:
        self.hub = hub
        self.fleet = fleet
        self.directory = directory
        self.recording: dict[int, tuple[str, asyncio.Task[None]]] = {}  # nest -> (flight id, task)
        self.files: dict[str, VideoFile] = {}  # flight id -> its file
        self._listeners: list[tuple[NestController, Listener]] = []

    def start(self) -> None:
        """Listen to every nest (and start recording a flight already under way)."""
        for controller in self.fleet.controllers.values():
            listener = self._listener(controller)
            controller.listeners.append(listener)
            self._listeners.append((controller, listener))
            self._reconcile(controller)

    def close(self) -> None:
        """Stop listening and recording (the hub's close also ends the recording tasks)."""
        for controller, listener in self._listeners:
            with contextlib.suppress(ValueError):
                controller.listeners.remove(listener)
        self._listeners.clear()
        for _flight_id, task in self.recording.values():
            task.cancel()
        self.recording.clear()

    def _listener(self, controller: NestController) -> Listener:
        def on_event(event: NestEvent) -> None:
            if event.kind in ("phase", "landed", "launch_aborted", "launched"):
                self._reconcile(controller)

        return on_event

    def _reconcile(self, controller: NestController) -> None:
        nest_id = controller.nest_id
        flight = controller.flight
        current = self.recording.get(nest_id)
        if current is not None and (flight is None or current[0] != flight.flight_id):
            current[1].cancel()
            del self.recording[nest_id]
            current = None
        if flight is not None and current is None and controller.state.phase in WATCHABLE:
            name = f"video.recorder[{nest_id:02d}]"
            self.recording[nest_id] = (
                flight.flight_id,
                self.hub.spawn(self._record(controller, flight.flight_id), name),
            )

    async def _record(self, controller: NestController, flight_id: str) -> None:
        nest_id = controller.nest_id
        path = recording_path(self.directory, nest_id, flight_id)
        file = VideoFile(path, name=f"video.file[{nest_id:02d}]")
        self.files[flight_id] = file
        announced = False
        try:
            while True:
                sub: Subscription | None = None
                try:
                    sub = await self.hub.subscribe(nest_id, "recorder", fast_start=False)
                    async for unit in sub:
                        file.write(unit)
                        if not announced:
                            announced = True
                            await self._event(controller, flight_id, "video_recording",
                                              f"video recorded to {path}", path=str(path))  # fmt: skip
                except VideoError as exc:
                    log.info("video.recorder_waiting", nest=nest_id, flight=flight_id, reason=str(exc))
                finally:
                    if sub is not None:
                        sub.close()
                await asyncio.sleep(RETRY_S)
        finally:
            finished = await asyncio.to_thread(file.close)
            log.info("video.recorded", nest=nest_id, flight=flight_id, path=str(path), units=file.units,
                     dropped=file.dropped, error=file.error, finished=finished)  # fmt: skip
            if announced:
                with contextlib.suppress(Exception):  # the flight's record may be closed with the store
                    summary = f"video: {file.units} pictures, {file.bytes} bytes"
                    if file.error:
                        summary += f"; writing failed: {file.error}"
                    await self._event(
                        controller, flight_id, "video_recorded", summary,
                        path=str(path), pictures=file.units, bytes=file.bytes, dropped=file.dropped,
                    )  # fmt: skip

    @staticmethod
    async def _event(
        controller: NestController, flight_id: str, kind: str, message: str, **data: object
    ) -> None:
        event = FlightEvent(flight_id, controller.clock.wall(), kind, message, data)
        await controller.audit.record_event(event)
