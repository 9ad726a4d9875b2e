"""A flight's video written to a file as it came from the camera: H.264 muxed, never re-encoded.

Fragmented MP4 (a fragment per keyframe, the index up front), so a service killed mid-flight
leaves a file that plays up to its last complete second. Writing happens on the file's own
thread (disk I/O stays off the event loop); :meth:`write` never blocks: if the disk falls
behind by ``QUEUE_UNITS`` pictures, pictures are dropped up to the next keyframe.
The first keyframe is decoded once to learn the picture size for the container header.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import structlog

from adapters.protocols import AccessUnit
from dronectl.video.timeline import CLOCK_RATE_HZ, Timeline

log = structlog.get_logger(__name__)

TIME_BASE = Fraction(1, CLOCK_RATE_HZ)
QUEUE_UNITS = 300  # 10 s at 30 fps
MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


def picture_size(keyframe: AccessUnit) -> tuple[int, int]:
    """(width, height) of a keyframe, by decoding it."""
    decoder = av.CodecContext.create("h264", "r")
    frames = decoder.decode(av.Packet(keyframe.data)) + decoder.decode(None)
    if not frames:
        raise ValueError("the keyframe did not decode")
    frame = frames[0]
    return frame.width, frame.height


class VideoFile:
    def __init__(self, path: Path, name: str = "video.file") -> None:
        self.path = path
        self.units = 0
        self.bytes = 0
        self.dropped = 0
        self.error: str | None = None
        self._queue: queue.Queue[AccessUnit | None] = queue.Queue(QUEUE_UNITS)
        self._need_keyframe = True
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(self, unit: AccessUnit) -> None:
        """Queue ``unit`` (from the event loop; never blocks)."""
        if self._need_keyframe and not unit.keyframe:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(unit)
            self._need_keyframe = False
        except queue.Full:
            self.dropped += 1
            self._need_keyframe = True

    def close(self, timeout_s: float = 10.0) -> bool:
        """Finish the file (blocking: call it with ``asyncio.to_thread``); False if it did not end in time."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return False
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # the thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._write_all()
        except Exception as exc:  # noqa: BLE001 - the thread must say why it died; the recorder reports it
            self.error = repr(exc)
            log.error("video.file_failed", path=str(self.path), error=self.error)
            while self._queue.get() is not None:  # let close() finish
                pass

    def _write_all(self) -> None:
        first = self._queue.get()
        if first is None:
            return  # nothing was recorded: no file
        width, height = picture_size(first)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), "w", format="mp4", options=MP4_OPTIONS)
        try:
            stream = container.add_mux_stream("h264", rate=30, width=width, height=height)
            stream.time_base = TIME_BASE
            timeline = Timeline()
            unit: AccessUnit | None = first
            while unit is not None:
                packet = av.Packet(unit.data)
                packet.pts = packet.dts = timeline.next_pts(unit)
                packet.time_base = TIME_BASE
                packet.stream = stream
                packet.is_keyframe = unit.keyframe
                container.mux(packet)
                self.units += 1
                self.bytes += len(unit.data)
                unit = self._queue.get()
        finally:
            container.close()
