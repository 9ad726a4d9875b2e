"""What any ``Payload`` implementation must do, run here with ``MavlinkPayload`` against the simulator."""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
from collections.abc import AsyncIterator

import pytest

from adapters.errors import CommandRejected, LinkLost
from adapters.mavlink.ids import PAYLOAD_COMPID
from adapters.mavlink.payload import MavlinkPayload
from adapters.protocols import AudioClip, CommandResult, LightPattern, Payload, SpeakerState
from sitl.environment import FaultKind
from tests.adapters.conftest import SIM_SPEED, SimulatedNest
from tests.adapters.test_dock_contract import first, watch_of


@pytest.fixture
async def payload(simulated: SimulatedNest) -> AsyncIterator[MavlinkPayload]:
    link = simulated.router.component(simulated.system_id, PAYLOAD_COMPID, "payload")
    adapter = MavlinkPayload(link)
    await link.watchdog.state.wait_for(lambda s: s.connected, 5.0)
    yield adapter
    adapter.close()


def tone(clip_id: int, seconds: float, rate_hz: int = 16_000) -> AudioClip:
    samples = [int(12_000 * math.sin(2 * math.pi * 880 * i / rate_hz)) for i in range(int(seconds * rate_hz))]
    return AudioClip(clip_id, struct.pack(f"<{len(samples)}h", *samples), rate_hz)


async def test_is_a_payload(payload: MavlinkPayload) -> None:
    _: Payload = payload  # the protocol, checked by mypy
    assert (await first(payload.speaker_status(), lambda s: True)).state is SpeakerState.IDLE


async def test_say_speaks_the_text(payload: MavlinkPayload, simulated: SimulatedNest) -> None:
    text = "请注意：警察正在执行任务，请远离此区域。"
    await payload.say(text, volume_pct=90, repeat=1)
    spoken = simulated.nest.ctx.recorder.all("speaker.text")
    assert [(r.data["text"], r.data["volume"], r.data["repeat"]) for r in spoken] == [(text, 90, 1)]
    status = await first(payload.speaker_status(), lambda s: s.state is SpeakerState.PLAYING)
    assert status.volume_pct == 90
    await first(payload.speaker_status(), lambda s: s.state is SpeakerState.IDLE, timeout_s=10.0)


async def test_text_too_long_or_empty_is_refused_before_sending(
    payload: MavlinkPayload, simulated: SimulatedNest
) -> None:
    for text in ("警" * 67, "   "):  # 201 bytes of UTF-8; nothing to say
        with pytest.raises(CommandRejected) as refused:
            await payload.say(text)
        assert refused.value.result is CommandResult.INVALID_ARGUMENT
    assert simulated.nest.ctx.recorder.all("speaker.text") == []


async def test_uploaded_clip_arrives_whole_and_plays(
    payload: MavlinkPayload, simulated: SimulatedNest
) -> None:
    clip = tone(12, 0.25)  # 8000 bytes: 40 chunks
    loop = asyncio.get_running_loop()
    started = loop.time()
    await payload.upload_clip(clip)
    assert loop.time() - started < 2.0  # each chunk goes as soon as the last one is confirmed
    stored = simulated.nest.ctx.recorder.all("speaker.clip_stored")
    assert [r.data["pcm_sha256"] for r in stored] == [hashlib.sha256(clip.pcm_s16le).hexdigest()]
    await payload.play_clip(12, repeat=2, volume_pct=50)
    status = await first(payload.speaker_status(), lambda s: s.clip_id == 12)
    assert status.state is SpeakerState.PLAYING
    await payload.stop_speaker()
    await first(payload.speaker_status(), lambda s: s.state is SpeakerState.IDLE)


async def test_upload_survives_packet_loss(payload: MavlinkPayload, simulated: SimulatedNest) -> None:
    clip = tone(5, 0.1)
    # The simulator runs 10x: its payload drops an upload silent for 10 s, which is 1 s here.
    quick = MavlinkPayload(simulated.router.component(simulated.system_id, PAYLOAD_COMPID, "payload"), 0.15)
    simulated.nest.inject(FaultKind.PACKET_LOSS, value=15.0)
    await quick.upload_clip(clip)
    simulated.nest.inject(FaultKind.CLEAR)
    stored = simulated.nest.ctx.recorder.all("speaker.clip_stored")
    assert [r.data["pcm_sha256"] for r in stored] == [hashlib.sha256(clip.pcm_s16le).hexdigest()]


async def test_unknown_clip_is_denied_with_the_reason(payload: MavlinkPayload) -> None:
    with pytest.raises(CommandRejected) as refused:
        await payload.play_clip(77)
    assert refused.value.result is CommandResult.DENIED
    assert "no clip 77" in refused.value.text


async def test_volume(payload: MavlinkPayload) -> None:
    await payload.set_volume(35)
    await first(payload.speaker_status(), lambda s: s.volume_pct == 35)
    with pytest.raises(CommandRejected) as refused:
        await payload.set_volume(150)
    assert refused.value.result is CommandResult.INVALID_ARGUMENT


async def test_light_patterns(payload: MavlinkPayload, simulated: SimulatedNest) -> None:
    await payload.set_light(LightPattern.POLICE, 80)
    status = await first(payload.light_status(), lambda s: s.pattern is LightPattern.POLICE)
    assert status.brightness_pct == 80
    await payload.set_light(LightPattern.OFF, 0)
    await first(payload.light_status(), lambda s: s.pattern is LightPattern.OFF)
    lights = [r.data["pattern"] for r in simulated.nest.ctx.recorder.all("light")]
    assert lights == ["police", "off"]


async def test_link_cut_fails_fast_and_recovers(payload: MavlinkPayload, simulated: SimulatedNest) -> None:
    loop = asyncio.get_running_loop()
    link, pump = watch_of(payload.link_state())
    try:
        cut_at = loop.time()
        simulated.nest.inject(FaultKind.LINK_LOSS, duration_s=4.0 * SIM_SPEED)
        await link.wait_for(lambda s: not s.connected, 3.0)
        assert loop.time() - cut_at <= 3.0
        with pytest.raises(LinkLost):
            await payload.say("hello", lang="en")
        with pytest.raises(LinkLost):
            await payload.upload_clip(tone(3, 0.05))
        await link.wait_for(lambda s: s.connected, 6.0)
        await payload.say("hello", lang="en")
    finally:
        pump.cancel()
