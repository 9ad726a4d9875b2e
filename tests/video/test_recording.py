"""Each flight's video is recorded to a file, referenced from the flight's record."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import pytest

from adapters.camera_timecode import read_capture_time_us
from dronectl.audit import AuditStore
from tests.adapters.fake_peer import wait_until
from tests.video.conftest import VideoSystem

NEST = 3


@pytest.fixture
def recordings_dir(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


def decode(path: Path) -> tuple[str, list[av.VideoFrame]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, list(container.decode(stream))


async def test_a_flight_is_recorded_and_referenced_from_its_record(
    video: VideoSystem, recordings_dir: Path
) -> None:
    nest = video.system.nest(NEST)
    assert not video.hub.ingest_running(NEST)  # on the ground: no recorder, no stream
    await video.launch(NEST, distance_m=100.0, alt_m=25.0)
    flight = nest.flight
    assert flight is not None

    def keyframes() -> int:
        stats = video.hub.stats(NEST)
        return stats.keyframes if stats is not None else 0

    await wait_until(lambda: keyframes() >= 3, 20.0, "three seconds of video")
    await nest.return_home("test over")
    await video.system.wait(NEST, lambda c: c.flight is None, 120.0)
    await wait_until(
        lambda: (
            not video.hub.ingest_running(NEST)
            and not any(t.name == f"sitl.camera.{NEST}" for t in threading.enumerate())
        ),
        15.0,
        "the camera stream to end",
    )
    recorders = video.hub.recorders
    assert recorders is not None
    await wait_until(lambda: not recorders.recording, 10.0, "the recorder to finish")

    async with await AuditStore.open(video.system.audit_path) as audit:
        detail = await audit.flight(flight.flight_id)
    assert detail is not None
    events = {e["kind"]: e["data"] or {} for e in detail["events"]}
    recording, recorded = events["video_recording"], events["video_recorded"]
    path = Path(recording["path"])
    assert path.parent == recordings_dir and recorded["bytes"] > 100_000
    assert recorded["pictures"] > 60

    codec, frames = decode(path)
    assert codec == "h264" and len(frames) == recorded["pictures"]
    assert (frames[0].width, frames[0].height) == (1280, 720)
    times = [t for f in frames if (t := read_capture_time_us(f.to_ndarray(format="bgr24"))) is not None]
    assert len(times) > 0.9 * len(frames) and times == sorted(times)
