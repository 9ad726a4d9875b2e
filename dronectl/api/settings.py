"""MQTT settings: which broker (or the embedded one), credentials, TLS, topic root, rates."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from dronectl.api.topics import DEFAULT_ROOT, validate_root


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


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"broker URL must look like mqtt://host:port or mqtts://host:port, not {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"bad port in broker URL {url!r}") from exc
    return BrokerAddress(host=parts.hostname, port=port, tls=tls)


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str | None = Field(default=None, description="mqtt://host:port; None: start the embedded broker")
    embedded_host: str = "127.0.0.1"
    embedded_port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsSettings | None = Field(default=None, description="also implied by an mqtts:// URL")
    root: str = DEFAULT_ROOT
    client_id: str | None = Field(default=None, description="default: dronectl-<random>")
    keepalive_s: int = Field(default=15, ge=5, le=600)
    telemetry_airborne_hz: float = Field(default=2.0, gt=0.0, le=50.0)
    telemetry_docked_hz: float = Field(default=0.2, gt=0.0, le=50.0)
    telemetry_max_age_s: float = Field(default=3.0, gt=0.0, description="older samples are dropped, not sent")
    reconnect_min_s: float = Field(default=0.5, gt=0.0)
    reconnect_max_s: float = Field(default=30.0, gt=0.0)
    dedupe_memory: int = Field(default=10_000, ge=100)

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
