# dronectl service image, built by docker-compose.yml (`build: .`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# .dockerignore keeps the context to what `pip install .` needs (and docker/compose.yaml).
COPY . .
RUN pip install . \
    && install -D -m 0644 docker/compose.yaml /etc/dronectl/compose.yaml \
    && useradd --system --no-create-home --shell /usr/sbin/nologin dronectl

USER dronectl
WORKDIR /tmp
CMD ["dronectl", "up", "--config", "/etc/dronectl/compose.yaml", "--broker", "mqtt://mosquitto:1883", "--users", "/var/lib/dronectl/users"]
