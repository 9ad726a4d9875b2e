#!/usr/bin/env bash
# Debian packages the tests use (real components, as users have them): Mosquitto and its
# clients (a real MQTT broker and mosquitto_pub/sub), espeak-ng (text to speech, Mandarin too),
# tmux (the console tested in a real terminal), chromium (the command-center page tested in a
# real browser, driven by Playwright over CDP: Debian's build, never a downloaded one), faketime
# (.ci/run runs the time-of-day-sensitive tests again with the machine's clock set elsewhere; gcc
# compiles the small wrapper scripts/faketime_fix.c preloaded with it),
# postgresql (the shared audit store and nest leases: the audit tests run on SQLite and PostgreSQL;
# .ci/run starts a server where none answers on 127.0.0.1:5432).
# Installs only what is missing; needs root.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)  # scripts/faketime_fix.c, preloaded with faketime
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
