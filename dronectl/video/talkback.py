"""Talk-back: a viewer's microphone, received in its WHEP session, played on the drone's loudspeaker.

aiortc decodes the viewer's audio (Opus) to PCM; it is resampled here to mono 16-bit at
``SAMPLE_RATE_HZ`` and cut into clips of about ``CLIP_S`` seconds. Each clip that is not
silence is uploaded to the payload (``Payload.upload_clip``) and played (``play_clip``), over a
small ring of clip ids so the payload's store stays bounded. A clip that cannot be sent before
the next is ready is dropped (late speech is worth less than current speech).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
import structlog
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from adapters.protocols import AudioClip, Payload

log = structlog.get_logger(__name__)

SAMPLE_RATE_HZ = 8000  # speech on a loudspeaker; halves the upload of 16 kHz over MAVLink
CLIP_S = 2.0
MIN_TAIL_S = 0.3  # a shorter remainder when the viewer stops is not sent
SILENCE_DBFS = -50.0
CLIP_IDS = tuple(range(65001, 65009))
PENDING_CLIPS = 2


def level_dbfs(pcm_s16le: bytes) -> float:
    samples = np.frombuffer(pcm_s16le, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(samples * samples)))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


@dataclass
class TalkBackStats:
    frames: int = 0
    samples: int = 0
    clips_sent: int = 0
    clips_silent: int = 0
    clips_dropped: int = 0
    clips_failed: int = 0
    last_upload_s: float = 0.0  # how long the last clip took to reach the payload


class TalkBack:
    def __init__(
        self,
        nest_id: int,
        payload: Callable[[], Payload | None],
        *,
        sample_rate_hz: int = SAMPLE_RATE_HZ,
        clip_s: float = CLIP_S,
    ) -> None:
        self.nest_id = nest_id
        self._payload = payload
        self.sample_rate_hz = sample_rate_hz
        self.clip_bytes = int(clip_s * sample_rate_hz) * 2
        self.stats = TalkBackStats()
        self.sent_clips: list[AudioClip] = []  # the last few, for whoever checks what was sent
        self._clips: asyncio.Queue[bytes | None] = asyncio.Queue(PENDING_CLIPS)
        self._next_id = 0

    async def run(self, track: MediaStreamTrack) -> None:
        """Receive ``track`` until it ends, sending each clip on to the payload."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._forward(), name=f"video.talkback[{self.nest_id:02d}].send")
            try:
                await self._receive(track)
            finally:
                self._queue_clip(None)

    async def _receive(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=self.sample_rate_hz)
        pcm = bytearray()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
            if not isinstance(frame, av.AudioFrame):
                continue
            self.stats.frames += 1
            for out in resampler.resample(frame):
                pcm += out.to_ndarray().tobytes()
                self.stats.samples += out.samples
            while len(pcm) >= self.clip_bytes:
                self._queue_clip(bytes(pcm[: self.clip_bytes]))
                del pcm[: self.clip_bytes]
        if len(pcm) >= MIN_TAIL_S * self.sample_rate_hz * 2:
            self._queue_clip(bytes(pcm))

    def _queue_clip(self, pcm: bytes | None) -> None:
        if pcm is not None and level_dbfs(pcm) < SILENCE_DBFS:
            self.stats.clips_silent += 1
            return
        if self._clips.full():
            self._clips.get_nowait()
            self.stats.clips_dropped += 1
        self._clips.put_nowait(pcm)

    async def _forward(self) -> None:
        while (pcm := await self._clips.get()) is not None:
            payload = self._payload()
            clip = AudioClip(CLIP_IDS[self._next_id % len(CLIP_IDS)], pcm, self.sample_rate_hz)
            self._next_id += 1
            if payload is None:
                self.stats.clips_failed += 1
                log.warning("video.talkback_no_payload", nest=self.nest_id)
                continue
            started_s = time.monotonic()
            try:
                await payload.upload_clip(clip)
                self.stats.last_upload_s = time.monotonic() - started_s
                await payload.play_clip(clip.clip_id)
            except Exception as exc:  # noqa: BLE001 - a failed clip is reported; the next may pass
                self.stats.clips_failed += 1
                log.warning("video.talkback_failed", nest=self.nest_id, clip=clip.clip_id, error=str(exc))
                continue
            self.stats.clips_sent += 1
            self.sent_clips = [*self.sent_clips[-7:], clip]
            log.info("video.talkback_clip", nest=self.nest_id, clip=clip.clip_id, duration_s=clip.duration_s)
