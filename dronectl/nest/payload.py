"""The nest's payload: the loudspeaker (speech rendered here, or by the payload) and the light.

:class:`PayloadControl` renders speech (espeak-ng) into a clip, uploads it once and plays it
again for the same text, and records what was said or shown with the flight.
"""

from __future__ import annotations

from adapters.protocols import AudioClip, LightPattern
from dronectl.domain.errors import CommandFailed
from dronectl.nest.core import NestCore
from dronectl.nest.speech_clips import SpeechClips
from dronectl.nest.tts import TtsError, render_speech_async


class PayloadControl:
    """The loudspeaker and light of one nest."""

    def __init__(self, nest: NestCore) -> None:
        self._nest = nest
        self._speech_clips = SpeechClips()

    def attached(self) -> None:
        """The nest's adapters were (re)attached: a payload that was away may have lost its clips."""
        self._speech_clips = SpeechClips()

    async def say(self, text: str, lang: str = "zh", volume_pct: int | None = None, repeat: int = 0) -> None:
        """Speech rendered here (espeak-ng), sent to the loudspeaker as a clip, and played; the same
        text again plays the clip already on the payload. Without a local engine, the payload's own
        text-to-speech speaks it."""
        nest = self._nest
        key = (text, lang)
        clip_id = self._speech_clips.get(key)
        if clip_id is None:
            try:
                pcm, rate = await render_speech_async(text, lang)
            except TtsError as exc:
                nest.log.warning("nest.tts_unavailable", error=str(exc))
                await nest.call(
                    "speak", nest.hw.payload.say(text, lang=lang, volume_pct=volume_pct, repeat=repeat)
                )
                await nest.flight_event("speaker", text, lang=lang, rendered_by="payload")
                return
            clip_id = self._speech_clips.store(key)
            await nest.call("upload speech", nest.hw.payload.upload_clip(AudioClip(clip_id, pcm, rate)))
        try:
            await nest.call("speak", nest.hw.payload.play_clip(clip_id, repeat=repeat, volume_pct=volume_pct))
        except CommandFailed:
            # the payload may have lost it (restarted): render it again next time
            self._speech_clips.forget(key)
            raise
        await nest.flight_event("speaker", text, lang=lang, clip_id=clip_id)

    async def stop_speaker(self) -> None:
        await self._nest.call("stop speaker", self._nest.hw.payload.stop_speaker())

    async def set_light(self, pattern: LightPattern, brightness_pct: int = 100) -> None:
        await self._nest.call("light", self._nest.hw.payload.set_light(pattern, brightness_pct))
        await self._nest.flight_event("light", f"light {pattern.value}", pattern=pattern.value)
