"""Blocking vendor calls, bounded: the executor they run on, and a timeout on each.

MAVSDK-Python runs its blocking C calls with ``loop.run_in_executor(None, ...)``: on the loop's
default executor. asyncio's own (a ``ThreadPoolExecutor``) joins its threads when the loop closes
and again when the interpreter exits, so a call that never returns (a parameter set to a vehicle
that is gone) keeps ``asyncio.run`` from ever returning. ``BoundedExecutor`` is installed as the
loop's default executor instead:

- its worker threads are daemon threads, not registered with ``concurrent.futures``' exit join:
  they never hold up the interpreter's exit;
- ``shutdown`` waits at most ``shutdown_timeout_s``, then logs each call still running (what it
  was, for how long) and each never started, and abandons them;
- a worker stuck in a call does not starve the others: a new thread starts whenever none is idle
  (up to ``max_workers``).

``call`` (and ``bounded`` for a vendor coroutine that uses the default executor) put a timeout on
each call and name it, so a stuck call is logged by what it was, not by a lambda.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")

SHUTDOWN_TIMEOUT_S = 1.0
MAX_WORKERS = 64
IDLE_EXIT_S = 10.0  # an idle worker ends after this long (a burst of calls leaves no crowd behind)

# What the task awaiting a blocking call calls it (set by ``call``/``bounded``, read at submit).
_CALL_NAME: ContextVar[str | None] = ContextVar("blocking_call_name", default=None)
_installed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BoundedExecutor] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class StuckCall:
    """A call that had not returned when the executor shut down."""

    what: str
    running_s: float | None  # None: it never started (every worker was busy)


@dataclass
class _Work:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    what: str
    started: float | None = None
    thread: str = field(default="")


def describe(fn: Callable[..., Any]) -> str:
    """A readable name for a submitted callable: MAVSDK submits lambdas, named by their method."""
    name = getattr(fn, "__qualname__", None) or repr(fn)
    name = name.removesuffix(".<lambda>").removesuffix(".<locals>")
    return name.rpartition("<locals>.")[2]


class BoundedExecutor(ThreadPoolExecutor):
    """A thread pool that never blocks loop close or interpreter exit for longer than its bound.

    It subclasses ``ThreadPoolExecutor`` only because ``loop.set_default_executor`` accepts nothing
    else; none of the base class's threads or queues are used.
    """

    def __init__(
        self,
        name: str = "blocking",
        *,
        shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self.name = name
        self.shutdown_timeout_s = shutdown_timeout_s
        self.max_workers = max_workers
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._idle = 0  # workers waiting for work
        self._queued = 0  # work submitted and not yet picked up
        self._running: dict[int, _Work] = {}
        self._closed = False
        self._numbers = itertools.count()

    # concurrent.futures.Executor ---------------------------------------------------------------
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        what = _CALL_NAME.get() or describe(fn)
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queued += 1
            if self._idle < self._queued and len(self._workers) < self.max_workers:
                self._start_worker()
            self._queue.put(_Work(future, fn, args, kwargs, what))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            first = not self._closed
            self._closed = True
            workers = list(self._workers)
        if first:
            self._queue.put(None)  # each worker passes it on and ends
        if cancel_futures:
            self._cancel_queued()
        if not wait:
            return
        deadline = time.monotonic() + self.shutdown_timeout_s
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        for call in self.abandon():
            log.warning(
                "adapters.blocking.abandoned",
                executor=self.name,
                call=call.what,
                running_s=None if call.running_s is None else round(call.running_s, 1),
                started=call.running_s is not None,
            )

    # ---------------------------------------------------------------------------------------------
    def _finished(self, work: _Work) -> None:
        with self._lock:
            self._running.pop(id(work), None)

    def stuck(self) -> list[StuckCall]:
        """The calls running now, longest first."""
        now = time.monotonic()
        with self._lock:
            running = [StuckCall(w.what, now - w.started) for w in self._running.values() if w.started]
        return sorted(running, key=lambda c: -(c.running_s or 0.0))

    def abandon(self) -> list[StuckCall]:
        """Cancel what never started; return it with what is still running (left to its thread)."""
        return self.stuck() + [StuckCall(w.what, None) for w in self._cancel_queued()]

    @property
    def thread_count(self) -> int:
        with self._lock:
            return len(self._workers)

    def _cancel_queued(self) -> list[_Work]:
        cancelled: list[_Work] = []
        pending: list[_Work | None] = []
        with contextlib.suppress(queue.Empty):
            while True:
                pending.append(self._queue.get_nowait())
        for work in pending:
            if work is None:
                continue
            with self._lock:
                self._queued -= 1
            if work.future.cancel():
                cancelled.append(work)
        self._queue.put(None)
        return cancelled

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=f"{self.name}_{next(self._numbers)}", daemon=True)
        self._workers.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                with self._lock:
                    self._idle += 1
                try:
                    work = self._queue.get(timeout=IDLE_EXIT_S)
                except queue.Empty:
                    with self._lock:
                        if self._queued == 0:  # no submit counts on this worker: end it
                            self._idle -= 1
                            return
                        self._idle -= 1
                    continue
                with self._lock:
                    self._idle -= 1
                    if work is not None:
                        self._queued -= 1
                if work is None:
                    self._queue.put(None)
                    return
                if not work.future.set_running_or_notify_cancel():
                    continue
                work.started, work.thread = time.monotonic(), me.name
                with self._lock:
                    self._running[id(work)] = work
                # Off the running list before the caller hears the result, so a caller never
                # sees its own finished call among the stuck ones.
                try:
                    result = work.fn(*work.args, **work.kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, as Executor does
                    self._finished(work)
                    work.future.set_exception(exc)
                else:
                    self._finished(work)
                    work.future.set_result(result)
                del work
        finally:
            with self._lock:
                self._workers.discard(me)


def install(loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> BoundedExecutor:
    """Make a ``BoundedExecutor`` the loop's default executor (once per loop); return it."""
    loop = loop or asyncio.get_running_loop()
    executor = _installed.get(loop)
    if executor is None:
        executor = BoundedExecutor(**kwargs)
        loop.set_default_executor(executor)
        _installed[loop] = executor
    return executor


def installed(loop: asyncio.AbstractEventLoop) -> BoundedExecutor | None:
    return _installed.get(loop)


@contextlib.contextmanager
def named(what: str) -> Iterator[None]:
    """Blocking calls submitted inside are logged as ``what`` if they get stuck."""
    token = _CALL_NAME.set(what)
    try:
        yield
    finally:
        _CALL_NAME.reset(token)


async def bounded(what: str, awaitable: Awaitable[T], timeout_s: float) -> T:
    """Await a vendor coroutine (which runs its blocking part on the default executor) within
    ``timeout_s``; ``TimeoutError`` past it. The blocking part, if stuck, is left to its thread."""
    with named(what):
        async with asyncio.timeout(timeout_s):
            return await awaitable


async def call(what: str, fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
    """Run a blocking ``fn(*args)`` on the loop's default executor within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    with named(what):
        async with asyncio.timeout(timeout_s):
            return await loop.run_in_executor(None, fn, *args)
