"""The ``Payload`` protocol over MAVLink with the dronectl dialect (component 158 of the nest).

- Text-to-speech: SPEAKER_PLAY_TEXT, answered with a COMMAND_ACK for
  MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP whose result_param2 is our request id.
- Clips: uploaded as SPEAKER_CLIP_DATA chunks of up to 200 bytes, one at a time, each confirmed
  by SPEAKER_CLIP_ACK before the next (resent when its ack does not come); then played with
  MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP.
- Stop, volume and the light are MAV_CMD_DRONECTL_* COMMAND_LONGs.
Status comes from SPEAKER_STATUS and LIGHT_STATUS, the link state from the payload's HEARTBEAT.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

from adapters.errors import CommandRejected, CommandTimeout, LinkLost
from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import MAV_RESULTS, RetryPolicy, raise_for
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.watch import Watch
from adapters.protocols import (
    AudioClip,
    CommandResult,
    LightPattern,
    LightStatus,
    LinkState,
    SpeakerState,
    SpeakerStatus,
)

TEXT_BYTES = 200
LANG_BYTES = 8
CHUNK_BYTES = 200
KEEP_VOLUME = 255

SPEAKER_STATES = {
    mav.SPEAKER_STATE_IDLE: SpeakerState.IDLE,
    mav.SPEAKER_STATE_PLAYING: SpeakerState.PLAYING,
    mav.SPEAKER_STATE_RECEIVING_CLIP: SpeakerState.RECEIVING_CLIP,
    mav.SPEAKER_STATE_FAULT: SpeakerState.FAULT,
}
LIGHT_PATTERNS = {
    mav.LIGHT_PATTERN_OFF: LightPattern.OFF,
    mav.LIGHT_PATTERN_STEADY: LightPattern.STEADY,
    mav.LIGHT_PATTERN_STROBE: LightPattern.STROBE,
    mav.LIGHT_PATTERN_POLICE: LightPattern.POLICE,
}
LIGHT_CODES = {pattern: code for code, pattern in LIGHT_PATTERNS.items()}

POLICY = RetryPolicy(ack_timeout_s=1.0, attempts=4, max_duration_s=10.0)
CHUNK_ACK_TIMEOUT_S = 0.5
CHUNK_ATTEMPTS = 8
UPLOAD_ATTEMPTS = 3


class _UploadBroken(Exception):
    """A chunk after the first was refused: the payload no longer has the upload's beginning."""


def speaker_status(msg: MAVLinkMessage) -> SpeakerStatus:
    return SpeakerStatus(
        state=SPEAKER_STATES.get(int(msg.state), SpeakerState.FAULT),
        volume_pct=int(msg.volume),
        clip_id=int(msg.clip_id),
        repeats_left=int(msg.repeats_left),
    )


def light_status(msg: MAVLinkMessage) -> LightStatus:
    return LightStatus(
        pattern=LIGHT_PATTERNS.get(int(msg.pattern), LightPattern.OFF),
        brightness_pct=int(msg.brightness),
        lamp_failed=bool(msg.fault),
    )


def _check_pct(what: str, value: int) -> None:
    if not 0 <= value <= 100:
        raise CommandRejected(what, CommandResult.INVALID_ARGUMENT, f"{value} % is not 0-100")


class MavlinkPayload:
    def __init__(self, link: ComponentLink, chunk_ack_timeout_s: float = CHUNK_ACK_TIMEOUT_S) -> None:
        self._link = link
        self._chunk_ack_timeout_s = chunk_ack_timeout_s
        self._speaker: Watch[SpeakerStatus] = Watch()
        self._light: Watch[LightStatus] = Watch()
        self._request_ids = itertools.cycle(range(1, 65536))
        self._chunk_acks: dict[tuple[int, int], asyncio.Future[int]] = {}
        self._upload_lock = asyncio.Lock()
        self._unsubscribe = link.subscribe(self._on_message)

    def close(self) -> None:
        self._unsubscribe()

    @property
    def latest_speaker(self) -> SpeakerStatus | None:
        return self._speaker.value

    @property
    def latest_light(self) -> LightStatus | None:
        return self._light.value

    # loudspeaker ----------------------------------------------------------------------------------
    async def say(
        self, text: str, *, lang: str = "zh", volume_pct: int | None = None, repeat: int = 0
    ) -> None:
        what = "speak a text"
        encoded = text.strip().encode()
        if not encoded or len(encoded) > TEXT_BYTES:
            reason = "empty text" if not encoded else f"text is {len(encoded)} bytes, at most {TEXT_BYTES}"
            raise CommandRejected(what, CommandResult.INVALID_ARGUMENT, reason)
        if volume_pct is not None:
            _check_pct(what, volume_pct)
        if not 0 <= repeat <= 255:
            raise CommandRejected(what, CommandResult.INVALID_ARGUMENT, "repeat must be 0-255")
        self._link.watchdog.ensure_connected()
        request_id = next(self._request_ids)
        link = self._link

        def build(attempt: int) -> MAVLinkMessage:
            return mav.MAVLink_speaker_play_text_message(
                link.system_id,
                link.component_id,
                request_id,
                KEEP_VOLUME if volume_pct is None else volume_pct,
                repeat,
                lang.encode()[:LANG_BYTES],
                encoded,
            )

        ack = await link.commands.transact(mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP, build, request_id, POLICY)
        raise_for(ack, what, link.name, link.watchdog.silent_s())

    async def play_clip(self, clip_id: int, *, repeat: int = 0, volume_pct: int | None = None) -> None:
        if volume_pct is not None:
            _check_pct("play a clip", volume_pct)
        volume = -1.0 if volume_pct is None else float(volume_pct)
        await self._command(
            f"play clip {clip_id}", mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP, (clip_id, repeat, volume)
        )

    async def stop_speaker(self) -> None:
        await self._command("stop the loudspeaker", mav.MAV_CMD_DRONECTL_SPEAKER_STOP, ())

    async def set_volume(self, volume_pct: int) -> None:
        _check_pct("set the volume", volume_pct)
        await self._command("set the volume", mav.MAV_CMD_DRONECTL_SPEAKER_VOLUME, (volume_pct,))

    async def upload_clip(self, clip: AudioClip) -> None:
        what = f"upload clip {clip.clip_id}"
        if not 1 <= clip.clip_id <= 65535 or not clip.pcm_s16le or len(clip.pcm_s16le) % 2:
            raise CommandRejected(what, CommandResult.INVALID_ARGUMENT, "clip id 1-65535 and 16-bit samples")
        chunks = [clip.pcm_s16le[i : i + CHUNK_BYTES] for i in range(0, len(clip.pcm_s16le), CHUNK_BYTES)]
        if len(chunks) > 65535:
            raise CommandRejected(what, CommandResult.INVALID_ARGUMENT, "clip too long")
        self._link.watchdog.ensure_connected()
        async with self._upload_lock:
            for attempt in range(UPLOAD_ATTEMPTS):
                try:
                    for seq, chunk in enumerate(chunks):
                        await self._send_chunk(what, clip, seq, len(chunks), chunk)
                    return
                except _UploadBroken:
                    # The payload lost the upload (rebooted, or dropped it after a silence): start over.
                    if attempt + 1 == UPLOAD_ATTEMPTS:
                        raise CommandRejected(
                            what, CommandResult.FAILED, "the payload kept dropping the upload"
                        ) from None

    # light -------------------------------------------------------------------------------------------
    async def set_light(self, pattern: LightPattern, brightness_pct: int = 100) -> None:
        _check_pct("set the light", brightness_pct)
        await self._command(
            f"set the light to {pattern.value}",
            mav.MAV_CMD_DRONECTL_LIGHT_SET,
            (LIGHT_CODES[pattern], brightness_pct),
        )

    # streams ------------------------------------------------------------------------------------------
    def speaker_status(self) -> AsyncIterator[SpeakerStatus]:
        return self._speaker.updates()

    def light_status(self) -> AsyncIterator[LightStatus]:
        return self._light.updates()

    def link_state(self) -> AsyncIterator[LinkState]:
        return self._link.watchdog.state.updates()

    # ---------------------------------------------------------------------------------------------------
    async def _command(self, what: str, command: int, params: tuple[float, ...]) -> None:
        self._link.watchdog.ensure_connected()
        ack = await self._link.commands.command_long(command, params, POLICY)
        raise_for(ack, what, self._link.name, self._link.watchdog.silent_s())

    async def _send_chunk(self, what: str, clip: AudioClip, seq: int, total: int, chunk: bytes) -> None:
        link = self._link
        msg = mav.MAVLink_speaker_clip_data_message(
            link.system_id,
            link.component_id,
            clip.clip_id,
            seq,
            total,
            clip.sample_rate_hz,
            len(chunk),
            list(chunk.ljust(CHUNK_BYTES, b"\x00")),
        )
        key = (clip.clip_id, seq)
        loop = asyncio.get_running_loop()
        lost = link.watchdog.lost_future()
        try:
            for _attempt in range(CHUNK_ATTEMPTS):
                ack: asyncio.Future[int] = loop.create_future()
                self._chunk_acks[key] = ack
                link.send(msg)
                waiting: set[asyncio.Future[Any]] = {ack, lost}
                done, _ = await asyncio.wait(
                    waiting, timeout=self._chunk_ack_timeout_s, return_when=asyncio.FIRST_COMPLETED
                )
                if lost.done():
                    raise LinkLost(link.name, link.watchdog.silent_s())
                if ack in done:
                    result = MAV_RESULTS.get(ack.result(), CommandResult.UNKNOWN)
                    if result is CommandResult.FAILED and seq > 0:
                        raise _UploadBroken
                    if not result.ok:
                        raise CommandRejected(what, result, f"chunk {seq + 1} of {total} refused")
                    return
            raise CommandTimeout(what, CHUNK_ATTEMPTS * self._chunk_ack_timeout_s, CHUNK_ATTEMPTS)
        finally:
            self._chunk_acks.pop(key, None)
            lost.cancel()

    def _on_message(self, msg: MAVLinkMessage) -> None:
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_SPEAKER_STATUS:
            self._speaker.set(speaker_status(msg))
        elif msg_id == mav.MAVLINK_MSG_ID_LIGHT_STATUS:
            self._light.set(light_status(msg))
        elif msg_id == mav.MAVLINK_MSG_ID_SPEAKER_CLIP_ACK:
            if (msg.target_system, msg.target_component) != (self._link.own_system, self._link.own_component):
                return
            fut = self._chunk_acks.get((int(msg.clip_id), int(msg.seq)))
            if fut is not None and not fut.done():
                fut.set_result(int(msg.result))
