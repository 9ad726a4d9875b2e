"""MQTT settings: which broker (or the embedded one), credentials, TLS, topic root, rates."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from dronectl.operations.topics import DEFAULT_ROOT, validate_root


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(default=None, description="CA bundle; default: the system's")
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = None
    insecure: bool = Field(default=False, description="skip the host name check (testing only)")


class BrokerAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)
    tls: bool
    username: str | None = None
    password: SecretStr | None = None


def redact_url(url: str) -> str:
    """The URL without its password (for logs and the start line): ``mqtt://user:***@host:1883``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc).geturl()


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:password]@]host[:1883]`` or ``mqtts://...host[:8883]`` (percent-encoded
    user and password). Errors never repeat the URL: it may hold a password."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(
            f"broker URL must look like mqtt://host:port or mqtts://host:port, not {redact_url(url)!r}"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"bad port in broker URL {redact_url(url)!r}") from None
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password is not None else None,
    )


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str | None = Field(
        default=None,
        description="mqtt://[user:password@]host:port; None: start the embedded broker",
        repr=False,  # it may carry a password: never in a repr or a log
    )
    embedded_host: str = "127.0.0.1"
    embedded_port: int = Field(default=1883, ge=1, le=65535)
    embedded_broker: Literal["auto", "mosquitto", "amqtt"] = Field(
        default="auto",
        description="which embedded broker: Mosquitto when the machine has it (auto), else amqtt "
        "(MQTT 3.1.1 only, no WebSockets: see transports/mqtt/mosquitto.py)",
    )
    embedded_ws_port: int | None = Field(
        default=None, ge=1, le=65535, description="the embedded Mosquitto's MQTT-over-WebSockets port"
    )
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsSettings | None = Field(default=None, description="also implied by an mqtts:// URL")
    root: str = DEFAULT_ROOT
    client_id: str | None = Field(
        default=None,
        description="the session's client id: give each instance its own, the same across restarts "
        "(dronectl up: dronectl-<instance>); default: dronectl-<random>, stable while the process runs",
    )
    persistent_session: bool = Field(
        default=True,
        description="clean session off: the broker keeps the command subscription (QoS 1) and "
        "what is published to it while the service is away",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT version spoken to the broker: 5 (Response Topic, Correlation Data and "
        "message expiry honoured on requests), or 3.1.1 for a broker without MQTT 5",
    )
    session_expiry_s: int = Field(
        default=3600,
        ge=0,
        description="MQTT 5: how long the broker keeps a persistent session (its subscriptions and "
        "the QoS 1 commands sent to it) while the service is away",
    )
    keepalive_s: int = Field(default=15, ge=5, le=600)
    telemetry_airborne_hz: float = Field(default=2.0, gt=0.0, le=50.0)
    telemetry_docked_hz: float = Field(default=0.2, gt=0.0, le=50.0)
    telemetry_max_age_s: float = Field(default=3.0, gt=0.0, description="older samples are dropped, not sent")
    reconnect_min_s: float = Field(default=0.5, gt=0.0)
    reconnect_max_s: float = Field(default=3.0, gt=0.0, le=10.0, description="back-off cap")
    dedupe_memory: int = Field(default=10_000, ge=100)
    backlog_per_sender: int = Field(default=256, ge=1, description="messages waiting per sender")
    backlog_total: int = Field(default=4096, ge=1, description="messages waiting in all")

    @field_validator("broker")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_broker_url(value)
        return value

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        return validate_root(value)

    def address(self) -> BrokerAddress:
        if self.broker is None:
            return BrokerAddress(host=self.embedded_host, port=self.embedded_port, tls=False)
        return parse_broker_url(self.broker)

    def credentials(self) -> tuple[str | None, str | None]:
        """(user, password): the settings' own, else those of the broker URL."""
        address = self.address()
        username = self.username or address.username
        secret = self.password or address.password
        return username, secret.get_secret_value() if secret is not None else None
