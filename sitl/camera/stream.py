"""One live video stream: a thread that renders, stamps, encodes, packetizes and sends RTP.

The thread exists only while someone watches: the camera starts it on
MAV_CMD_VIDEO_START_STREAMING and it ends on ``stop()`` (the stop command, or the watcher's
heartbeats ceasing). Frames are paced by the wall clock, since video is watched in real time
whatever the simulation speed; a frame that cannot be made in time is skipped, not queued, so
the stream never lags behind. The drone's pose and the scene are read through snapshots the
event loop publishes, never from the live simulation objects.

``StreamSettings.replay``: instead of rendering and encoding every frame, the stream sends a
loop of ``REPLAY_GOPS`` GOPs encoded once per process (from the first stream's view) and shared
by every stream: a real H.264 bitstream at the configured size, rate and bitrate, for measuring
the service with many streams when the machine cannot encode them all live. The loop's pictures
carry a little sensor noise (``REPLAY_NOISE``), as a real camera's do, so the encoder spends its
configured bitrate (the clean synthetic city compresses to an eighth of it, which would understate
the work per stream downstream). A replayed stream that falls behind (a busy machine) sends its
late frames at once, up to ``REPLAY_CATCH_UP_S`` behind, rather than skipping them. The
capture-time SEI is still the send time of each frame; the pixel time code is the loop's (stale),
so latency is measured on rendered streams only.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
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
    replay: bool = False  # send a pre-encoded loop instead of rendering live (see the module doc)


BASE_PIXEL_RATE = 1280 * 720 * 30  # the default stream, whose bitrate the others scale from
MIN_BITRATE_BPS = 250_000


def stream_settings(size: str = "1280x720", fps: int = 30, *, replay: bool = False) -> StreamSettings:
    """Settings for a ``WIDTHxHEIGHT`` stream at ``fps``, its bitrate scaled from the default
    (4 Mbit/s at 1280x720, 30 fps) by pixel rate; ValueError with the reason for a bad value."""
    width_text, sep, height_text = size.lower().partition("x")
    if not (sep and width_text.isdigit() and height_text.isdigit()):
        raise ValueError(f"camera size {size!r}: expected WIDTHxHEIGHT, e.g. 1280x720")
    width_px, height_px = int(width_text), int(height_text)
    if not (320 <= width_px <= 3840 and 180 <= height_px <= 2160) or width_px % 16 or height_px % 2:
        raise ValueError(f"camera size {size!r}: width 320-3840 (a multiple of 16), height 180-2160 (even)")
    if not 1 <= fps <= 60:
        raise ValueError(f"camera fps {fps}: 1 to 60")
    base = StreamSettings()
    bitrate = max(MIN_BITRATE_BPS, base.bitrate_bps * width_px * height_px * fps // BASE_PIXEL_RATE)
    return StreamSettings(
        optics=dataclasses.replace(base.optics, width_px=width_px, height_px=height_px),
        fps=fps,
        bitrate_bps=bitrate,
        gop=fps,  # one keyframe a second
        replay=replay,
    )


REPLAY_GOPS = 2
REPLAY_CATCH_UP_S = 0.5
REPLAY_NOISE = 3.0  # standard deviation of the loop's sensor noise, in 8-bit levels
_replay_lock = threading.Lock()
_replay_loops: dict[tuple[int, int, int, int, int], list[bytes]] = {}


def replay_loop(
    settings: StreamSettings, pose: CameraPose, scene: SceneSnapshot, title: str = ""
) -> list[bytes]:
    """The pre-encoded access units of ``settings`` (made once per process, shared): ``REPLAY_GOPS``
    GOPs of the view from ``pose``, drifting a little each frame so the pictures change."""
    o = settings.optics
    key = (o.width_px, o.height_px, settings.fps, settings.bitrate_bps, settings.gop)
    with _replay_lock:
        loop = _replay_loops.get(key)
        if loop is None:
            renderer = Renderer(o, title)
            encoder = H264Encoder(o.width_px, o.height_px, settings.fps, settings.bitrate_bps, settings.gop)
            loop = []
            rng = np.random.default_rng(settings.fps)
            shape = (
                o.height_px,
                o.width_px,
                3,
            )  # a few noise fields in turn: each frame's differs from the last
            noises = [rng.normal(0.0, REPLAY_NOISE, shape).astype(np.int16) for _ in range(3)]
            frames = REPLAY_GOPS * settings.gop
            for index in range(frames):
                drift = dataclasses.replace(pose, lon_deg=pose.lon_deg + index * 2e-6,
                                            sim_time_s=pose.sim_time_s + index / settings.fps)  # fmt: skip
                frame = renderer.render(drift, scene, time.time_ns() // 1000)
                noise = noises[index % len(noises)]
                frame = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
                loop.extend(unit for _, unit in encoder.encode(frame, index))
            loop.extend(unit for _, unit in encoder.flush())
            if len(loop) != frames:
                raise RuntimeError(f"the encoder gave {len(loop)} access units for {frames} frames")
            _replay_loops[key] = loop
    return loop


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
        loop = replay_loop(s, self._pose(), self._scene(), self._title) if s.replay else None
        renderer = None if loop else Renderer(s.optics, self._title)
        encoder = (
            None if loop else H264Encoder(s.optics.width_px, s.optics.height_px, s.fps, s.bitrate_bps, s.gop)
        )
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
                # behind: skip to the current slot (a replay catches up, up to REPLAY_CATCH_UP_S,
                # so a busy machine's scheduling delays do not lower its rate)
                if now - due > (REPLAY_CATCH_UP_S if loop else period):
                    behind = int((now - start) / period)
                    self.stats.skipped_frames += behind - index
                    index = behind
                capture_us = time.time_ns() // 1000
                self.stats.frames += 1
                if loop:  # replay: the next pre-encoded unit in turn (never skipping into a GOP)
                    timestamp = (timestamp_base + index * ticks_per_frame) & 0xFFFFFFFF
                    unit = loop[(self.stats.frames - 1) % len(loop)]
                    self._send(sock, packetizer.packetize(unit, timestamp, capture_us))
                    index += 1
                    continue
                assert renderer is not None and encoder is not None
                frame = renderer.render(self._pose(), self._scene(), capture_us)
                captured[index] = capture_us
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
