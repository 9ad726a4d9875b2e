"""The frame sampler against the video hub, with a camera the test drives: real H.264 units, as
the simulated camera encodes them (rendered by its renderer, time code and all)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from adapters.protocols import AccessUnit
from dronectl.automations.vision import frames as frames_module
from dronectl.automations.vision.frames import FrameSampler, VideoFrame
from dronectl.automations.vision.geometry import CameraOptics
from dronectl.automations.vision.ice import find_ice
from dronectl.domain.geo import GeoPoint
from dronectl.video.errors import UnknownNest
from dronectl.video.hub import VideoHub
from sitl.camera.encoder import H264Encoder
from sitl.camera.render import CameraPose, Optics, Renderer
from sitl.camera.scene import SceneSnapshot
from tests.adapters.fake_peer import wait_until
from tests.video.fakes import FakeCamera, OneNest
from tests.vision.scenes import EW_AVENUE_LAT, NS_AVENUE_LON, ew_ice

FPS = 30
GOP = 15
WIDTH, HEIGHT = 640, 360  # small: quick to encode; the time code needs width // 80 >= 4
T0_US = 1_796_000_000_000_000
SPOT = GeoPoint(EW_AVENUE_LAT, NS_AVENUE_LON + 0.00075)
ICE = ew_ice(NS_AVENUE_LON + 0.0002, NS_AVENUE_LON + 0.0013)


def capture_us(index: int) -> int:
    return T0_US + index * 1_000_000 // FPS


def encoded_units(count: int, first: int = 0) -> list[AccessUnit]:
    """``count`` access units (a keyframe every GOP) of an icy avenue seen from 40 m."""
    renderer = Renderer(Optics(WIDTH, HEIGHT))
    encoder = H264Encoder(WIDTH, HEIGHT, FPS, 1_000_000, GOP)
    scene = SceneSnapshot(ice=(ICE,), winter=True)
    units: list[AccessUnit] = []
    for i in range(first, first + count):
        pose = CameraPose(SPOT.lat_deg, SPOT.lon_deg, 40.0, 0.0, 100.0 + i / FPS)
        for index, data in encoder.encode(renderer.render(pose, scene, capture_us(i)), i - first):
            n = first + index
            # Arrival: 40 ms after capture (the stream's own clock the sampler paces by).
            units.append(AccessUnit(data, n * 3000, (n - first) % GOP == 0, None, capture_us(n) + 40_000))
    return units


UNITS = encoded_units(2 * FPS)  # 2 s of video, made once for the module


async def take(sampler: FrameSampler, count: int, timeout_s: float = 5.0) -> list[VideoFrame]:
    frames: list[VideoFrame] = []
    async with asyncio.timeout(timeout_s):
        while len(frames) < count:
            frames.append(await anext(sampler))
    return frames


async def test_frames_come_decoded_at_most_max_fps_with_their_capture_time() -> None:
    camera = FakeCamera()
    hub = VideoHub(OneNest(camera))
    async with hub, FrameSampler(hub, 3, "vision", max_fps=4.0, queue_frames=16) as sampler:
        await wait_until(lambda: camera.readers == 1)
        for unit in UNITS:
            camera.push(unit)
        await wait_until(lambda: sampler.stats.decoded == len(UNITS), what="every unit decoded")
        got = await take(sampler, sampler.stats.frames)
    # 2 s of video at 4 fps: a frame every 0.25 s of stream time, each with its own capture time.
    assert len(got) == 8
    times = [f.capture_unix_s for f in got]
    assert times == [capture_us(i) / 1e6 for i in (0, 8, 15, 23, 30, 38, 45, 53)]
    for frame in got:
        assert frame.nest_id == 3 and frame.image_bgr.shape == (HEIGHT, WIDTH, 3)
        assert frame.image_bgr.dtype == np.uint8
    assert [f.received_mono_s for f in got] == sorted(f.received_mono_s for f in got)
    # What was decoded is the picture: the ice is there, where it was drawn.
    gsd = CameraOptics(WIDTH, HEIGHT, 82.0).gsd_m(40.0)
    assert all(find_ice(f.image_bgr, gsd_m=gsd).found for f in got)
    assert sampler.stats.errors == 0 and sampler.stats.dropped == 0


async def test_a_slow_reader_gets_the_newest_frames() -> None:
    camera = FakeCamera()
    async with VideoHub(OneNest(camera)) as hub:
        async with FrameSampler(hub, 3, "vision", max_fps=30.0, queue_frames=2) as sampler:
            await wait_until(lambda: camera.readers == 1)
            for unit in UNITS[:20]:
                camera.push(unit)
            await wait_until(lambda: sampler.stats.decoded == 20, what="every unit decoded")
            newest = await take(sampler, 2)
            assert [f.capture_unix_s for f in newest] == [capture_us(18) / 1e6, capture_us(19) / 1e6]
            assert sampler.stats.dropped == 18
        assert hub.subscriber_count(3) == 0  # leaving the sampler left the ingest
        await wait_until(lambda: not hub.ingest_running(3), what="the ingest to stop")
    assert camera.stops == 1


async def test_keyframes_only_decodes_only_keyframes() -> None:
    camera = FakeCamera()
    async with (
        VideoHub(OneNest(camera)) as hub,
        FrameSampler(hub, 3, "lookout", max_fps=30.0, keyframes_only=True, queue_frames=8) as sampler,
    ):
        await wait_until(lambda: camera.readers == 1)
        for unit in UNITS:
            camera.push(unit)
        frames = await take(sampler, 2)
        await wait_until(lambda: sampler.stats.units == len(UNITS), what="every unit received")
        frames += await take(sampler, sampler.stats.frames - 2)
    assert [f.capture_unix_s for f in frames] == [capture_us(i) / 1e6 for i in range(0, len(UNITS), GOP)]
    assert sampler.stats.decoded == len(UNITS) // GOP


async def test_a_unit_that_does_not_decode_is_skipped_until_the_next_keyframe() -> None:
    camera = FakeCamera()
    async with VideoHub(OneNest(camera)) as hub, FrameSampler(hub, 3, "vision", max_fps=1.0) as sampler:
        await wait_until(lambda: camera.readers == 1)
        junk = AccessUnit(b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 4, 0, True, None, T0_US)
        camera.push(junk)
        for unit in UNITS[: GOP + 1]:
            camera.push(unit)
        [frame] = await take(sampler, 1)
        assert frame.capture_unix_s == capture_us(0) / 1e6
        assert find_ice(frame.image_bgr).found
        assert sampler.stats.errors == 1


async def test_the_iteration_ends_when_the_hub_closes_and_decoding_is_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoding_threads: set[str] = set()
    decode = frames_module._Decoder.decode

    def recorded(self: frames_module._Decoder, unit: AccessUnit, convert: bool) -> object:
        decoding_threads.add(threading.current_thread().name)
        return decode(self, unit, convert)

    monkeypatch.setattr(frames_module._Decoder, "decode", recorded)
    camera = FakeCamera()
    async with VideoHub(OneNest(camera)) as hub, FrameSampler(hub, 3, "vision", max_fps=2.0) as sampler:
        await wait_until(lambda: camera.readers == 1)
        camera.push(UNITS[0])
        [frame] = await take(sampler, 1)
        assert frame.capture_unix_s == capture_us(0) / 1e6
        reader = asyncio.create_task(anext(sampler))
        await hub.__aexit__(None, None, None)  # the hub closes under the reader
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 5.0)
    # Decoded in the sampler's own worker thread, never on the event loop's.
    assert decoding_threads and all(name.startswith("vision-decode-03") for name in decoding_threads)
    assert threading.current_thread().name not in decoding_threads


async def test_an_unknown_nest_is_refused() -> None:
    async with VideoHub(OneNest(FakeCamera())) as hub:
        with pytest.raises(UnknownNest):
            async with FrameSampler(hub, 9, "vision"):
                pass
    with pytest.raises(ValueError, match="max_fps"):
        FrameSampler(hub, 3, "vision", max_fps=0.0)
