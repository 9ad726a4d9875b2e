"""A WHEP viewer made with aiortc, as a browser would be: offer, answer, frames, DELETE."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import h264
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from adapters.camera_timecode import read_capture_time_us

# Encoded frames as this process's aiortc receivers got them, before decoding (thread-safe appends).
RECEIVED_ENCODED: list[bytes] = []
_original_decode = h264.H264Decoder.decode
_patch_lock = threading.Lock()


def _recording_decode(self: h264.H264Decoder, encoded_frame: Any) -> list[Any]:
    RECEIVED_ENCODED.append(bytes(encoded_frame.data))
    return _original_decode(self, encoded_frame)


def record_received_frames() -> None:
    """Keep a copy of every H.264 frame the viewers receive (as sent on the wire, reassembled)."""
    with _patch_lock:
        h264.H264Decoder.decode = _recording_decode


@dataclass
class Picture:
    width: int
    height: int
    capture_time_us: int | None
    decoded_time_us: int


@dataclass
class WhepViewer:
    client: TestClient[web.Request, web.Application]
    token: str
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
    pictures: list[Picture] = field(default_factory=list)
    location: str | None = None
    answer: str | None = None
    _task: asyncio.Task[None] | None = None
    _new_picture: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, nest_id: int, audio: MediaStreamTrack | None = None) -> None:
        self.pc.addTransceiver("video", direction="recvonly")
        if audio is not None:
            self.pc.addTransceiver(audio, direction="sendrecv")

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._task = asyncio.create_task(self._receive(track), name="test.viewer")

        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await self.client.post(
            f"/whep/nests/{nest_id}",
            data=self.pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"},
        )
        body = await resp.text()
        assert resp.status == 201, body
        assert resp.content_type == "application/sdp"
        self.location = resp.headers["Location"]
        self.answer = body
        await self.pc.setRemoteDescription(RTCSessionDescription(body, "answer"))

    async def _receive(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.VideoFrame)
            image = frame.to_ndarray(format="bgr24")
            now_us = _now_us()
            self.pictures.append(Picture(frame.width, frame.height, read_capture_time_us(image), now_us))
            self._new_picture.set()

    async def wait_pictures(self, count: int, timeout_s: float = 20.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.pictures) < count:
                self._new_picture.clear()
                await self._new_picture.wait()

    async def leave(self) -> int:
        assert self.location is not None
        resp = await self.client.delete(self.location, headers={"Authorization": f"Bearer {self.token}"})
        await self.close()
        return resp.status

    async def close(self) -> None:
        await self.pc.close()
        if self._task is not None:
            self._task.cancel()


def _now_us() -> int:
    return time.time_ns() // 1000


class ToneTrack(AudioStreamTrack):
    """A microphone that hums: a sine at ``frequency_hz``, mono, 20 ms frames, paced in real time."""

    def __init__(self, frequency_hz: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency_hz = frequency_hz
        self.amplitude = amplitude
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        silence = await super().recv()  # paces in real time; gives the rate, pts and time base
        rate, n = silence.sample_rate, silence.samples
        t = (np.arange(n) + self._samples) / rate
        self._samples += n
        pcm = (self.amplitude * 32767 * np.sin(2 * np.pi * self.frequency_hz * t)).astype("<i2")
        tone = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        tone.sample_rate = rate
        tone.pts = silence.pts
        tone.time_base = Fraction(1, rate)
        return tone


def dominant_frequency_hz(pcm_s16le: bytes, sample_rate_hz: int) -> float:
    samples = np.frombuffer(pcm_s16le, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * sample_rate_hz / samples.size)
