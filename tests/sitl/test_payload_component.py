"""SimPayload driven directly in simulated time: speech, clip upload and playback, the light."""

from __future__ import annotations

import hashlib
import math
import struct

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl import payload as payload_module
from sitl.component import PAYLOAD_COMPID, MAVLinkMessage
from sitl.payload import LightPattern, SimPayload, SpeakerState, speech_duration_s
from tests.sitl.dock_payload_fakes import (
    GCS_COMPID,
    GCS_SYSID,
    NEST_SYSID,
    CapturedOutbox,
    Stepper,
    command_long,
    make_ctx,
    roundtrip,
)

PLAY_CLIP = mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP
LIGHT_SET = mav.MAV_CMD_DRONECTL_LIGHT_SET


def make_payload() -> tuple[SimPayload, CapturedOutbox, Stepper]:
    outbox = CapturedOutbox(PAYLOAD_COMPID)
    payload = SimPayload(make_ctx(), outbox)
    stepper = Stepper(payload)
    stepper.run(0.1)
    return payload, outbox, stepper


def send(payload: SimPayload, command: int, *params: float) -> None:
    payload.on_message(command_long(command, *params, target_component=PAYLOAD_COMPID))


def play_text(
    text: str, lang: str = "zh", volume: int = 255, repeat: int = 0, request_id: int = 1
) -> MAVLinkMessage:
    return roundtrip(
        mav.MAVLink_speaker_play_text_message(
            NEST_SYSID, PAYLOAD_COMPID, request_id, volume, repeat, lang.encode(), text.encode()[:200]
        )
    )


def sine_pcm(seconds: float, rate_hz: int, freq_hz: float = 440.0) -> bytes:
    n = round(seconds * rate_hz)
    return b"".join(
        struct.pack("<h", round(12000 * math.sin(2 * math.pi * freq_hz * i / rate_hz))) for i in range(n)
    )


def chunks(clip_id: int, pcm: bytes, rate_hz: int) -> list[MAVLinkMessage]:
    parts = [pcm[i : i + 200] for i in range(0, len(pcm), 200)]
    return [
        roundtrip(
            mav.MAVLink_speaker_clip_data_message(
                NEST_SYSID,
                PAYLOAD_COMPID,
                clip_id,
                seq,
                len(parts),
                rate_hz,
                len(part),
                part.ljust(200, b"\0"),
            )
        )
        for seq, part in enumerate(parts)
    ]


def clip_acks(outbox: CapturedOutbox) -> list[tuple[int, int]]:
    return [(a.seq, a.result) for a in outbox.of_type("SPEAKER_CLIP_ACK")]


def test_heartbeat_and_status_streams() -> None:
    _, outbox, stepper = make_payload()
    outbox.clear()
    stepper.run(5.0)
    hbs = outbox.of_type("HEARTBEAT")
    assert 4 <= len(hbs) <= 6
    assert hbs[0].type == mav.MAV_TYPE_ILLUMINATOR
    assert hbs[0].autopilot == mav.MAV_AUTOPILOT_INVALID
    assert hbs[0].get_srcComponent() == PAYLOAD_COMPID
    assert 4 <= len(outbox.of_type("SPEAKER_STATUS")) <= 6
    assert 4 <= len(outbox.of_type("LIGHT_STATUS")) <= 6
    assert outbox.of_type("SPEAKER_STATUS")[-1].state == mav.SPEAKER_STATE_IDLE


def test_speech_lasts_as_long_as_the_text_takes_to_say() -> None:
    assert speech_duration_s("前方路面结冰请减速慢行") == pytest.approx(11 / 4)
    assert speech_duration_s("Black ice ahead, slow down now") == pytest.approx(25 / 15)
    assert speech_duration_s("注意 ice") == pytest.approx(2 / 4 + 3 / 15)


def test_play_text_is_acked_with_the_request_id_and_recorded() -> None:
    payload, outbox, stepper = make_payload()
    text = "前方路面结冰，请减速慢行，注意避让"  # 17 wide characters
    payload.on_message(play_text(text, "zh", volume=90, repeat=1, request_id=4242))
    ack = outbox.acks(PLAY_CLIP)[-1]
    assert ack.result == mav.MAV_RESULT_ACCEPTED
    assert ack.result_param2 == 4242
    assert (ack.target_system, ack.target_component) == (GCS_SYSID, GCS_COMPID)
    status = outbox.of_type("SPEAKER_STATUS")[-1]
    assert (status.state, status.volume, status.clip_id, status.repeats_left) == (
        mav.SPEAKER_STATE_PLAYING,
        90,
        0,
        1,
    )
    record = payload.ctx.recorder.all("speaker.text")[-1]
    assert record.data["text"] == text
    assert record.data["lang"] == "zh"
    assert record.data["volume"] == 90
    assert record.data["duration_s"] == pytest.approx(17 / 4)
    took_s = stepper.run_until(lambda: payload.speaker_state is SpeakerState.IDLE, timeout_s=20)
    assert took_s == pytest.approx(2 * 17 / 4, abs=0.1)  # played twice
    finished = payload.ctx.recorder.all("speaker.finished")[-1]
    assert finished.data["reason"] == "done"
    assert finished.time_s - record.time_s == pytest.approx(2 * 17 / 4, abs=0.1)
    assert outbox.of_type("SPEAKER_STATUS")[-1].state == mav.SPEAKER_STATE_IDLE


def test_text_cut_inside_a_character_at_the_field_end_is_still_spoken() -> None:
    payload, outbox, _ = make_payload()
    text = "减速" * 40  # 240 bytes of UTF-8: cut at 200, inside a character
    payload.on_message(play_text(text))
    assert outbox.acks(PLAY_CLIP)[-1].result == mav.MAV_RESULT_ACCEPTED
    spoken = payload.ctx.recorder.all("speaker.text")[-1].data["text"]
    assert text.startswith(spoken) and len(spoken) == 66


def test_empty_text_and_bad_volume_are_denied() -> None:
    payload, outbox, _ = make_payload()
    payload.on_message(play_text("", request_id=7))
    assert outbox.acks(PLAY_CLIP)[-1].result == mav.MAV_RESULT_DENIED
    assert outbox.acks(PLAY_CLIP)[-1].result_param2 == 7
    payload.on_message(play_text("hello", "en", volume=150))
    assert outbox.acks(PLAY_CLIP)[-1].result == mav.MAV_RESULT_DENIED
    assert payload.ctx.recorder.all("speaker.text") == []


def test_volume_bounds() -> None:
    payload, outbox, _ = make_payload()
    vol = mav.MAV_CMD_DRONECTL_SPEAKER_VOLUME
    for bad in (-1.0, 100.5, 250.0):
        send(payload, vol, bad)
        assert outbox.acks(vol)[-1].result == mav.MAV_RESULT_DENIED
    for good in (0.0, 100.0, 35.0):
        send(payload, vol, good)
        assert outbox.acks(vol)[-1].result == mav.MAV_RESULT_ACCEPTED
    assert [r.data["volume"] for r in payload.ctx.recorder.all("speaker.volume")] == [0, 100, 35]
    assert outbox.of_type("SPEAKER_STATUS")[-1].volume == 35


def test_clip_upload_and_playback() -> None:
    payload, outbox, stepper = make_payload()
    pcm = sine_pcm(1.5, 16_000)
    parts = chunks(12, pcm, 16_000)
    for part in parts:
        payload.on_message(part)
    assert clip_acks(outbox) == [(seq, mav.MAV_RESULT_ACCEPTED) for seq in range(len(parts))]
    digest = hashlib.sha256(pcm).hexdigest()
    stored = payload.ctx.recorder.all("speaker.clip_stored")[-1]
    assert stored.data["pcm_sha256"] == digest and stored.data["samples"] == 24_000

    send(payload, PLAY_CLIP, 12, 0, 60)
    assert outbox.acks(PLAY_CLIP)[-1].result == mav.MAV_RESULT_ACCEPTED
    status = outbox.of_type("SPEAKER_STATUS")[-1]
    assert (status.state, status.clip_id, status.volume) == (mav.SPEAKER_STATE_PLAYING, 12, 60)
    played = payload.ctx.recorder.all("speaker.clip")[-1]
    assert played.data == {
        "clip_id": 12,
        "samples": 24_000,
        "sample_rate": 16_000,
        "duration_s": 1.5,
        "repeat": 0,
        "volume": 60,
        "pcm_sha256": digest,
    }
    took_s = stepper.run_until(lambda: payload.speaker_state is SpeakerState.IDLE, timeout_s=5)
    assert took_s == pytest.approx(1.5, abs=0.1)


def test_out_of_order_chunk_fails_and_a_repeated_one_is_acked_again() -> None:
    payload, outbox, _ = make_payload()
    pcm = sine_pcm(0.1, 8_000)  # 1600 bytes, 8 chunks
    parts = chunks(3, pcm, 8_000)
    payload.on_message(parts[0])
    payload.on_message(parts[1])
    payload.on_message(parts[1])  # its ack was lost: sent again
    payload.on_message(parts[3])  # chunk 2 is missing
    assert clip_acks(outbox) == [
        (0, mav.MAV_RESULT_ACCEPTED),
        (1, mav.MAV_RESULT_ACCEPTED),
        (1, mav.MAV_RESULT_ACCEPTED),
        (3, mav.MAV_RESULT_FAILED),
    ]
    assert payload.speaker_state is SpeakerState.RECEIVING_CLIP
    for part in parts[2:]:
        payload.on_message(part)
    clip = payload.clip(3)
    assert clip is not None and clip.pcm == pcm  # the repeated chunk was not stored twice


def test_stalled_upload_is_dropped() -> None:
    payload, _, stepper = make_payload()
    payload.on_message(chunks(4, sine_pcm(0.1, 8_000), 8_000)[0])
    assert payload.speaker_state is SpeakerState.RECEIVING_CLIP
    stepper.run(12.0)
    assert payload.speaker_state is SpeakerState.IDLE
    assert payload.ctx.recorder.all("speaker.upload_dropped")


def test_clip_over_the_size_limit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payload_module, "MAX_CLIP_BYTES", 1000)
    payload, outbox, _ = make_payload()
    for part in chunks(5, sine_pcm(0.1, 8_000), 8_000):  # 1600 bytes
        payload.on_message(part)
    results = [r for _, r in clip_acks(outbox)]
    assert results[:5] == [mav.MAV_RESULT_ACCEPTED] * 5
    assert results[5] == mav.MAV_RESULT_FAILED
    assert payload.clip(5) is None


def test_unknown_clip_is_denied() -> None:
    payload, outbox, _ = make_payload()
    send(payload, PLAY_CLIP, 99, 0, -1)
    assert outbox.acks(PLAY_CLIP)[-1].result == mav.MAV_RESULT_DENIED
    assert any("no clip 99" in t for t in outbox.texts())


def test_stop_interrupts_playback() -> None:
    payload, outbox, stepper = make_payload()
    payload.on_message(play_text("Black ice ahead. Slow down and change lane.", "en", repeat=5))
    stepper.run(1.0)
    send(payload, mav.MAV_CMD_DRONECTL_SPEAKER_STOP)
    assert outbox.acks(mav.MAV_CMD_DRONECTL_SPEAKER_STOP)[-1].result == mav.MAV_RESULT_ACCEPTED
    assert payload.speaker_state is SpeakerState.IDLE
    assert payload.ctx.recorder.all("speaker.stop")
    assert payload.ctx.recorder.all("speaker.finished")[-1].data["reason"] == "stopped"
    assert outbox.of_type("SPEAKER_STATUS")[-1].state == mav.SPEAKER_STATE_IDLE


def test_light_patterns_and_bounds() -> None:
    payload, outbox, _ = make_payload()
    send(payload, LIGHT_SET, mav.LIGHT_PATTERN_POLICE, 80)
    assert outbox.acks(LIGHT_SET)[-1].result == mav.MAV_RESULT_ACCEPTED
    status = outbox.of_type("LIGHT_STATUS")[-1]
    assert (status.pattern, status.brightness) == (mav.LIGHT_PATTERN_POLICE, 80)
    assert payload.ctx.recorder.all("light")[-1].data == {"pattern": "police", "brightness": 80}
    for pattern, brightness in ((7, 50), (1.5, 50), (1, 101), (1, -3)):
        send(payload, LIGHT_SET, pattern, brightness)
        assert outbox.acks(LIGHT_SET)[-1].result == mav.MAV_RESULT_DENIED
    assert payload.light_pattern is LightPattern.POLICE


def test_standard_illuminator_commands() -> None:
    payload, outbox, _ = make_payload()
    configure = mav.MAV_CMD_DO_ILLUMINATOR_CONFIGURE
    on_off = mav.MAV_CMD_ILLUMINATOR_ON_OFF
    send(payload, configure, mav.ILLUMINATOR_MODE_INTERNAL_CONTROL, 90, 0.4, 25)
    assert outbox.acks(configure)[-1].result == mav.MAV_RESULT_ACCEPTED
    assert outbox.of_type("LIGHT_STATUS")[-1].pattern == mav.LIGHT_PATTERN_STROBE
    assert payload.ctx.recorder.all("light")[-1].data == {
        "pattern": "strobe",
        "brightness": 90,
        "period_s": pytest.approx(0.4),
        "duty_pct": 25.0,
    }
    send(payload, on_off, 0)
    assert outbox.of_type("LIGHT_STATUS")[-1].pattern == mav.LIGHT_PATTERN_OFF
    send(payload, on_off, 1)
    assert outbox.of_type("LIGHT_STATUS")[-1].pattern == mav.LIGHT_PATTERN_STROBE
    send(payload, configure, mav.ILLUMINATOR_MODE_INTERNAL_CONTROL, 60, 0, 0)
    assert outbox.of_type("LIGHT_STATUS")[-1].pattern == mav.LIGHT_PATTERN_STEADY
    send(payload, on_off, 2)
    assert outbox.acks(on_off)[-1].result == mav.MAV_RESULT_DENIED
    send(payload, configure, mav.ILLUMINATOR_MODE_EXTERNAL_SYNC, 60, 0, 0)
    assert outbox.acks(configure)[-1].result == mav.MAV_RESULT_UNSUPPORTED


def test_unknown_command_unsupported_and_request_message() -> None:
    payload, outbox, _ = make_payload()
    send(payload, mav.MAV_CMD_NAV_TAKEOFF)
    assert outbox.acks(mav.MAV_CMD_NAV_TAKEOFF)[-1].result == mav.MAV_RESULT_UNSUPPORTED
    outbox.clear()
    send(payload, mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_LIGHT_STATUS)
    assert [m.get_type() for m in outbox.sent] == ["COMMAND_ACK", "LIGHT_STATUS"]
