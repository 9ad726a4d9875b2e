"""``say`` renders speech here (espeak-ng) and the drone's loudspeaker plays it as audio of the
right length; the same text again plays the clip already on the payload."""

from __future__ import annotations

import hashlib

from dronectl.nest.tts import render_speech
from sitl.component import Record
from tests.system.conftest import System

WARNING_ZH = "前方路面结冰，请减速慢行"


def records(system: System, kind: str) -> list[Record]:
    return [r for r in system.world.nest(3).ctx.recorder.all(kind) if r.kind == kind]


async def test_mandarin_warning_reaches_the_loudspeaker_as_audio_of_the_right_length(system: System) -> None:
    nest = system.nest(3)
    pcm, rate = render_speech(WARNING_ZH, "zh")
    expected_s = len(pcm) / 2 / rate
    assert expected_s > 1.5  # twelve Mandarin syllables

    await nest.say(WARNING_ZH, "zh")
    [stored] = records(system, "speaker.clip_stored")
    [played] = records(system, "speaker.clip")
    assert played.data["clip_id"] == stored.data["clip_id"]
    assert played.data["pcm_sha256"] == hashlib.sha256(pcm).hexdigest()  # the very audio rendered here
    assert abs(played.data["duration_s"] - expected_s) < 0.01
    assert played.data["sample_rate"] == rate

    await nest.say(WARNING_ZH, "zh", repeat=1)  # already on the payload: played, not sent again
    assert len(records(system, "speaker.clip_stored")) == 1
    assert len(records(system, "speaker.clip")) == 2
