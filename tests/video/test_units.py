"""Pure parts: offer checks, timestamps, the recording file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from adapters.protocols import AccessUnit
from dronectl.transports.whep.offer import AudioWish, check_offer
from dronectl.video.timeline import Timeline
from dronectl.video.video_file import VideoFile
from sitl.camera.encoder import H264Encoder
from tests.video.test_refusals import without_h264


async def offer(audio: str | None = None) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction=audio)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_offer_checks() -> None:
    assert check_offer(await offer()).audio is AudioWish.NONE
    assert check_offer(await offer("sendrecv")).audio is AudioWish.TALK
    assert check_offer(await offer("recvonly")).audio is AudioWish.NONE
    with pytest.raises(ValueError, match=r"no H\.264"):
        check_offer(without_h264(await offer()))
    with pytest.raises(ValueError, match="SDP"):
        check_offer("hello")
    sendonly = (await offer()).replace("a=recvonly", "a=sendonly")
    with pytest.raises(ValueError, match="must receive"):
        check_offer(sendonly)


def au(ts: int, received_us: int) -> AccessUnit:
    return AccessUnit(b"\x00\x00\x00\x01\x41", ts & 0xFFFFFFFF, False, None, received_us)


def test_timeline_follows_the_camera_clock_across_wrap_and_restart() -> None:
    timeline = Timeline()
    base = 2**32 - 3000
    assert [timeline.next_pts(au(base + 3000 * i, 33_333 * i)) for i in range(3)] == [0, 3000, 6000]
    assert timeline.next_pts(au(2**31, 2 * 33_333 + 100_000)) == 6000 + 9000  # new base: by the clock


def encoded_units(count: int) -> list[AccessUnit]:
    encoder = H264Encoder(320, 240, 30, 500_000, 30)
    out = []
    for i in range(count):
        image = np.full((240, 320, 3), (i * 7) % 255, np.uint8)
        for index, data in encoder.encode(image, i):
            out.append(AccessUnit(data, 3000 * index, index % 30 == 0, None, index * 33_333))
    return out


def test_video_file_muxes_without_reencoding(tmp_path: Path) -> None:
    units = encoded_units(61)
    file = VideoFile(tmp_path / "f.mp4")
    for u in units[5:]:  # starts mid-GOP: waits for the keyframe
        file.write(u)
    assert file.close() and file.error is None
    assert file.units == 31 and file.dropped == 25
    with av.open(str(tmp_path / "f.mp4")) as container:
        packets = [bytes(p) for p in container.demux(video=0) if p.size]
        assert container.streams.video[0].codec_context.width == 320
    assert len(packets) == 31
    assert sum(map(len, packets)) >= sum(len(u.data) for u in units[30:]) * 0.95  # the same pictures


def test_an_empty_recording_makes_no_file(tmp_path: Path) -> None:
    file = VideoFile(tmp_path / "none.mp4")
    assert file.close() and not (tmp_path / "none.mp4").exists()
