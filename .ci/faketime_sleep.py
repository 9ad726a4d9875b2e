# Loaded into every Python process of .ci/run's faketime runs (through a .pth file .ci/run puts in
# the venv for them, and only when FAKETIME is set): Python 3.11's time.sleep() calls
# clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which Debian bookworm's libfaketime 0.9.10 turns
# into EINVAL when the monotonic clock is left real (FAKETIME_DONT_FAKE_MONOTONIC=1;
# https://github.com/wolfcw/libfaketime/issues/426). Leaving it real is what keeps every other
# wait right (a faked monotonic clock makes threading's sem_clockwait deadlines lie decades ahead:
# Event.wait(0.2) never returns), so sleep with select() instead, on the same monotonic deadline.
import select
import time
from typing import SupportsIndex


def _sleep(seconds: float | SupportsIndex) -> None:
    secs = float(seconds)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + secs
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


time.sleep = _sleep
