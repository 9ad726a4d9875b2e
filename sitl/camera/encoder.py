"""H.264 encoding of rendered frames with libx264 through PyAV, tuned for live low-latency video.

Settings as a drone camera streaming to a ground station uses them: preset ultrafast, tune
zerolatency (no frame lookahead, one access unit out per frame in), profile constrained
baseline (no B-frames, what WebRTC decoders take), a keyframe every ``gop`` frames (1 s at
30 fps, no scene-cut keyframes in between), SPS/PPS repeated before every keyframe, and a
VBV-capped bitrate so keyframes do not burst the link. Output is Annex-B.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2

from adapters.camera_timecode import Frame

TIME_BASE = Fraction(1, 90_000)


class H264Encoder:
    def __init__(self, width_px: int, height_px: int, fps: int, bitrate_bps: int, gop: int) -> None:
        self.width_px = width_px
        self.height_px = height_px
        self.fps = fps
        codec = av.CodecContext.create("libx264", "w")
        codec.width = width_px
        codec.height = height_px
        codec.pix_fmt = "yuv420p"
        codec.time_base = TIME_BASE
        codec.framerate = Fraction(fps, 1)
        codec.gop_size = gop
        codec.max_b_frames = 0
        codec.bit_rate = bitrate_bps
        kbps = bitrate_bps // 1000
        params = [
            f"keyint={gop}",
            f"min-keyint={gop}",
            "scenecut=0",
            "bframes=0",
            "repeat-headers=1",
            "annexb=1",
            "aud=0",
            "threads=1",  # one core per stream at most; 16 streams share the machine
            f"vbv-maxrate={kbps * 3 // 2}",
            f"vbv-bufsize={kbps // 2}",
        ]
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "x264-params": ":".join(params),
        }
        self._codec = codec
        self._ticks_per_frame = 90_000 // fps

    def encode(self, frame_bgr: Frame, index: int) -> list[tuple[int, bytes]]:
        """Encode frame number ``index``; returns (frame index, Annex-B access unit) pairs."""
        yuv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420)
        picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        picture.pts = index * self._ticks_per_frame
        picture.time_base = TIME_BASE
        return [self._unit(packet) for packet in self._codec.encode(picture)]

    def flush(self) -> list[tuple[int, bytes]]:
        return [self._unit(packet) for packet in self._codec.encode(None)]

    def _unit(self, packet: av.Packet) -> tuple[int, bytes]:
        pts = packet.pts if packet.pts is not None else 0
        return pts // self._ticks_per_frame, bytes(packet)
