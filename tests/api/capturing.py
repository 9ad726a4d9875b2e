"""The service's MQTT API with its publishes captured instead of sent (no broker): what it would
publish, as (topic, JSON payload), in ``sent``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from dronectl.transports.mqtt.mqtt import MqttApi


class CapturingMqttApi(MqttApi):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def _publish(
        self,
        topic: str,
        model: BaseModel,
        *,
        qos: int,
        retain: bool = False,
        correlation: bytes | None = None,
    ) -> bool:
        self.sent.append((topic, json.loads(model.model_dump_json())))
        return True
