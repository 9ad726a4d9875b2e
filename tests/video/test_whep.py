"""WHEP viewers against the simulator and the service: H.264 passed through, shared ingest."""

from __future__ import annotations

import asyncio
import threading

import cv2
import numpy as np

from adapters.protocols import AccessUnit
from adapters.rtp_h264 import read_capture_time_sei, split_annexb
from dronectl.transports.whep.routes import SESSIONS
from tests.adapters.fake_peer import wait_until
from tests.video.conftest import VideoSystem
from tests.video.whep_client import RECEIVED_ENCODED, WhepViewer, record_received_frames

NEST = 3


def render_threads(nest_id: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"sitl.camera.{nest_id}"]


def video_codecs(answer: str) -> list[str]:
    """The codec names of the answer's video section."""
    names: list[str] = []
    in_video = False
    for line in answer.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=rtpmap:"):
            names.append(line.split()[1].split("/")[0])
    return names


def capture_time(nals: list[bytes]) -> int | None:
    return next((t for nal in nals if (t := read_capture_time_sei(nal)) is not None), None)


async def test_viewer_receives_the_cameras_h264_untouched(video: VideoSystem) -> None:
    record_received_frames()
    RECEIVED_ENCODED.clear()
    await video.launch(NEST)
    camera_units: list[AccessUnit] = []
    viewer = WhepViewer(video.client, "observer-token")
    await viewer.connect(NEST)
    # the test also reads the ingest, to compare what the camera sent with what the viewer got
    tap = await video.hub.subscribe(NEST, "test tap", fast_start=False)

    async def read_tap() -> None:
        async for unit in tap:
            camera_units.append(unit)

    reader = asyncio.create_task(read_tap())
    await viewer.wait_pictures(45)

    assert video_codecs(viewer.answer or "") and set(video_codecs(viewer.answer or "")) <= {"H264", "rtx"}
    assert "profile-level-id=42e01f" in (viewer.answer or "")
    assert {(p.width, p.height) for p in viewer.pictures} == {(1280, 720)}
    stamped = [p for p in viewer.pictures if p.capture_time_us is not None]
    assert len(stamped) >= 40
    assert all(0 < p.decoded_time_us - (p.capture_time_us or 0) < 2_000_000 for p in stamped)

    # no transcoding: the sender only packs packets (aiortc opens no libx264 context) ...
    [session] = video.app[SESSIONS].sessions.values()
    encoder = session.pc.getSenders()[0]._RTCRtpSender__encoder
    assert encoder is not None and encoder.codec is None
    # ... and a received frame's NAL units are the camera's, byte for byte
    sent = {capture_time(split_annexb(u.data)): split_annexb(u.data) for u in camera_units}
    matched = 0
    for data in list(RECEIVED_ENCODED):
        nals = split_annexb(data)
        when = capture_time(nals)
        if when in sent:
            assert nals == sent[when]
            matched += 1
    assert matched >= 10

    tap.close()
    reader.cancel()
    assert await viewer.leave() == 200
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0)
    await wait_until(lambda: render_threads(NEST) == [], 10.0)


async def test_two_viewers_share_one_ingest_which_stops_when_both_left(video: VideoSystem) -> None:
    await video.launch(NEST)
    started_before = video.hub.ingests_started
    first = WhepViewer(video.client, "observer-token")
    second = WhepViewer(video.client, "pilot-token")
    await first.connect(NEST)
    await second.connect(NEST)
    await asyncio.gather(first.wait_pictures(30), second.wait_pictures(30))

    assert video.hub.ingests_started == started_before + 1
    assert video.hub.subscriber_count(NEST) == 2
    assert len(render_threads(NEST)) == 1  # one camera stream for both
    assert video.system.world.nest(NEST).camera.streaming
    assert first.location != second.location

    assert await first.leave() == 200
    await second.wait_pictures(len(second.pictures) + 15)  # the other one still watches
    assert video.hub.ingest_running(NEST)

    assert await second.leave() == 200
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0)
    await wait_until(
        lambda: render_threads(NEST) == [] and not video.system.world.nest(NEST).camera.streaming
    )
    assert render_threads(4) == []  # the other nest never streamed


async def test_snapshot_is_a_jpeg_of_the_live_picture(video: VideoSystem) -> None:
    headers = {"Authorization": "Bearer observer-token"}
    resp = await video.client.get(f"/video/nests/{NEST}/snapshot.jpg", headers=headers)
    assert resp.status == 409, await resp.text()  # on the ground: no live video
    await video.launch(NEST)
    resp = await video.client.get(f"/video/nests/{NEST}/snapshot.jpg", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (720, 1280, 3)
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0)  # it opened the stream only for this
