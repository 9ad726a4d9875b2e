"""What any ``Camera`` implementation must do, run here with ``MavlinkCamera`` against the simulator."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest

from adapters.camera_timecode import read_capture_time_us
from adapters.mavlink.camera import MavlinkCamera, udp_port
from adapters.mavlink.ids import CAMERA_COMPID
from adapters.protocols import AccessUnit, Camera, VideoEncoding, VideoTransport
from sitl.environment import FaultKind
from tests.adapters.conftest import SIM_SPEED, SimulatedNest
from tests.adapters.fake_peer import wait_until
from tests.conftest import allocate_port_base


@pytest.fixture
async def camera(simulated: SimulatedNest) -> AsyncIterator[MavlinkCamera]:
    simulated.nest.camera.video_port = allocate_port_base(span=1)
    link = simulated.router.component(simulated.system_id, CAMERA_COMPID, "camera")
    adapter = MavlinkCamera(link, listen_host="127.0.0.1", restart_after_s=1.0)
    await link.watchdog.state.wait_for(lambda s: s.connected, 5.0)
    yield adapter
    adapter.close()


def render_threads(nest_id: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"sitl.camera.{nest_id}"]


async def collect(camera: MavlinkCamera, count: int, timeout_s: float = 10.0) -> list[AccessUnit]:
    units: list[AccessUnit] = []
    async with asyncio.timeout(timeout_s):
        async for unit in camera.access_units():
            units.append(unit)
            if len(units) == count:
                break
    return units


def decode(units: list[AccessUnit]) -> list[np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    frames: list[np.ndarray] = []
    for unit in units:
        frames += [f.to_ndarray(format="bgr24") for f in decoder.decode(av.Packet(unit.data))]
    return frames


async def test_is_a_camera_and_advertises_its_stream(camera: MavlinkCamera, simulated: SimulatedNest) -> None:
    _: Camera = camera  # the protocol, checked by mypy
    info = await camera.stream_info()
    assert info.transport is VideoTransport.RTP_UDP
    assert info.encoding is VideoEncoding.H264
    assert (info.width_px, info.height_px, info.framerate_hz) == (1280, 720, 30.0)
    assert udp_port(info.uri) == simulated.nest.camera.video_port
    assert render_threads(simulated.nest.site.nest_id) == []  # advertising costs no rendering


def test_stream_uri_forms() -> None:
    assert udp_port("udp://0.0.0.0:5603") == 5603
    assert udp_port("udp://@:5604") == 5604
    assert udp_port("5605") == 5605
    with pytest.raises(ValueError):
        udp_port("rtsp://10.0.0.1/live")


async def test_streams_h264_that_decodes_with_its_capture_time(
    camera: MavlinkCamera, simulated: SimulatedNest
) -> None:
    nest_id = simulated.nest.site.nest_id
    assert render_threads(nest_id) == []
    await camera.start_streaming()
    assert len(render_threads(nest_id)) == 1
    units = await collect(camera, 40)
    assert units[0].keyframe
    assert sum(u.keyframe for u in units) >= 1
    frames = decode(units)
    assert len(frames) == len(units)
    assert {f.shape for f in frames} == {(720, 1280, 3)}
    assert [read_capture_time_us(f) for f in frames] == [u.capture_time_us for u in units]
    now_us = time.time_ns() // 1000
    for unit in units:
        assert unit.capture_time_us is not None
        # A sanity bound only (the machine may be loaded): bench/ measures the latency.
        assert 0 <= unit.received_time_us - unit.capture_time_us < 2_000_000
        assert now_us - unit.capture_time_us < 5_000_000
    captured_us = [u.capture_time_us or 0 for u in units]
    rtp_ticks = units[-1].rtp_timestamp - units[0].rtp_timestamp  # 90 kHz, paced like the captures
    assert rtp_ticks == pytest.approx(90_000 * (captured_us[-1] - captured_us[0]) / 1e6, rel=0.2)

    # Stop: the iterator ends, the simulator's render thread ends and sends nothing more.
    ended = asyncio.ensure_future(collect(camera, 10_000))
    await wait_until(lambda: camera.reader_count == 1)
    await camera.stop_streaming()
    await asyncio.wait_for(ended, 2.0)
    await wait_until(lambda: render_threads(nest_id) == [])
    assert not simulated.nest.camera.streaming
    records = [r.kind for r in simulated.nest.ctx.recorder.all("camera.")]
    assert records == ["camera.stream_started", "camera.stream_stopped"]


async def test_readers_share_one_stream(camera: MavlinkCamera, simulated: SimulatedNest) -> None:
    await camera.start_streaming()
    await camera.start_streaming()  # idempotent
    first, second = await asyncio.gather(collect(camera, 35), collect(camera, 35))
    assert first[0].keyframe and second[0].keyframe
    assert {u.rtp_timestamp for u in first} & {u.rtp_timestamp for u in second}
    assert len(simulated.nest.ctx.recorder.all("camera.stream_started")) == 1
    await camera.stop_streaming()


async def test_stream_resumes_after_a_link_outage(camera: MavlinkCamera, simulated: SimulatedNest) -> None:
    nest = simulated.nest
    await camera.start_streaming()
    await collect(camera, 5)
    # 4.5 s without any traffic: the camera no longer hears us and stops streaming ...
    nest.inject(FaultKind.LINK_LOSS, duration_s=4.5 * SIM_SPEED)
    await wait_until(lambda: not nest.camera.streaming, 6.0)
    assert nest.ctx.recorder.all("camera.requester_lost")
    # ... and when the link is back the adapter asks again: video flows, from a keyframe.
    units = await collect(camera, 5, timeout_s=10.0)
    assert units[0].keyframe
    assert len(nest.ctx.recorder.all("camera.stream_started")) == 2
    await camera.stop_streaming()
