"""A nest's live video as decoded BGR frames, a few a second, for analysis.

:class:`FrameSampler` joins the nest's ingest on the :class:`~dronectl.video.hub.VideoHub` (as
one more subscriber: the camera is not asked for anything new) and decodes its H.264 access
units with PyAV in a worker thread of its own, never on the event loop:

- Every access unit is decoded (a P picture needs the ones before it), but only the pictures due
  at ``max_fps`` are converted to BGR and handed on. With ``keyframes_only`` only keyframes are
  decoded at all (one a second from the simulated camera): the cheapest way to look at 1 fps.
- Pacing follows the stream's own clock (each unit's arrival time as the camera adapter stamped
  it), so a burst of queued units does not become a burst of frames.
- Each frame's capture time is read from the time code in its top rows
  (``adapters.camera_timecode``), else taken from the unit when the camera said it, else None.
- A reader slower than ``max_fps`` gets the newest frames: older undelivered ones are dropped.
- A unit that does not decode is skipped; decoding resumes at the next keyframe.

The iteration ends when the hub ends the subscription (the hub closes, or the camera failed for
good). ``async with`` leaves the ingest and stops the worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import structlog

from adapters.camera_timecode import read_capture_time_us
from adapters.protocols import AccessUnit
from dronectl.video.hub import Subscription, VideoHub

log = structlog.get_logger(__name__)

QUEUE_FRAMES = 2


@dataclass(frozen=True)
class VideoFrame:
    image_bgr: npt.NDArray[np.uint8]
    nest_id: int
    received_mono_s: float  # time.monotonic() when its access unit reached the sampler
    capture_unix_s: float | None  # from the picture's time code when readable (else the camera's word)


@dataclass
class SamplerStats:
    units: int = 0  # access units received
    decoded: int = 0  # pictures decoded
    frames: int = 0  # frames handed on
    dropped: int = 0  # frames replaced by newer ones before the reader took them
    errors: int = 0  # units that did not decode


class _Decoder:
    """The H.264 decoder; used only from the sampler's worker thread, one call at a time."""

    def __init__(self) -> None:
        self.codec: Any = av.CodecContext.create("h264", "r")
        self.need_keyframe = True

    def decode(self, unit: AccessUnit, convert: bool) -> npt.NDArray[np.uint8] | None:
        """Decode ``unit``; its picture in BGR when ``convert`` (and it decoded), else None."""
        if self.need_keyframe and not unit.keyframe:
            return None
        try:
            pictures = self.codec.decode(av.Packet(unit.data))
        except av.error.FFmpegError:
            self.need_keyframe = True
            raise
        self.need_keyframe = False
        if not pictures or not convert:
            return None
        image: npt.NDArray[np.uint8] = pictures[-1].to_ndarray(format="bgr24")
        return image


class FrameSampler:
    """``async with FrameSampler(hub, nest_id, "lookout") as frames: async for frame in frames``."""

    def __init__(
        self,
        hub: VideoHub,
        nest_id: int,
        purpose: str,
        max_fps: float = 2.0,
        *,
        keyframes_only: bool = False,
        queue_frames: int = QUEUE_FRAMES,
    ) -> None:
        if not 0.0 < max_fps <= 120.0:
            raise ValueError(f"max_fps {max_fps} outside (0, 120]")
        if queue_frames < 1:
            raise ValueError("queue_frames must be at least 1")
        self.hub = hub
        self.nest_id = nest_id
        self.purpose = purpose
        self.period_s = 1.0 / max_fps
        self.keyframes_only = keyframes_only
        self.stats = SamplerStats()
        self._queue: asyncio.Queue[VideoFrame | None] = asyncio.Queue(queue_frames)
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._next_due_s: float | None = None
        self._ended = False

    async def __aenter__(self) -> FrameSampler:
        """Join the nest's ingest. Raises what ``VideoHub.subscribe`` raises (UnknownNest,
        NotWatchable, CameraUnavailable)."""
        self._subscription = await self.hub.subscribe(self.nest_id, self.purpose)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"vision-decode-{self.nest_id:02d}")
        self._task = asyncio.create_task(
            self._pump(self._subscription), name=f"vision.frames[{self.nest_id:02d}]"
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # its end, without swallowing a cancellation of our own
        if self._subscription is not None:
            self._subscription.close()
        if self._executor is not None:
            # A decode in progress finishes on its own; nothing waits for it.
            self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("vision.frames_stopped", nest=self.nest_id, purpose=self.purpose, **vars(self.stats))

    def __aiter__(self) -> FrameSampler:
        return self

    async def __anext__(self) -> VideoFrame:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        frame = await self._queue.get()
        if frame is None:
            self._ended = True
            raise StopAsyncIteration
        return frame

    # the pump ---------------------------------------------------------------------------------------
    async def _pump(self, subscription: Subscription) -> None:
        loop = asyncio.get_running_loop()
        decoder = _Decoder()
        assert self._executor is not None
        try:
            async for unit in subscription:
                received_mono_s = time.monotonic()
                self.stats.units += 1
                if self.keyframes_only and not unit.keyframe:
                    continue
                slot = self._next_due_s
                due = self._due(unit)
                try:
                    image = await loop.run_in_executor(self._executor, decoder.decode, unit, due)
                except av.error.FFmpegError as exc:
                    self.stats.errors += 1
                    self._next_due_s = slot  # no picture came of it: the next one takes its turn
                    log.debug("vision.decode_failed", nest=self.nest_id, error=str(exc))
                    continue
                self.stats.decoded += 1
                if due and image is None:
                    self._next_due_s = slot  # no picture (it waits for a keyframe): the next takes its turn
                if image is not None:
                    self._hand_on(VideoFrame(image, self.nest_id, received_mono_s, _capture_s(image, unit)))
        except Exception:  # a bug here must not take the caller's task down with it; it is logged
            log.exception("vision.frames_failed", nest=self.nest_id)
        finally:
            _put_latest(self._queue, None)

    def _due(self, unit: AccessUnit) -> bool:
        """Whether ``unit``'s picture is the next one due at ``max_fps`` (by its arrival time)."""
        t = unit.received_time_us / 1e6
        due = self._next_due_s
        # First, due (2 % early is on time: a stream at exactly max_fps stamps its frames that
        # close to the period), or the clock stepped back.
        if due is None or t >= due - 0.02 * self.period_s or t < due - 2.0 * self.period_s:
            self._next_due_s = (
                t + self.period_s if due is None or abs(t - due) > self.period_s else due + self.period_s
            )
            return True
        return False

    def _hand_on(self, frame: VideoFrame) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.stats.dropped += 1
        self._queue.put_nowait(frame)
        self.stats.frames += 1


def _capture_s(image: npt.NDArray[np.uint8], unit: AccessUnit) -> float | None:
    capture_us = read_capture_time_us(image)
    if capture_us is None:
        capture_us = unit.capture_time_us
    return capture_us / 1e6 if capture_us is not None else None


def _put_latest(queue: asyncio.Queue[VideoFrame | None], item: VideoFrame | None) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
