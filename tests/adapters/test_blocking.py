"""The bounded executor: a blocking call that never returns is timed out, logged and abandoned,
and holds up neither the loop's close nor the interpreter's exit nor the other calls."""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from adapters import blocking
from tests.conftest import REPO_ROOT


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What the stuck calls wait on; opened at the end so their threads end too."""
    event = threading.Event()
    yield event
    event.set()


def test_the_test_loops_default_executor_is_bounded() -> None:
    async def default_executor() -> blocking.BoundedExecutor | None:
        return blocking.installed(asyncio.get_running_loop())

    loop = asyncio.new_event_loop()
    try:
        assert blocking.installed(loop) is None
        executor = blocking.install(loop)
        assert blocking.install(loop) is executor  # once per loop
        assert loop.run_until_complete(default_executor()) is executor
    finally:
        loop.close()


async def test_the_pytest_asyncio_loop_has_it_installed() -> None:
    assert isinstance(blocking.installed(asyncio.get_running_loop()), blocking.BoundedExecutor)


async def test_a_stuck_call_times_out_and_does_not_starve_the_others(gate: threading.Event) -> None:
    # the gate never opens in this test: without the timeout this would wait for pytest-timeout
    with pytest.raises(TimeoutError):
        await blocking.call("set a parameter of a vehicle gone", gate.wait, timeout_s=0.3)
    # the stuck worker keeps its thread; the next call gets another one
    assert await blocking.call("a quick one", lambda: 42, timeout_s=2.0) == 42
    executor = blocking.installed(asyncio.get_running_loop())
    assert executor is not None
    assert [c.what for c in executor.stuck()] == ["set a parameter of a vehicle gone"]


def test_shutdown_waits_a_bounded_time_then_logs_and_abandons(gate: threading.Event) -> None:
    executor = blocking.BoundedExecutor("test", shutdown_timeout_s=0.5, max_workers=1)
    running = executor.submit(gate.wait)
    with blocking.named("upload a mission to autopilot 3"):
        never_started = executor.submit(gate.wait)  # the only worker is stuck
    deadline = time.monotonic() + 5.0
    while not executor.stuck():
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.01)
    # its threads are daemons that concurrent.futures' exit hook does not join
    threads = [t for t in threading.enumerate() if t.name.startswith("test_")]
    assert threads and all(t.daemon for t in threads)
    assert not set(threads) & set(concurrent.futures.thread._threads_queues)
    started = time.monotonic()
    with capture_logs() as logs:
        executor.shutdown(wait=True)
    took = time.monotonic() - started
    assert 0.4 < took < 1.5, took
    abandoned = {e["call"]: e for e in logs if e["event"] == "adapters.blocking.abandoned"}
    assert set(abandoned) == {"Event.wait", "upload a mission to autopilot 3"}, abandoned
    assert abandoned["Event.wait"]["started"] is True and abandoned["Event.wait"]["running_s"] >= 0.0
    assert abandoned["upload a mission to autopilot 3"]["started"] is False
    assert never_started.cancelled() and not running.done()
    with pytest.raises(RuntimeError):
        executor.submit(print)


def test_a_loop_with_a_stuck_call_closes_within_the_bound(gate: threading.Event) -> None:
    async def main() -> None:
        blocking.install(shutdown_timeout_s=0.5)
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, gate.wait)  # MAVSDK's way: run_in_executor(None, ...)
        await asyncio.sleep(0.05)

    started = time.monotonic()
    with capture_logs() as logs:
        asyncio.run(main())  # closes the loop: shutdown_default_executor
    assert time.monotonic() - started < 2.0
    assert [e["call"] for e in logs if e["event"] == "adapters.blocking.abandoned"] == ["Event.wait"]


def test_a_stuck_call_does_not_hold_up_the_interpreters_exit() -> None:
    code = (
        "import asyncio, threading\n"
        "from adapters import blocking\n"
        "async def main():\n"
        "    blocking.install(shutdown_timeout_s=0.2)\n"
        "    asyncio.get_running_loop().run_in_executor(None, threading.Event().wait)\n"
        "    await asyncio.sleep(0.05)\n"
        "asyncio.run(main())\n"
        "print('closed', flush=True)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "closed"
    assert "adapters.blocking.abandoned" in done.stdout  # structlog's default output
    assert time.monotonic() - started < 10.0


def test_describe_names_mavsdk_lambdas_by_their_method() -> None:
    class ParamAsync:
        def set_param_float(self) -> Callable[[], None]:
            return lambda: None

    assert blocking.describe(ParamAsync().set_param_float()) == "ParamAsync.set_param_float"
    assert blocking.describe(threading.Event().wait) == "Event.wait"
