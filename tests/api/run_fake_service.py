"""The MQTT API with the fake controller as a process of its own (for the last-will test):

python -m tests.api.run_fake_service HOST PORT ROOT
"""

from __future__ import annotations

import asyncio
import sys

from dronectl.transports.mqtt.mqtt import MqttApi
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.fake_controller import FakeController


async def main(host: str, port: int, root: str) -> None:
    settings = MqttSettings(broker=f"mqtt://{host}:{port}", root=root, keepalive_s=5)
    await MqttApi(settings, FakeController()).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
