"""Text to speech for the drone's loudspeaker, rendered locally with espeak-ng.

espeak-ng (Debian package ``espeak-ng``) speaks Mandarin (voice ``cmn``) and English, offline,
with no model files to fetch. It writes a RIFF WAV file of mono 16-bit PCM (22050 Hz), which we
read with the stdlib :mod:`wave` module and hand over as raw little-endian samples, the format
of ``adapters.protocols.AudioClip``.

:func:`render_speech` blocks (it runs a process, at most ``TTS_TIMEOUT_S``); from asyncio call
:func:`render_speech_async`, which runs it in a worker thread so the event loop never waits.
The text goes to espeak-ng on stdin, never on its command line, so no text can be taken for an
option.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from dronectl.domain.errors import DronectlError

TTS_TIMEOUT_S = 30.0
DEFAULT_SPEED_WPM = 160  # a little slower than espeak-ng's 175: loudspeakers in the street
MAX_TEXT_CHARS = 500  # same limit as the API's speaker.say

# language tag (lower case) -> espeak-ng voice
VOICES: dict[str, str] = {
    "zh": "cmn",
    "zh-cn": "cmn",
    "cmn": "cmn",
    "en": "en-us",
    "en-us": "en-us",
    "en-gb": "en-gb",
}


class TtsError(DronectlError):
    """Speech could not be rendered (no engine, unknown language, engine failure)."""


def voice_for(lang: str) -> str:
    """The espeak-ng voice for a language tag (``zh``, ``en``, ``en-GB``...)."""
    voice = VOICES.get(lang.strip().lower())
    if voice is None:
        known = ", ".join(sorted({k for k in VOICES if len(k) == 2}))
        raise TtsError(f"no voice for language {lang!r} (known: {known})")
    return voice


def _engine() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise TtsError("espeak-ng is not installed (apt-get install espeak-ng)")
    return found


def read_wav_pcm(path: Path) -> tuple[bytes, int]:
    """(mono 16-bit little-endian PCM, sample rate) from a WAV file; other formats are refused."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise TtsError(f"espeak-ng wrote an unreadable WAV file: {exc}") from exc
    if channels != 1 or width != 2:
        raise TtsError(f"expected mono 16-bit audio, got {channels} channel(s) of {8 * width} bits")
    return frames, rate


def render_speech(text: str, lang: str = "zh", *, speed_wpm: int = DEFAULT_SPEED_WPM) -> tuple[bytes, int]:
    """Speak ``text`` in ``lang``: (pcm_s16le, sample_rate_hz). Blocking; see render_speech_async."""
    if not text.strip():
        raise TtsError("nothing to say: the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise TtsError(f"text too long: {len(text)} characters (at most {MAX_TEXT_CHARS})")
    if not 80 <= speed_wpm <= 450:
        raise TtsError(f"speed {speed_wpm} words per minute is outside 80..450")
    voice = voice_for(lang)
    engine = _engine()
    with tempfile.TemporaryDirectory(prefix="dronectl-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        cmd = [engine, "-v", voice, "-s", str(speed_wpm), "-b", "1", "-w", str(out), "--stdin"]
        try:
            done = subprocess.run(
                cmd, input=text.encode("utf-8"), capture_output=True, timeout=TTS_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"espeak-ng took longer than {TTS_TIMEOUT_S:g} s") from exc
        if done.returncode != 0 or not out.exists():
            detail = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
            raise TtsError(f"espeak-ng failed: {detail}")
        pcm, rate = read_wav_pcm(out)
    if not pcm:
        raise TtsError("espeak-ng produced no audio")
    return pcm, rate


async def render_speech_async(
    text: str, lang: str = "zh", *, speed_wpm: int = DEFAULT_SPEED_WPM
) -> tuple[bytes, int]:
    """render_speech in a worker thread: the event loop keeps running while espeak-ng works."""
    return await asyncio.to_thread(render_speech, text, lang, speed_wpm=speed_wpm)
