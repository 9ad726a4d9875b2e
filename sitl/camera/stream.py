"""One live video stream: a thread that renders, stamps, encodes, packetizes and sends RTP.

The thread exists only while someone watches: the camera starts it on
MAV_CMD_VIDEO_START_STREAMING and it ends on ``stop()`` (the stop command, or the watcher's
heartbeats ceasing). Frames are paced by the wall clock, since video is watched in real time
whatever the simulation speed; a frame that cannot be made in time is skipped, not queued, so
the stream never lags behind. The drone's pose and the scene are read through snapshots the
event loop publishes, never from the live simulation objects.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from adapters.rtp_h264 import CLOCK_RATE_HZ, H264Packetizer
from sitl.camera.encoder import H264Encoder
from sitl.camera.render import CameraPose, Optics, Renderer
from sitl.camera.scene import SceneSnapshot

log = structlog.get_logger(__name__)

Address = tuple[str, int]
SEND_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class StreamSettings:
    optics: Optics = field(default_factory=Optics)
    fps: int = 30
    bitrate_bps: int = 4_000_000
    gop: int = 30  # one keyframe a second at 30 fps


@dataclass
class StreamStats:
    frames: int = 0
    skipped_frames: int = 0  # not made in time
    access_units: int = 0
    packets: int = 0
    dropped_packets: int = 0  # by an injected link fault
    bytes_sent: int = 0
    send_errors: int = 0


class VideoStreamer:
    def __init__(
        self,
        name: str,
        target: Address,
        pose: Callable[[], CameraPose],
        scene: Callable[[], SceneSnapshot],
        settings: StreamSettings,
        drop_packet: Callable[[], bool] = lambda: False,
        title: str = "",
    ) -> None:
        self.name = name
        self.target = target
        self.settings = settings
        self.stats = StreamStats()
        self._pose = pose
        self._scene = scene
        self._drop_packet = drop_packet
        self._title = title
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it does within a frame); does not wait."""
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread to end (tests, shutdown off the event loop)."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._stream()
        except Exception as exc:  # the thread must say why it died; the camera sees it ended
            self.error = repr(exc)
            log.error("sitl.camera.stream_failed", stream=self.name, error=self.error, exc_info=True)

    def _stream(self) -> None:
        s = self.settings
        rng = random.Random()
        renderer = Renderer(s.optics, self._title)
        encoder = H264Encoder(s.optics.width_px, s.optics.height_px, s.fps, s.bitrate_bps, s.gop)
        packetizer = H264Packetizer(ssrc=rng.getrandbits(32), sequence=rng.getrandbits(16))
        timestamp_base = rng.getrandbits(32)
        ticks_per_frame = CLOCK_RATE_HZ // s.fps
        captured: dict[int, int] = {}  # frame index -> capture time (us)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        log.info("sitl.camera.stream_started", stream=self.name, target=f"{self.target[0]}:{self.target[1]}")
        try:
            start = time.monotonic()
            index = 0
            period = 1.0 / s.fps
            while not self._stop.is_set():
                due = start + index * period
                now = time.monotonic()
                if now < due:
                    self._stop.wait(due - now)
                    continue
                if now - due > period:  # behind: skip to the current slot
                    behind = int((now - start) / period)
                    self.stats.skipped_frames += behind - index
                    index = behind
                capture_us = time.time_ns() // 1000
                frame = renderer.render(self._pose(), self._scene(), capture_us)
                captured[index] = capture_us
                self.stats.frames += 1
                for frame_index, unit in encoder.encode(frame, index):
                    taken = captured.pop(frame_index, None)
                    timestamp = (timestamp_base + frame_index * ticks_per_frame) & 0xFFFFFFFF
                    self._send(sock, packetizer.packetize(unit, timestamp, taken))
                if len(captured) > 4 * s.fps:  # an encoder that holds frames back: keep the map small
                    for old in sorted(captured)[: len(captured) - s.fps]:
                        del captured[old]
                index += 1
        finally:
            sock.close()
            log.info("sitl.camera.stream_stopped", stream=self.name, frames=self.stats.frames)

    def _send(self, sock: socket.socket, packets: list[bytes]) -> None:
        self.stats.access_units += 1
        for packet in packets:
            if self._drop_packet():
                self.stats.dropped_packets += 1
                continue
            try:
                sock.sendto(packet, self.target)
            except OSError:
                self.stats.send_errors += 1
                continue
            self.stats.packets += 1
            self.stats.bytes_sent += len(packet)
