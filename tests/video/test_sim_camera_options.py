"""The simulated camera's options for benchmarks: its size and rate, and replay (a pre-encoded
H.264 loop, sent at the frame rate with a fresh capture time on every frame)."""

from __future__ import annotations

import socket
import time

import av
import pytest

from adapters.protocols import AccessUnit
from adapters.rtp_h264 import H264Depacketizer
from sitl.camera.render import CameraPose
from sitl.camera.scene import SceneState
from sitl.camera.stream import REPLAY_GOPS, StreamSettings, VideoStreamer, replay_loop, stream_settings


def test_stream_settings_scale_the_bitrate_with_the_pixel_rate() -> None:
    full = stream_settings("1280x720", 30)
    assert full == StreamSettings()  # the default stream
    small = stream_settings("640x360", 15, replay=True)
    assert (small.optics.width_px, small.optics.height_px, small.fps, small.gop) == (640, 360, 15, 15)
    assert small.bitrate_bps == 4_000_000 // 8 and small.replay


@pytest.mark.parametrize(
    ("size", "fps", "why"),
    [
        ("1280*720", 30, "expected WIDTHxHEIGHT"),
        ("100x720", 30, "width 320-3840"),
        ("1290x720", 30, "a multiple of 16"),
        ("1280x720", 0, "1 to 60"),
    ],
)
def test_bad_stream_settings_are_refused_with_the_reason(size: str, fps: int, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        stream_settings(size, fps)


def test_a_replayed_stream_is_a_real_h264_loop_with_fresh_capture_times() -> None:
    settings = stream_settings("640x360", 30, replay=True)
    pose = CameraPose(43.88, 125.32, 40.0, 0.0, 0.0)
    scene = SceneState()
    loop = replay_loop(settings, pose, scene.snapshot(False))
    assert len(loop) == REPLAY_GOPS * settings.gop
    assert replay_loop(settings, pose, scene.snapshot(False)) is loop  # made once per process

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5.0)
    streamer = VideoStreamer(
        "test.replay", rx.getsockname(), lambda: pose, lambda: scene.snapshot(False), settings
    )
    depacketizer = H264Depacketizer()
    decoder = av.CodecContext.create("h264", "r")
    units: list[AccessUnit] = []
    pictures = 0
    streamer.start()
    try:
        while len(units) < REPLAY_GOPS * settings.gop + 10:  # past the loop's end: it wraps cleanly
            for unit in depacketizer.push(rx.recv(2048), time.time_ns() // 1000):
                units.append(unit)
                for packet in decoder.parse(unit.data):
                    pictures += len(decoder.decode(packet))
    finally:
        streamer.stop()
        assert streamer.join(5.0)
        rx.close()
    assert units[0].keyframe and sum(u.keyframe for u in units) >= REPLAY_GOPS + 1
    assert pictures >= len(units) - 2 and depacketizer.stats.lost_packets == 0
    # each frame carries the time it was sent, not the time the loop was encoded
    for unit in units:
        assert unit.capture_time_us is not None
        assert 0 <= unit.received_time_us - unit.capture_time_us < 200_000
    rate = (len(units) - 1) / ((units[-1].capture_time_us or 0) - (units[0].capture_time_us or 0)) * 1e6
    assert 25.0 < rate < 35.0  # paced at 30 fps
    assert streamer.stats.frames >= len(units)
