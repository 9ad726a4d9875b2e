"""Speech rendered locally with espeak-ng: Mandarin and English, plausible durations, real audio."""

from __future__ import annotations

import array
import asyncio
import math
import shutil
import subprocess
import threading
from typing import Any

import pytest

from dronectl.nest.tts import TtsError, render_speech, render_speech_async, voice_for

assert shutil.which("espeak-ng"), "espeak-ng is not installed: scripts/system-deps.sh installs it"

ZH_SHORT = "前方道路结冰"
ZH_LONG = "前方道路结冰，请减速慢行，注意变道，避开事故路段。"
EN_SHORT = "Black ice ahead."
EN_LONG = "Black ice ahead. Slow down, change lane and keep clear of the accident on the right."


def _duration_s(pcm: bytes, rate: int) -> float:
    return len(pcm) / 2 / rate


def _rms(pcm: bytes) -> float:
    samples = array.array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def test_mandarin_speech_length_grows_with_the_text() -> None:
    short_pcm, rate = render_speech(ZH_SHORT, "zh")
    long_pcm, long_rate = render_speech(ZH_LONG, "zh")
    assert rate == long_rate and 8000 <= rate <= 48000
    assert len(short_pcm) % 2 == 0
    chars_short = len(ZH_SHORT)
    chars_long = sum(1 for ch in ZH_LONG if "\u4e00" <= ch <= "\u9fff")
    # Mandarin is spoken at roughly 2-6 syllables (characters) a second
    assert chars_short / 6 <= _duration_s(short_pcm, rate) <= chars_short / 1.5 + 1.0
    assert chars_long / 6 <= _duration_s(long_pcm, rate) <= chars_long / 1.5 + 2.0
    assert _duration_s(long_pcm, rate) > 2 * _duration_s(short_pcm, rate)
    assert _rms(long_pcm) > 300  # speech, not silence


def test_english_speech_length_matches_the_words() -> None:
    pcm, rate = render_speech(EN_LONG, "en")
    words = len(EN_LONG.split())
    # about 160 words a minute: 2.7 words a second; allow a wide margin for pauses
    assert words / 5 <= _duration_s(pcm, rate) <= words / 1.5 + 1.0
    short, _ = render_speech(EN_SHORT, "en")
    assert _duration_s(short, rate) < _duration_s(pcm, rate) / 2
    assert _rms(pcm) > 300


def test_language_tags_voices_and_errors() -> None:
    assert voice_for("zh") == voice_for("zh-CN") == "cmn"
    assert voice_for("en") == "en-us" and voice_for("en-GB") == "en-gb"
    with pytest.raises(TtsError, match="no voice for language 'fr'"):
        render_speech("bonjour", "fr")
    with pytest.raises(TtsError, match="empty"):
        render_speech("   ", "en")
    with pytest.raises(TtsError, match="too long"):
        render_speech("a" * 501, "en")


def test_text_is_never_taken_for_an_option() -> None:
    pcm, rate = render_speech("--help -w /tmp/x", "en")
    assert _duration_s(pcm, rate) > 0.5


async def test_async_rendering_does_not_block_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """espeak-ng only starts once the event loop has run another task: a render that held the loop
    would never see the gate open (a handshake, not a timing: a busy machine cannot fail it)."""
    import dronectl.nest.tts as tts

    gate = threading.Event()
    real_run = subprocess.run

    def gated_run(*args: Any, **kwargs: Any) -> Any:
        if not gate.wait(timeout=30):
            raise AssertionError("the event loop never ran while espeak-ng was due to start")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(tts.subprocess, "run", gated_run)

    async def open_gate() -> None:
        gate.set()

    loop_task = asyncio.create_task(open_gate())
    pcm, rate = await render_speech_async(ZH_LONG, "zh")
    await loop_task
    assert _duration_s(pcm, rate) > 2.0
