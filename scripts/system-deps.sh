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
#
# --service: only what `dronectl up` itself uses (the README's first command): Mosquitto (the
# embedded broker; without it the service falls back to amqtt) and espeak-ng (the loudspeaker's
# speech). Without root it says what is missing and goes on: the service runs without them.
set -euo pipefail
need=()
if [ "${1:-}" = "--service" ]; then
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  if [ ${#need[@]} -eq 0 ]; then exit 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "not installed: ${need[*]} (sudo apt-get install ${need[*]}); dronectl up runs without them" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi
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
