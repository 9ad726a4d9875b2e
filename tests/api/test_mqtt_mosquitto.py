"""The whole loop over MQTT only, against a real Mosquitto, with paho playing the command center."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dronectl.operations.models import NestState, Phase, Telemetry
from dronectl.transports.mqtt.settings import MqttSettings
from tests.api.command_center import poll_until, request
from tests.api.conftest import Mosquitto, command_center, running_api
from tests.api.fake_controller import FakeController

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET = {"target": {"lat": 43.90, "lon": 125.36, "alt_m": 60.0}}


def _settings(port: int, root: str, **extra: Any) -> MqttSettings:
    return MqttSettings(broker=f"mqtt://127.0.0.1:{port}", root=root, **extra)


async def test_launch_progress_events_telemetry_and_return(mosquitto_port: int, root: str) -> None:
    controller = FakeController(step_s=0.05)
    settings = _settings(mosquitto_port, root, telemetry_airborne_hz=10.0, telemetry_docked_hz=0.5)
    async with running_api(settings, controller), command_center(mosquitto_port, root) as cc:
        status = await cc.wait_for(f"{root}/status")
        assert status["state"] == "online" and status["nests"] == [1, 2, 3]
        ready = await cc.wait_for(f"{root}/nests/2/state")
        assert ready["phase"] == "ready" and ready["dock"]["drone_in_dock"] is True
        assert cc.messages(f"{root}/nests/2/state")[0].retain

        reply_to = f"{root}/replies/cc/launch"
        launch = request("launch", TARGET, reply_to=reply_to)
        await cc.publish(f"{root}/nests/2/commands/cc", launch)
        reply = await cc.wait_for(reply_to, lambda p: p["kind"] == "reply")
        assert reply == {
            "kind": "reply",
            "id": launch["id"],
            "ok": True,
            "result": {"state": "accepted", "message": "preflight checks passed"},
            "error": None,
            "repeated": False,
        }
        done = await cc.wait_for(reply_to, lambda p: p["kind"] == "progress" and p["state"] == "succeeded")
        assert done["result"] == {"flight_id": f"flight-{launch['id']}"}
        states = [p["state"] for p in cc.payloads(reply_to) if p["kind"] == "progress"]
        assert states == ["accepted", "in_progress", "in_progress", "succeeded"]
        assert [c.id for c in controller.executed] == [launch["id"]]

        on_station = await cc.wait_for(f"{root}/nests/2/state", lambda p: p["phase"] == "on_station")
        assert on_station["flight"]["command_id"] == launch["id"]
        # the event travels on its own topics: wait for it, then check the order
        await cc.wait_for(f"{root}/nests/2/events", lambda p: p["kind"] == "on_station")
        await cc.wait_for(f"{root}/events", lambda p: p["kind"] == "on_station")
        kinds = [e["kind"] for e in cc.payloads(f"{root}/nests/2/events")]
        assert kinds[:2] == ["launched", "on_station"]
        assert [e["kind"] for e in cc.payloads(f"{root}/events")][:2] == ["launched", "on_station"]

        # airborne: telemetry at about 10 Hz, every sample valid and fresh
        start = time.monotonic()
        await cc.wait_until(
            lambda: (
                len([m for m in cc.messages(f"{root}/nests/2/telemetry") if m.at_monotonic_s > start]) >= 5
            ),
            what="airborne telemetry",
        )
        sample = Telemetry.model_validate_json(cc.messages(f"{root}/nests/2/telemetry")[-1].payload)
        assert sample.position.lat == 43.90 and sample.ground_speed_mps > 0

        back = request("return_home", reply_to=f"{root}/replies/cc/rtl")
        await cc.publish(f"{root}/nests/2/commands/cc", back)
        await cc.wait_for(f"{root}/replies/cc/rtl", lambda p: p.get("state") == "succeeded")
        await cc.wait_for(f"{root}/nests/2/events", lambda p: p["kind"] == "landed")
        home = await cc.wait_for(f"{root}/nests/2/state", lambda p: p["phase"] == "charging")
        assert home["flight"] is None


async def test_docked_telemetry_is_slow(mosquitto_port: int, root: str) -> None:
    settings = _settings(mosquitto_port, root, telemetry_airborne_hz=20.0, telemetry_docked_hz=1.0)
    async with (
        running_api(settings, FakeController(nest_ids=(1,))),
        command_center(mosquitto_port, root) as cc,
    ):
        await cc.wait_until(lambda: len(cc.messages(f"{root}/nests/1/telemetry")) >= 3, timeout_s=5)
        stamps = [m.at_monotonic_s for m in cc.messages(f"{root}/nests/1/telemetry")]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert min(gaps) > 0.7  # 1 Hz docked, not the 20 Hz airborne rate


async def test_refusals_over_mqtt(mosquitto_port: int, root: str) -> None:
    controller = FakeController()
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        command_center(mosquitto_port, root) as cc,
    ):
        topic = f"{root}/nests/1/commands/cc"
        old = datetime.now(UTC) - timedelta(seconds=60)
        expired = request("launch", TARGET, reply_to=f"{root}/replies/cc/a", issued_at=old, ttl_s=10)
        await cc.publish(topic, expired)
        reply = await cc.wait_for(f"{root}/replies/cc/a")
        assert reply["ok"] is False and reply["error"]["code"] == "expired"

        forbidden = request("maintenance.set", {"on": True}, role="pilot", reply_to=f"{root}/replies/cc/b")
        await cc.publish(topic, forbidden)
        reply = await cc.wait_for(f"{root}/replies/cc/b")
        assert reply["error"]["code"] == "forbidden"

        await cc.publish(
            topic, b'{"id": "x1", "reply_to": "' + f"{root}/replies/cc/c".encode() + b'", "method": 5}'
        )
        reply = await cc.wait_for(f"{root}/replies/cc/c")
        assert reply["id"] == "x1" and reply["error"]["code"] == "malformed"

        await cc.publish(topic, b"\xff\xfe not json")
        event = await cc.wait_for(
            f"{root}/events", lambda e: e["data"].get("code") == "malformed" and not e["command_id"]
        )
        assert event["kind"] == "command_rejected"

        # refused by the controller: nest in maintenance (a commander sets it)
        await cc.publish(
            f"{root}/nests/1/commands/cmd",
            request(
                "maintenance.set",
                {"on": True},
                role="commander",
                user="cmd",
                reply_to=f"{root}/replies/cmd/d",
            ),
        )
        await cc.wait_for(f"{root}/replies/cmd/d", lambda p: p.get("state") == "succeeded")
        await cc.publish(topic, request("launch", TARGET, reply_to=f"{root}/replies/cc/e"))
        reply = await cc.wait_for(f"{root}/replies/cc/e")
        assert reply["error"]["code"] == "refused"
        assert "nest 1 is in maintenance" in reply["error"]["reasons"]

        assert [c.method.value for c in controller.executed] == ["maintenance.set", "launch"]
        rejected = [e for e in cc.payloads(f"{root}/nests/1/events") if e["kind"] == "command_rejected"]
        assert {e["data"]["code"] for e in rejected} >= {"expired", "forbidden", "malformed"}


async def test_repeated_id_is_executed_once(mosquitto_port: int, root: str) -> None:
    controller = FakeController()
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        command_center(mosquitto_port, root) as cc,
    ):
        say = request(
            "speaker.say", {"text": "前方路面结冰，请减速慢行", "lang": "zh"}, reply_to=f"{root}/replies/cc/s"
        )
        await cc.publish(f"{root}/nests/3/commands/cc", say)
        await cc.wait_for(f"{root}/replies/cc/s", lambda p: p.get("state") == "succeeded")
        await cc.publish(f"{root}/nests/3/commands/cc", say)  # a client retry, same id
        repeat = await cc.wait_for(f"{root}/replies/cc/s", lambda p: p.get("repeated") is True)
        assert repeat["ok"] is True and repeat["result"]["state"] == "accepted"
        assert [c.id for c in controller.executed] == [say["id"]]
        assert controller.executed[0].args.text == "前方路面结冰，请减速慢行"  # type: ignore[attr-defined]


async def test_retained_command_is_never_executed(mosquitto_port: int, root: str) -> None:
    controller = FakeController()
    async with command_center(mosquitto_port, root) as cc:
        # published (retained) while the service is not there
        stale = request("launch", TARGET, reply_to=f"{root}/replies/cc/r", ttl_s=600)
        await cc.publish(f"{root}/nests/1/commands/cc", stale, retain=True)
        try:
            async with running_api(_settings(mosquitto_port, root), controller) as run:
                fresh = request("hold", reply_to=f"{root}/replies/cc/h")
                await cc.publish(f"{root}/nests/1/commands/cc", fresh)
                await cc.wait_for(f"{root}/replies/cc/h")
                assert run.api.connections == 1
                assert [c.id for c in controller.executed] == [fresh["id"]]
                assert cc.payloads(f"{root}/replies/cc/r") == []
        finally:
            await cc.publish(f"{root}/nests/1/commands/cc", b"", retain=True)  # clear the retained message


async def test_messages_beyond_our_subscriptions_are_ignored(mosquitto_port: int, root: str) -> None:
    controller = FakeController()
    async with (
        running_api(_settings(mosquitto_port, root), controller) as run,
        command_center(mosquitto_port, root) as cc,
    ):
        client = run.api._client
        assert client is not None
        await client.subscribe(f"{root}/#")  # as if the broker sent us more than we asked for
        await client.subscribe("elsewhere/#")
        launch = request("launch", TARGET, reply_to=f"{root}/replies/cc/x")
        await cc.publish(f"{root}/nests/1/commands/cc/extra", launch)
        await cc.publish("elsewhere/nests/1/commands", launch)
        await cc.publish(f"{root}/nests/01/state", launch)
        ok = request("hold", reply_to=f"{root}/replies/cc/ok")
        await cc.publish(f"{root}/nests/1/commands/cc", ok)
        await cc.wait_for(f"{root}/replies/cc/ok")
        assert [c.id for c in controller.executed] == [ok["id"]]
        assert cc.payloads(f"{root}/replies/cc/x") == []


async def test_incident_reaches_the_controller(mosquitto_port: int, root: str) -> None:
    controller = FakeController()
    async with (
        running_api(_settings(mosquitto_port, root), controller),
        command_center(mosquitto_port, root) as cc,
    ):
        incident = {
            "id": "inc-20241213-1",
            "kind": "traffic_accident",
            "position": {"lat": 43.87, "lon": 125.33},
            "priority": 1,
            "text": "多车追尾，路面结冰",
            "reported_at": datetime.now(UTC).isoformat(),
            "actor": {"id": "dispatch", "role": "commander"},
        }
        await cc.publish(f"{root}/incidents/dispatch", incident)
        await cc.publish(f"{root}/incidents/dispatch", {"id": "bad", "kind": "x"})
        await cc.wait_until(lambda: len(controller.incidents) == 1, what="incident")
        assert controller.incidents[0].text == "多车追尾，路面结冰"
        event = await cc.wait_for(f"{root}/events", lambda e: e["kind"] == "command_rejected")
        assert "incident" in event["message"]


async def test_clean_shutdown_says_offline(mosquitto_port: int, root: str) -> None:
    async with command_center(mosquitto_port, root) as cc:
        async with running_api(_settings(mosquitto_port, root), FakeController()):
            await cc.wait_for(f"{root}/status", lambda p: p["state"] == "online")
        await cc.wait_for(f"{root}/status", lambda p: p["state"] == "offline")


async def test_last_will_on_abrupt_disconnect(mosquitto_port: int, root: str) -> None:
    async with command_center(mosquitto_port, root) as cc:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "tests.api.run_fake_service", "127.0.0.1", str(mosquitto_port), root],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await cc.wait_for(f"{root}/status", lambda p: p["state"] == "online", timeout_s=20)
            await cc.wait_for(f"{root}/nests/3/state")
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
            offline = await cc.wait_for(f"{root}/status", lambda p: p["state"] == "offline", timeout_s=15)
            assert offline["at"] is None  # the will itself, not a goodbye
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    # a late subscriber sees the retained offline status
    async with command_center(mosquitto_port, root) as late:
        status = await late.wait_for(f"{root}/status")
        assert status["state"] == "offline"
        assert late.messages(f"{root}/status")[0].retain


async def test_broker_restart_mid_flight(own_mosquitto: Mosquitto, root: str) -> None:
    port = own_mosquitto.port
    controller = FakeController(step_s=0.05)
    settings = _settings(port, root, reconnect_min_s=0.1, reconnect_max_s=0.5, telemetry_airborne_hz=10.0)
    async with running_api(settings, controller) as run:
        async with command_center(port, root) as cc:
            launch = request("launch", TARGET, reply_to=f"{root}/replies/cc/l")
            await cc.publish(f"{root}/nests/1/commands/cc", launch)
            await cc.wait_for(f"{root}/replies/cc/l", lambda p: p.get("state") == "succeeded")
            await cc.wait_for(f"{root}/nests/1/state", lambda p: p["phase"] == "on_station")

        await asyncio.to_thread(own_mosquitto.stop)
        await poll_until(lambda: not run.api.connected.is_set(), timeout_s=15, what="the API to notice")
        # the drone goes on flying while the broker is away: it starts home
        controller._set_phase(1, Phase.RETURNING)
        served_while_down = controller.telemetry_served
        await asyncio.sleep(0.3)  # an outage of a few telemetry periods (10 Hz)
        assert controller.telemetry_served == served_while_down  # nothing sampled to be queued
        outage_over = time.time()

        await asyncio.to_thread(own_mosquitto.start)  # empty: no retained messages survive this restart
        await poll_until(lambda: run.api.connections >= 2, timeout_s=15, what="the API to reconnect")
        async with command_center(port, root) as cc:
            state = NestState.model_validate(await cc.wait_for(f"{root}/nests/1/state"))
            assert state.phase is Phase.RETURNING  # republished retained, as it is now
            assert (await cc.wait_for(f"{root}/status"))["state"] == "online"
            await cc.wait_until(lambda: len(cc.messages(f"{root}/nests/1/telemetry")) >= 3, what="telemetry")
            for m in cc.messages(f"{root}/nests/1/telemetry"):
                assert Telemetry.model_validate_json(m.payload).at.timestamp() >= outage_over - 0.1
            # and commands work again
            await cc.publish(f"{root}/nests/1/commands/cc", request("hold", reply_to=f"{root}/replies/cc/h"))
            assert (await cc.wait_for(f"{root}/replies/cc/h"))["ok"] is True


async def test_commands_sent_while_the_service_is_away_are_delivered_and_judged(
    mosquitto_port: int, root: str
) -> None:
    """The persistent session (clean session off, the same client id, QoS 1): what a client
    publishes while the service is disconnected is kept by the broker and delivered when it comes
    back, each command judged by its own expiry: the one still in time runs, the expired one is
    refused (answered, not lost)."""
    client_id = f"dronectl-test-{uuid.uuid4().hex[:8]}"
    settings = _settings(mosquitto_port, root, client_id=client_id)
    async with command_center(mosquitto_port, root) as cc:
        async with running_api(settings, FakeController()) as first:
            assert first.api.connections == 1  # the session (and its subscription) now exists
        in_time = request("hold", reply_to=f"{root}/replies/cc/in-time", ttl_s=60)
        expired = request(
            "hold",
            reply_to=f"{root}/replies/cc/late",
            issued_at=datetime.now(UTC) - timedelta(seconds=30),
            ttl_s=5,
        )
        await cc.publish(f"{root}/nests/1/commands/cc", in_time)  # nobody subscribed is online
        await cc.publish(f"{root}/nests/1/commands/cc", expired)
        controller = FakeController()
        async with running_api(settings, controller):
            reply = await cc.wait_for(f"{root}/replies/cc/in-time", lambda p: p["kind"] == "reply")
            assert reply["ok"] is True
            late = await cc.wait_for(f"{root}/replies/cc/late")
            assert late["ok"] is False and late["error"]["code"] == "expired"
            assert [c.id for c in controller.executed] == [in_time["id"]]
    # leave no session behind on the shared broker: a clean session with the same id ends it
    await asyncio.to_thread(_end_session, mosquitto_port, client_id)


def _end_session(port: int, client_id: str) -> None:
    eraser = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    eraser.connect("127.0.0.1", port, 10)
    eraser.disconnect()


def test_reconnect_back_off_is_capped_at_a_few_seconds() -> None:
    assert MqttSettings().reconnect_max_s <= 3.0
    with pytest.raises(ValueError):
        MqttSettings(reconnect_max_s=30.0)
