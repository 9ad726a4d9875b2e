"""--broker mqtt://user:password@host: the credentials are used, and never shown."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from dronectl.transports.mqtt.settings import MqttSettings, parse_broker_url, redact_url


def test_credentials_from_the_url_and_from_the_settings() -> None:
    settings = MqttSettings(broker="mqtts://svc%40ops:p%3Ass@broker.example:8883")
    assert settings.credentials() == ("svc@ops", "p:ss")
    assert settings.address().host == "broker.example" and settings.address().tls
    own = MqttSettings(broker="mqtt://broker.example", username="dronectl", password=SecretStr("x-secret"))
    assert own.credentials() == ("dronectl", "x-secret")
    assert "p:ss" not in repr(settings) and "p%3Ass" not in repr(settings) and "x-secret" not in repr(own)


def test_the_password_never_appears_in_what_is_shown() -> None:
    assert redact_url("mqtt://svc:hunter2@broker:1883") == "mqtt://svc:***@broker:1883"
    assert redact_url("mqtt://broker:1883") == "mqtt://broker:1883"
    with pytest.raises(ValueError) as bad:
        parse_broker_url("mqtt://svc:hunter2@broker:notaport")
    assert "hunter2" not in str(bad.value)
    with pytest.raises(ValueError) as worse:
        parse_broker_url("http://svc:hunter2@broker")
    assert "hunter2" not in str(worse.value)
