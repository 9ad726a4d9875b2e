# dronectl service image, built by docker-compose.yml (`build: .`). The same image runs the docks
# simulator (`python -m sitl --docks-only`, the `docks` service): the sitl package is installed too.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# espeak-ng: the loudspeaker's text to speech (dronectl/nest/tts.py renders every spoken warning
# with it; without it a speak command fails). The Python wheels bring the rest (FFmpeg in PyAV,
# OpenCV headless, libpq in psycopg[binary]); the broker is the mosquitto service, not in here.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .dockerignore keeps the context to what `pip install .` needs (and docker/compose.yaml).
COPY . .
RUN pip install . \
    && install -D -m 0644 docker/compose.yaml /etc/dronectl/compose.yaml \
    && groupadd --system --gid 1883 dronectl \
    && useradd --system --uid 1883 --gid 1883 --no-create-home --shell /usr/sbin/nologin dronectl \
    && install -d -o 1883 -g 1883 -m 0700 /var/lib/dronectl-state /var/lib/dronectl-state/keys \
    && install -d -o 1883 -g 1883 -m 0750 /var/lib/dronectl-state/audit /var/lib/dronectl-recordings \
        /var/lib/dronectl-recordings/video /var/lib/dronectl-recordings/snapshots

# What must outlive the container is on named volumes (docker-compose.yml): the audit store
# (/var/lib/dronectl-state/audit) with the MAVLink keys (keys), and the flights' video and
# snapshots (/var/lib/dronectl-recordings). A new named volume takes these directories' owner
# (uid 1883) from the image. Nothing is left in /tmp.
USER 1883:1883
WORKDIR /var/lib/dronectl-state
CMD ["dronectl", "up", "--no-sim", "--config", "/etc/dronectl/compose.yaml", \
     "--broker", "mqtt://mosquitto:1883", "--users", "/var/lib/dronectl/users", \
     "--audit", "/var/lib/dronectl-state/audit/audit.sqlite3", \
     "--audit-spool", "/var/lib/dronectl-state/audit/spool.sqlite3", \
     "--mavlink-keys", "/var/lib/dronectl-state/keys", \
     "--recordings", "/var/lib/dronectl-recordings/video", \
     "--snapshots", "/var/lib/dronectl-recordings/snapshots"]
