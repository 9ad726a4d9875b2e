#!/usr/bin/env bash
# Run pytest with the machine's clock set to another instant (Debian's faketime), as .ci/run does
# for the time-of-day-sensitive tests and as issue 17's acceptance does for the whole suite:
#
#   scripts/faketime-tests.sh "2026-12-03 00:00:00" [pytest arguments...]   # UTC; Thu 08:00 in Changchun
#
# The clock starts at the instant and advances. With no pytest arguments, the whole suite runs.
# libfaketime 0.9.10 (bookworm) with Python 3.11, what each setting is for:
#   FAKETIME_DONT_RESET=1           child processes (dronectl up, the simulator, the console client)
#                                   keep the parent's fake clock instead of each starting at the
#                                   instant again: else wire timestamps disagree, commands "expire"
#   FAKETIME_DONT_FAKE_MONOTONIC=1  the monotonic clock stays real: faked, threading's timed waits
#                                   (sem_clockwait, not intercepted) get deadlines decades ahead
#   scripts/faketime_fix.c          preloaded before libfaketime: it hands absolute deadlines on the
#                                   monotonic clock to the kernel unchanged (clock_nanosleep,
#                                   timerfd_settime), which libfaketime misreads as wall-clock ones
#                                   (libfaketime#426): time.sleep() failed with EINVAL, and MAVSDK's
#                                   asio timers fired a day late, so its heartbeats and timeouts
#                                   stopped. Compiled here with the system's cc.
#   FAKETIME_FORCE_MONOTONIC_FIX=0  libfaketime's "monotonic fix" (on by default for glibc >= 2.30)
#                                   rewrites the deadline of every timed pthread_cond wait on a
#                                   monotonic condvar into the past. Python's GIL is such a condvar,
#                                   so every thread waiting for the GIL spins in futex calls: a
#                                   process with MAVSDK's threads burnt a second core (3 busy Python
#                                   threads: 1.9 cores, 1.3 of them in the kernel, against 1.0), its
#                                   event loop ran late and the simulated links read as lost. That,
#                                   not the hour, is what failed CI's faketime runs (session 6).
#                                   With the fix off and the monotonic clock real, the deadline is
#                                   passed through unchanged. The check below fails the run if the
#                                   GIL spins again (another libfaketime, another glibc).
# Prints the instant as Changchun sees it, then pytest's output; exits with pytest's code.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: $0 'YYYY-MM-DD HH:MM:SS' (UTC) [pytest arguments...]" >&2
  exit 2
fi
instant=$1
shift
command -v faketime >/dev/null || { echo "faketime is not installed (scripts/system-deps.sh)" >&2; exit 2; }
[ -x .venv/bin/pytest ] || { echo "no .venv: run the README's test command first" >&2; exit 2; }

command -v cc >/dev/null || { echo "no C compiler for scripts/faketime_fix.c (scripts/system-deps.sh)" >&2; exit 2; }
fix_dir=$(mktemp -d /tmp/dronectl-faketime-fix.XXXXXX)
trap 'rm -rf "$fix_dir"' EXIT
cc -O2 -shared -fPIC -Wall -Wextra -Werror -o "$fix_dir/faketime_fix.so" scripts/faketime_fix.c -ldl
# faketime puts its library after what LD_PRELOAD already holds, so these wrappers come first.
export LD_PRELOAD="$fix_dir/faketime_fix.so${LD_PRELOAD:+:$LD_PRELOAD}"
export FAKETIME_DONT_RESET=1 FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_FORCE_MONOTONIC_FIX=0

# Three Python threads that never release the GIL for 1 s: the process's kernel time stays near zero
# unless the threads waiting for the GIL spin (a busy machine only lowers it).
spin_check='import os, threading, time
time.sleep(0.01)  # EINVAL without scripts/faketime_fix.c
stop = False
def spin():
    while not stop:
        pass
threads = [threading.Thread(target=spin) for _ in range(3)]
for t in threads:
    t.start()
t0, c0 = time.monotonic(), os.times()
while time.monotonic() - t0 < 1.0:
    pass
stop = True
for t in threads:
    t.join()
print(round((os.times().system - c0.system) / (time.monotonic() - t0), 2))'
kernel_share=$(TZ=UTC faketime -f "@$instant" .venv/bin/python -c "$spin_check")
if .venv/bin/python -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.3 else 1)" "$kernel_share"; then :; else
  echo "under libfaketime, threads waiting for Python's GIL spin (kernel time $kernel_share of the wall clock):" \
    "the service would be starved; see FAKETIME_FORCE_MONOTONIC_FIX above" >&2
  exit 1
fi

seen=$(TZ=UTC faketime -f "@$instant" .venv/bin/python -c "from datetime import datetime; from zoneinfo import ZoneInfo
print(datetime.now(ZoneInfo('Asia/Shanghai')).strftime('%a %F %H:%M'))")
expected=$(TZ=Asia/Shanghai date -d "$instant UTC" '+%a %F %H:%M')
echo "+ faketime at $instant UTC ($seen in Changchun): pytest ${*:-(the whole suite)}"
if [ "$seen" != "$expected" ] && [ "${seen:0:18}" != "${expected:0:18}" ]; then
  echo "faketime did not set the clock (the machine says $seen, expected $expected)" >&2
  exit 1
fi
started=$SECONDS
rc=0
TZ=UTC faketime -f "@$instant" .venv/bin/pytest -q -p no:cacheprovider "$@" || rc=$?
echo "faketime run at $instant UTC ($seen in Changchun): pytest exit $rc in $((SECONDS - started)) s"
exit "$rc"
