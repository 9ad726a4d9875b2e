"""Several instances on one broker: each publishes, retained, ``{root}/instances/{id}/status``
(online, version, the nests it holds, whether it leads the automations), again when that changes;
its own connection's last will marks it offline when the broker loses it without a DISCONNECT,
and a clean stop says offline itself. Against the real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys

import pytest

from dronectl.operations.topics import Topics
from dronectl.transports.mqtt.instance_status import Holding, InstanceStatusPublisher
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.conftest import command_center
from tests.api.test_mqtt_mosquitto import REPO_ROOT


async def test_status_follows_what_the_instance_holds_and_a_clean_stop_says_offline(
    mosquitto_port: int, root: str
) -> None:
    holding = Holding((1, 2), leader=False)
    settings = MqttSettings(broker=f"mqtt://127.0.0.1:{mosquitto_port}", root=root)
    publisher = InstanceStatusPublisher(settings, "alpha", lambda: holding, version="9.9")
    topic = f"{root}/instances/alpha/status"
    async with command_center(mosquitto_port, root) as cc:
        task = asyncio.create_task(publisher.run(), name="test.instance_status")
        try:
            online = await cc.wait_for(topic, lambda p: p["state"] == "online")
            assert online["instance"] == "alpha" and online["version"] == "9.9"
            assert online["nests"] == [1, 2] and online["automations_leader"] is False
            async with command_center(mosquitto_port, root) as late:  # retained for later subscribers
                assert (await late.wait_for(topic))["nests"] == [1, 2] and late.messages(topic)[0].retain

            holding = Holding((1, 2, 7), leader=True)  # gained nest 7 and the automations lease
            publisher.changed()
            now = await cc.wait_for(topic, lambda p: p["automations_leader"])
            assert now["nests"] == [1, 2, 7]
            publisher.changed()  # nothing new: nothing published
            holding = Holding((7,), leader=True)
            publisher.changed()
            await cc.wait_for(topic, lambda p: p["nests"] == [7])
            assert len(cc.messages(topic)) == 3
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        offline = await cc.wait_for(topic, lambda p: p["state"] == "offline")
        assert offline["at"] is not None and offline["nests"] == []  # a goodbye, not the will


async def test_last_will_marks_the_instance_offline_when_its_connection_is_lost(
    mosquitto_port: int, root: str
) -> None:
    topic = Topics(root).instance_status("bravo")
    async with command_center(mosquitto_port, root) as cc:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "tests.api.run_instance_status", "127.0.0.1", str(mosquitto_port), root],
            "bravo",
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            online = await cc.wait_for(topic, lambda p: p["state"] == "online", timeout_s=20)
            assert online["nests"] == [2, 5] and online["automations_leader"] is True
            proc.send_signal(signal.SIGKILL)  # the socket closes with no DISCONNECT: the will
            await asyncio.wait_for(proc.wait(), 10)
            offline = await cc.wait_for(topic, lambda p: p["state"] == "offline", timeout_s=15)
            assert offline["at"] is None and offline["instance"] == "bravo"  # the will itself
            assert offline["nests"] == [] and offline["automations_leader"] is False
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    async with command_center(mosquitto_port, root) as late:  # retained for whoever comes later
        status = await late.wait_for(topic)
        assert status["state"] == "offline" and late.messages(topic)[0].retain


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#"])
def test_an_instance_id_must_be_one_topic_level(bad: str) -> None:
    with pytest.raises(ValueError, match="topic level"):
        Topics().instance_status(bad)
