"""One instance's status publisher as a process of its own (for the last-will test):

python -m tests.api.run_instance_status HOST PORT ROOT INSTANCE
"""

from __future__ import annotations

import asyncio
import sys

from dronectl.transports.mqtt.instance_status import Holding, InstanceStatusPublisher
from dronectl.transports.mqtt.settings import MqttSettings


async def main(host: str, port: int, root: str, instance: str) -> None:
    settings = MqttSettings(broker=f"mqtt://{host}:{port}", root=root, keepalive_s=5)
    await InstanceStatusPublisher(settings, instance, lambda: Holding((2, 5), leader=True), version="t").run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
