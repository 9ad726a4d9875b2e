"""One ingest per nest, fanned out to every viewer (and the flight recorder).

An ingest reads the nest's camera (``adapters.protocols.Camera``: coded H.264 access units,
never decoded here) and hands each unit to every :class:`Subscription`. It starts with the first
subscriber and stops with the last: the camera is told to stop streaming, and the simulator's
render thread ends. Nothing here decodes or encodes.

- A subscriber that falls behind loses what it had queued and resumes at the next keyframe.
- ``fast_start``: a new viewer first gets the latest keyframe (SPS, PPS, IDR; at most one GOP,
  1 s, old), so a picture appears at once; it then waits for the next keyframe, since the
  pictures in between refer to ones it never had.
- If the camera stops delivering while subscribers remain (its adapters were re-attached after a
  link loss), the ingest asks again, every ``retry_s``, with the camera the sources give now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from adapters.protocols import AccessUnit, Camera
from dronectl.video.errors import CameraUnavailable, NotWatchable, UnknownNest
from dronectl.video.sources import VideoSources

if TYPE_CHECKING:
    from dronectl.video.talk_audit import TalkAudit

log = structlog.get_logger(__name__)

QUEUE_UNITS = 60  # 2 s at 30 fps
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
RETRY_S = 1.0


class Subscription:
    """One reader of a nest's ingest: an async iterator of access units, from a keyframe on."""

    def __init__(self, hub: VideoHub, nest_id: int, purpose: str) -> None:
        self.hub = hub
        self.nest_id = nest_id
        self.purpose = purpose
        self.queue: asyncio.Queue[AccessUnit | None] = asyncio.Queue(QUEUE_UNITS)
        self.need_keyframe = True
        self.delivered = 0
        self.dropped = 0
        self.closed = False

    def __aiter__(self) -> AsyncIterator[AccessUnit]:
        return self

    async def __anext__(self) -> AccessUnit:
        if self.closed and self.queue.empty():
            raise StopAsyncIteration
        unit = await self.queue.get()
        if unit is None:
            self.closed = True
            raise StopAsyncIteration
        return unit

    def close(self) -> None:
        """Leave; the ingest stops when its last subscriber left. Idempotent."""
        if not self.closed:
            self.closed = True
            self.hub._leave(self)
        _put_latest(self.queue, None)

    def deliver(self, unit: AccessUnit) -> None:
        if self.closed or (self.need_keyframe and not unit.keyframe):
            return
        if self.queue.full():
            while not self.queue.empty():  # behind by QUEUE_UNITS: start again at a keyframe
                self.queue.get_nowait()
                self.dropped += 1
            self.need_keyframe = True
            if not unit.keyframe:
                return
        self.need_keyframe = False
        self.delivered += 1
        self.queue.put_nowait(unit)

    def end(self) -> None:
        """The ingest ended (it failed): the iterator ends after what is queued."""
        self.closed = True
        _put_latest(self.queue, None)


@dataclass
class IngestStats:
    camera_starts: int = 0  # successful start_streaming calls
    units: int = 0
    keyframes: int = 0
    bytes: int = 0


@dataclass
class _Ingest:
    nest_id: int
    subscribers: set[Subscription] = field(default_factory=set)
    started: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    last_keyframe: AccessUnit | None = None
    stats: IngestStats = field(default_factory=IngestStats)


class Recorders(Protocol):
    """The flight recorders fed by this hub (``recorder.FlightRecorders``), as the hub keeps them."""

    @property
    def recording(self) -> Mapping[int, tuple[str, asyncio.Task[None]]]:
        """nest -> (flight id, task) of each flight being recorded."""
        ...


class VideoHub:
    """``async with VideoHub(sources) as hub``: owns every ingest task; closing stops them all."""

    def __init__(
        self,
        sources: VideoSources,
        *,
        start_timeout_s: float = START_TIMEOUT_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.sources = sources
        self._start_timeout_s = start_timeout_s
        self._retry_s = retry_s
        self._ingests: dict[int, _Ingest] = {}
        self._stopping: dict[int, asyncio.Task[None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._spawned: set[asyncio.Task[None]] = set()
        self.recorders: Recorders | None = None  # set by open_video when it records flights
        self.talk_audit: TalkAudit | None = None  # set by open_video: talk-back in the audit store
        self.ingests_started = 0  # over the hub's life, for tests and the bench
        # called with the nest id when an ingest delivers its first picture: the stream reached
        # the service (the incident dispatcher's video-live milestone); cheap and synchronous
        self.live_listeners: list[Callable[[int], None]] = []

    async def __aenter__(self) -> VideoHub:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for ingest in list(self._ingests.values()):
            for sub in list(ingest.subscribers):
                sub.end()
            if ingest.task is not None:
                ingest.task.cancel()
        self._ingests.clear()
        for task in list(self._spawned):
            task.cancel()
        tg, self._tg = self._tg, None
        if tg is not None:
            # Every child was cancelled above; the body's own exception (if any) propagates as it is.
            await tg.__aexit__(None, None, None)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``coro`` under the hub (recorders, talk-back); its failure is logged, never raised.
        The hub's close cancels it."""
        if self._tg is None:
            coro.close()
            raise CameraUnavailable("the video hub is not running")
        task = self._tg.create_task(_logged(coro, name), name=name)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    @property
    def running(self) -> bool:
        return self._tg is not None

    # queries --------------------------------------------------------------------------------------
    def ingest_running(self, nest_id: int) -> bool:
        return nest_id in self._ingests or nest_id in self._stopping

    def subscriber_count(self, nest_id: int) -> int:
        ingest = self._ingests.get(nest_id)
        return len(ingest.subscribers) if ingest is not None else 0

    def stats(self, nest_id: int) -> IngestStats | None:
        ingest = self._ingests.get(nest_id)
        return ingest.stats if ingest is not None else None

    def check_watchable(self, nest_id: int) -> None:
        """Raise UnknownNest or NotWatchable unless a new viewer may open ``nest_id``'s video."""
        if not self.sources.known(nest_id):
            raise UnknownNest(nest_id)
        if not self.sources.airborne(nest_id):
            raise NotWatchable(f"nest {nest_id}'s drone is not airborne: no live video")
        if self.sources.camera(nest_id) is None:
            raise NotWatchable(f"nest {nest_id}'s camera is not connected")

    # subscribing ----------------------------------------------------------------------------------
    async def subscribe(self, nest_id: int, purpose: str, *, fast_start: bool = True) -> Subscription:
        """Join ``nest_id``'s ingest (starting it, and the camera, when it is the first).

        Raises UnknownNest, NotWatchable (no camera attached) or CameraUnavailable.
        """
        if not self.sources.known(nest_id):
            raise UnknownNest(nest_id)
        if self._tg is None:
            raise CameraUnavailable("the video hub is not running")
        lock = self._locks.setdefault(nest_id, asyncio.Lock())
        async with lock:
            ingest = self._ingests.get(nest_id)
            if ingest is None:
                if self.sources.camera(nest_id) is None:
                    raise NotWatchable(f"nest {nest_id}'s camera is not connected")
                stopping = self._stopping.get(nest_id)
                if stopping is not None:  # the last ingest is still telling the camera to stop
                    await asyncio.wait({stopping}, timeout=STOP_TIMEOUT_S + 1.0)
                ingest = self._start(nest_id)
            sub = Subscription(self, nest_id, purpose)
            ingest.subscribers.add(sub)
            if fast_start and ingest.last_keyframe is not None:
                sub.deliver(ingest.last_keyframe)
                sub.need_keyframe = True  # what follows it refers to pictures this viewer never had
        assert ingest.started is not None
        try:
            await asyncio.shield(ingest.started)
        except BaseException:
            sub.close()
            raise
        log.info("video.subscribed", nest=nest_id, purpose=purpose, subscribers=len(ingest.subscribers))
        return sub

    def _start(self, nest_id: int) -> _Ingest:
        assert self._tg is not None
        ingest = _Ingest(nest_id, started=asyncio.get_running_loop().create_future())
        ingest.task = self._tg.create_task(self._run(ingest), name=f"video.ingest[{nest_id:02d}]")
        self._ingests[nest_id] = ingest
        self.ingests_started += 1
        return ingest

    def _leave(self, sub: Subscription) -> None:
        ingest = self._ingests.get(sub.nest_id)
        if ingest is None or sub not in ingest.subscribers:
            return
        ingest.subscribers.discard(sub)
        log.info("video.left", nest=sub.nest_id, purpose=sub.purpose, subscribers=len(ingest.subscribers))
        if not ingest.subscribers:
            self._stop(ingest)

    def _stop(self, ingest: _Ingest) -> None:
        if self._ingests.get(ingest.nest_id) is ingest:
            del self._ingests[ingest.nest_id]
        task = ingest.task
        if task is not None and not task.done():
            task.cancel()
            self._stopping[ingest.nest_id] = task
            task.add_done_callback(lambda t: self._stopped(ingest.nest_id, t))

    def _stopped(self, nest_id: int, task: asyncio.Task[None]) -> None:
        if self._stopping.get(nest_id) is task:
            del self._stopping[nest_id]

    # the ingest -----------------------------------------------------------------------------------
    async def _run(self, ingest: _Ingest) -> None:
        nest_id = ingest.nest_id
        started = ingest.started
        assert started is not None
        camera: Camera | None = None
        try:
            while True:
                camera = self.sources.camera(nest_id)
                try:
                    if camera is None:
                        raise CameraUnavailable(f"nest {nest_id}'s camera is not connected")
                    async with asyncio.timeout(self._start_timeout_s):
                        await camera.start_streaming()
                    ingest.stats.camera_starts += 1
                    if not started.done():
                        started.set_result(None)
                        log.info("video.ingest_started", nest=nest_id)
                    async for unit in camera.access_units():
                        self._fan_out(ingest, unit)
                    log.warning("video.ingest_interrupted", nest=nest_id)
                except Exception as exc:  # noqa: BLE001 - a camera's failure is reported, never raised here
                    reason = _reason(nest_id, exc)
                    if not started.done():
                        started.set_exception(CameraUnavailable(reason))
                        log.warning("video.ingest_failed", nest=nest_id, error=reason)
                        return
                    log.warning("video.ingest_retry", nest=nest_id, error=reason)
                await asyncio.sleep(self._retry_s)
        finally:
            if not started.done():
                started.set_exception(CameraUnavailable(f"nest {nest_id}: video stopped"))
            if not started.cancelled():
                started.exception()  # retrieved: whoever waited has it; nobody else needs a warning
            for sub in list(ingest.subscribers):
                sub.end()
            ingest.subscribers.clear()
            if self._ingests.get(nest_id) is ingest:
                del self._ingests[nest_id]
            if camera is not None:
                await _stop_camera(nest_id, camera)
            log.info("video.ingest_stopped", nest=nest_id, units=ingest.stats.units)

    def _fan_out(self, ingest: _Ingest, unit: AccessUnit) -> None:
        stats = ingest.stats
        stats.units += 1
        stats.bytes += len(unit.data)
        if stats.units == 1:
            for listener in list(self.live_listeners):
                try:
                    listener(ingest.nest_id)
                except Exception:  # a listener's bug must not stop the video; logged
                    log.exception("video.live_listener_failed", nest=ingest.nest_id)
        if unit.keyframe:
            stats.keyframes += 1
            ingest.last_keyframe = unit
        for sub in list(ingest.subscribers):
            sub.deliver(unit)

    # snapshot support -----------------------------------------------------------------------------
    async def keyframe(self, nest_id: int, timeout_s: float = 5.0) -> AccessUnit:
        """The latest keyframe of ``nest_id``'s stream; opens the stream for it if none runs."""
        ingest = self._ingests.get(nest_id)
        if ingest is not None and ingest.last_keyframe is not None:
            return ingest.last_keyframe
        sub = await self.subscribe(nest_id, "snapshot")
        try:
            async with asyncio.timeout(timeout_s):
                async for unit in sub:
                    if unit.keyframe:
                        return unit
        except TimeoutError:
            pass
        finally:
            sub.close()
        raise CameraUnavailable(f"nest {nest_id}: no keyframe within {timeout_s:g} s")


async def _logged(coro: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await coro
    except Exception:  # one recorder's or session's bug must not end every ingest
        log.exception("video.task_failed", task=name)


async def _stop_camera(nest_id: int, camera: Camera) -> None:
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await camera.stop_streaming()
    except Exception as exc:  # noqa: BLE001 - stopping is best effort (the camera also times out)
        log.warning("video.camera_stop_failed", nest=nest_id, error=_reason(nest_id, exc))


def _reason(nest_id: int, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"nest {nest_id}'s camera did not answer in time"
    return str(exc) or type(exc).__name__


def _put_latest(queue: asyncio.Queue[AccessUnit | None], item: AccessUnit | None) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
