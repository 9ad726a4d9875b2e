"""The hub's fan-out and lifecycle, with a camera the test drives (no network, no simulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from adapters.protocols import AccessUnit, Camera
from dronectl.video.errors import CameraUnavailable, NotWatchable, UnknownNest
from dronectl.video.hub import QUEUE_UNITS, Subscription, VideoHub
from tests.adapters.fake_peer import wait_until
from tests.video.fakes import FakeCamera, OneNest, unit


async def until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    await wait_until(predicate, timeout_s)


async def take(sub: Subscription, count: int) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    async with asyncio.timeout(2):
        while len(out) < count:
            out.append(await anext(sub))
    return out


async def test_one_ingest_fanned_out_and_stopped_after_the_last_leaves() -> None:
    camera = FakeCamera()
    _: Camera = camera
    async with VideoHub(OneNest(camera)) as hub:
        first = await hub.subscribe(3, "a")
        second = await hub.subscribe(3, "b")
        await until(lambda: camera.readers == 1)
        assert camera.starts == 1 and hub.subscriber_count(3) == 2
        camera.push(unit(0))  # before any keyframe: nobody can decode it
        for i in range(1, 4):
            camera.push(unit(i, keyframe=i == 1))
        got_first, got_second = await take(first, 3), await take(second, 3)
        assert (
            [u.rtp_timestamp for u in got_first]
            == [u.rtp_timestamp for u in got_second]
            == [4000, 7000, 10000]
        )
        first.close()
        assert hub.ingest_running(3) and camera.stops == 0
        second.close()
        await until(lambda: not hub.ingest_running(3))
        assert camera.stops == 1 and not camera.streaming
        with pytest.raises(StopAsyncIteration):
            await anext(second)


async def test_a_new_viewer_starts_with_the_latest_keyframe_then_waits_for_the_next() -> None:
    camera = FakeCamera()
    async with VideoHub(OneNest(camera)) as hub:
        early = await hub.subscribe(3, "early")
        await until(lambda: camera.readers == 1)
        camera.push(unit(0, keyframe=True))
        camera.push(unit(1))
        await take(early, 2)
        late = await hub.subscribe(3, "late")
        camera.push(unit(2))  # refers to 0 and 1: useless to the late viewer after only 0
        camera.push(unit(3, keyframe=True))
        got = await take(late, 2)
        assert [(u.rtp_timestamp, u.keyframe) for u in got] == [(1000, True), (1000 + 9000, True)]
        recorder = await hub.subscribe(3, "recorder", fast_start=False)
        camera.push(unit(4))
        camera.push(unit(5, keyframe=True))
        assert [u.keyframe for u in await take(recorder, 1)] == [True]


async def test_a_viewer_that_falls_behind_resumes_at_a_keyframe() -> None:
    camera = FakeCamera()
    async with VideoHub(OneNest(camera)) as hub:
        slow = await hub.subscribe(3, "slow")
        await until(lambda: camera.readers == 1)
        for i in range(QUEUE_UNITS + 5):
            camera.push(unit(i, keyframe=i % 30 == 0))
        await until(lambda: slow.dropped > 0)
        [first] = await take(slow, 1)
        assert first.keyframe


async def test_refusals_and_a_camera_that_will_not_start() -> None:
    async with VideoHub(OneNest(FakeCamera(refuse=True))) as hub:
        with pytest.raises(UnknownNest):
            await hub.subscribe(9, "x")
        with pytest.raises(CameraUnavailable, match="camera busy"):
            await hub.subscribe(3, "x")
        assert not hub.ingest_running(3)
    async with VideoHub(OneNest(None)) as hub:
        with pytest.raises(NotWatchable, match="not connected"):
            hub.check_watchable(3)
    async with VideoHub(OneNest(FakeCamera(), airborne=False)) as hub:
        with pytest.raises(NotWatchable, match="not airborne"):
            hub.check_watchable(3)


async def test_closing_the_hub_stops_the_camera() -> None:
    camera = FakeCamera()
    async with VideoHub(OneNest(camera)) as hub:
        sub = await hub.subscribe(3, "a")
        await until(lambda: camera.readers == 1)
    assert camera.stops == 1
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_an_error_in_the_hubs_body_propagates_as_it_is() -> None:
    camera = FakeCamera()
    with pytest.raises(KeyError):
        async with VideoHub(OneNest(camera)) as hub:
            await hub.subscribe(3, "a")
            raise KeyError("the service's own failure, not an ExceptionGroup")
    assert camera.stops == 1
