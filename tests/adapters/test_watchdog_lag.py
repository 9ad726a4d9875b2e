"""Link loss means the nest went quiet, not that the loop was late: the silence verdict (pure), the
loop-lag monitor, and a watchdog whose loop was blocked while frames queued in its socket."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from structlog.testing import capture_logs

from adapters.mavlink.loop_lag import LoopLagMonitor, monitor
from adapters.mavlink.watchdog import MAX_EXCUSE, HeartbeatWatchdog, silence_check

TIMEOUT = 2.5


def _hog_the_loop(seconds: float) -> None:
    """What a starved service does: nothing else runs on the loop meanwhile."""
    time.sleep(seconds)


@pytest.mark.parametrize(
    ("last", "now", "lag", "verdict"),
    [
        (10.0, 11.0, 0.0, 1.5),  # heard a second ago: look again when the timeout would pass
        (10.0, 12.5, 0.001, None),  # quiet for the timeout on a prompt loop: lost, at once
        (10.0, 12.6, 0.05, None),  # a little late (under a tenth of the timeout): still lost
        (10.0, 12.9, 0.4, 0.4),  # the loop was 0.4 s late: give it that long to read what came
        (10.0, 14.8, 1.0, 0.2),  # late, but the excuse ends at MAX_EXCUSE timeouts of silence
        (10.0, 10.0 + MAX_EXCUSE * TIMEOUT, 3.0, None),  # however late the loop: a cut is a cut
    ],
)
def test_silence_check(last: float, now: float, lag: float, verdict: float | None) -> None:
    result = silence_check(last, now, TIMEOUT, lag)
    if verdict is None:
        assert result is None
    else:
        assert result == pytest.approx(verdict)


def test_monitor_keeps_the_recent_lag_and_warns_once_per_period() -> None:
    lag = LoopLagMonitor(warn_s=0.2, warn_every_s=10.0, window=3)
    with capture_logs() as logs:
        for t, value in enumerate([0.01, 0.5, 0.3, 0.01, 0.01, 0.01, 0.25]):
            lag.record(value, now_s=float(t))
    warnings = [e for e in logs if e["event"] == "adapters.loop.starved"]
    assert [w["lag_s"] for w in warnings] == [0.5]  # 0.3 at t=2 and 0.25 at t=6: within 10 s
    assert lag.starved_ticks == 3 and lag.max_lag_s == 0.5
    assert lag.recent_lag_s() == 0.25  # the last three ticks: 0.01, 0.01, 0.25
    lag.record(0.3, now_s=20.0)
    assert len([e for e in logs if e["event"] == "adapters.loop.starved"]) == 1  # capture ended


async def test_monitor_measures_a_blocked_loop() -> None:
    lag = monitor()
    lag.start()
    try:
        await asyncio.sleep(0.25)
        assert lag.recent_lag_s() < 0.2
        with capture_logs() as logs:
            _hog_the_loop(0.4)
            await asyncio.sleep(0.25)
        assert lag.recent_lag_s() >= 0.2
        assert any(e["event"] == "adapters.loop.starved" for e in logs)
    finally:
        lag.stop()
    assert lag.recent_lag_s() == 0.0


class _Frames(asyncio.DatagramProtocol):
    """One socket shared by two components, as a nest's endpoint is: b"A" frames from one,
    b"B" heartbeats from the other."""

    def __init__(self, a: HeartbeatWatchdog, b: HeartbeatWatchdog) -> None:
        self.a, self.b = a, b

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        (self.a.heard if data == b"A" else self.b.beat)()


async def test_frames_queued_while_the_loop_was_blocked_are_read_before_a_loss() -> None:
    """The loop reads one datagram per socket per iteration: a heartbeat queued behind a burst
    of another component's frames is read after the timer that was due while the loop was blocked.
    Judged against the loop's lag, the component that kept sending is not lost."""
    timeout = 0.5
    loop = asyncio.get_running_loop()
    a, b = HeartbeatWatchdog("a", timeout), HeartbeatWatchdog("b", timeout)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Frames(a, b), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.beat()
        b.beat()
        lost = b.lost_future()
        _hog_the_loop(timeout * 0.8)
        for _ in range(100):  # (the socket buffer holds about 250 small datagrams)
            sender.sendto(b"A", ("127.0.0.1", port))
        sender.sendto(b"B", ("127.0.0.1", port))
        _hog_the_loop(timeout * 0.4)  # blocked past b's deadline, with b's heartbeat in the socket
        await asyncio.sleep(timeout * 0.6)
        assert b.connected and not lost.done()
        # and a real silence is still reported, within MAX_EXCUSE timeouts
        started = loop.time()
        async with asyncio.timeout(MAX_EXCUSE * timeout + 1.0):
            await lost
        assert loop.time() - started <= timeout + 0.2  # on a prompt loop: the timeout, no excuse
        assert not b.connected
    finally:
        sender.close()
        transport.close()
        a.close()
        b.close()
