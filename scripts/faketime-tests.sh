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
#   .ci/faketime_sleep.py           then time.sleep() would fail with EINVAL (libfaketime#426): a
#                                   .pth loads it into every Python process while FAKETIME is set
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

site_packages=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
faketime_pth="$site_packages/zz_dronectl_ci_faketime.pth"
echo "import os, sys; os.environ.get('FAKETIME') and os.environ.get('FAKETIME_DONT_FAKE_MONOTONIC') == '1' and (sys.path.append('$PWD/.ci'), __import__('faketime_sleep'))" >"$faketime_pth"
trap 'rm -f "$faketime_pth"' EXIT
export FAKETIME_DONT_RESET=1 FAKETIME_DONT_FAKE_MONOTONIC=1

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
