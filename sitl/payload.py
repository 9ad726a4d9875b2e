"""The simulated payload (component 158): loudspeaker and warning light on the drone.

It sends HEARTBEAT at 1 Hz as MAV_TYPE_ILLUMINATOR (MAVLink has no loudspeaker type; the light
is the part a standard ground station can drive), and SPEAKER_STATUS and LIGHT_STATUS at 1 Hz
and on change.

Loudspeaker:
- SPEAKER_PLAY_TEXT speaks a text; it lasts as long as the text takes to say (about 4 CJK
  characters or 15 other characters a second), once plus ``repeat`` times. Answered with
  COMMAND_ACK(MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP, result_param2=request_id).
- SPEAKER_CLIP_DATA uploads 16-bit mono PCM in chunks, each answered with SPEAKER_CLIP_ACK; chunks
  must come in order (a repeated last chunk is acknowledged again, anything else out of order
  FAILED), and clips and the whole store are bounded in size.
- MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP plays a stored clip (samples / sample rate seconds a play;
  unknown clip DENIED), SPEAKER_STOP stops, SPEAKER_VOLUME sets 0-100 %.
A new play interrupts the one in progress, as a public-address system does.

Warning light: MAV_CMD_DRONECTL_LIGHT_SET (pattern, brightness), MAV_CMD_ILLUMINATOR_ON_OFF
(on restores the last pattern, steady by default) and MAV_CMD_DO_ILLUMINATOR_CONFIGURE (a strobe
period with a duty cycle below 100 % means STROBE, else STEADY; it applies at once).

Everything it plays or shows goes to ``ctx.recorder`` (component "payload").
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from dataclasses import dataclass, field

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import PAYLOAD_COMPID, MAVLinkMessage, Outbox
from sitl.environment import NestContext
from sitl.peripheral import Command, MessageStreams

CJK_CHARS_PER_S = 4.0  # Mandarin text-to-speech
OTHER_CHARS_PER_S = 15.0  # English and other alphabetic text
MIN_SPEECH_S = 0.5
BYTES_PER_SAMPLE = 2
MAX_CLIP_BYTES = 2 * 1024 * 1024  # about 65 s at 16 kHz
MAX_STORE_BYTES = 8 * 1024 * 1024
UPLOAD_TIMEOUT_S = 10.0  # an upload silent this long is dropped
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000


class SpeakerState(enum.IntEnum):
    IDLE = mav.SPEAKER_STATE_IDLE
    PLAYING = mav.SPEAKER_STATE_PLAYING
    RECEIVING_CLIP = mav.SPEAKER_STATE_RECEIVING_CLIP
    FAULT = mav.SPEAKER_STATE_FAULT


class LightPattern(enum.IntEnum):
    OFF = mav.LIGHT_PATTERN_OFF
    STEADY = mav.LIGHT_PATTERN_STEADY
    STROBE = mav.LIGHT_PATTERN_STROBE
    POLICE = mav.LIGHT_PATTERN_POLICE


@dataclass(frozen=True)
class Clip:
    clip_id: int
    sample_rate_hz: int
    pcm: bytes

    @property
    def samples(self) -> int:
        return len(self.pcm) // BYTES_PER_SAMPLE

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate_hz


@dataclass
class _Upload:
    clip_id: int
    total: int
    sample_rate_hz: int
    next_seq: int = 0
    data: bytearray = field(default_factory=bytearray)
    last_heard_s: float = 0.0


@dataclass
class _Playback:
    clip_id: int  # 0: text-to-speech
    play_s: float  # one play
    repeats_left: int
    play_ends_s: float


def speech_duration_s(text: str) -> float:
    """How long the text-to-speech takes to say ``text``."""
    cjk = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
    other = sum(1 for ch in text if not ch.isspace()) - cjk
    return max(MIN_SPEECH_S, cjk / CJK_CHARS_PER_S + other / OTHER_CHARS_PER_S)


def _cstr(raw: bytes) -> str:
    """A NUL-terminated UTF-8 field; a character cut off at the field's end is dropped."""
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="ignore")


class SimPayload:
    component_id = PAYLOAD_COMPID

    def __init__(self, ctx: NestContext, outbox: Outbox, volume_pct: int = 70) -> None:
        self.ctx = ctx
        self.outbox = outbox
        self._now_s = 0.0
        self.volume_pct = volume_pct
        self._playback: _Playback | None = None
        self._clips: dict[int, Clip] = {}
        self._uploads: dict[int, _Upload] = {}
        self.light_pattern = LightPattern.OFF
        self.light_brightness_pct = 100
        self._last_on_pattern = LightPattern.STEADY
        self.strobe_period_s = 0.5
        self.strobe_duty_pct = 50.0
        self._last_speaker_key: tuple[int, ...] | None = None
        self._last_light_key: tuple[int, ...] | None = None
        self.streams = MessageStreams(
            outbox,
            {
                mav.MAVLINK_MSG_ID_HEARTBEAT: (1.0, self._heartbeat),
                mav.MAVLINK_MSG_ID_SPEAKER_STATUS: (1.0, self._speaker_status),
                mav.MAVLINK_MSG_ID_LIGHT_STATUS: (1.0, self._light_status),
            },
        )

    # state the tests and the nest may read -------------------------------------------------------
    @property
    def speaker_state(self) -> SpeakerState:
        if self._playback is not None:
            return SpeakerState.PLAYING
        if self._uploads:
            return SpeakerState.RECEIVING_CLIP
        return SpeakerState.IDLE

    def clip(self, clip_id: int) -> Clip | None:
        return self._clips.get(clip_id)

    # SimComponent ------------------------------------------------------------------------------
    def on_message(self, msg: MAVLinkMessage) -> None:
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_SPEAKER_PLAY_TEXT:
            self._play_text(msg)
        elif msg_id == mav.MAVLINK_MSG_ID_SPEAKER_CLIP_DATA:
            self._clip_data(msg)
        else:
            cmd = Command.from_message(msg)
            if cmd is not None and not self.streams.handle(cmd, self._now_s):
                self._command(cmd)
        self._status_on_change()

    def step(self, now_s: float, dt_s: float) -> None:
        self._now_s = now_s
        playback = self._playback
        if playback is not None and now_s >= playback.play_ends_s:
            if playback.repeats_left > 0:
                playback.repeats_left -= 1
                playback.play_ends_s += playback.play_s
            else:
                self._finish("done")
        for clip_id in [c for c, u in self._uploads.items() if now_s - u.last_heard_s > UPLOAD_TIMEOUT_S]:
            upload = self._uploads.pop(clip_id)
            self._record("speaker.upload_dropped", clip_id=clip_id, received_chunks=upload.next_seq)
        self._status_on_change()
        self.streams.step(now_s)

    # commands ----------------------------------------------------------------------------------
    def _command(self, cmd: Command) -> None:
        if cmd.command == mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP:
            self._play_clip(cmd)
        elif cmd.command == mav.MAV_CMD_DRONECTL_SPEAKER_STOP:
            self._record("speaker.stop", playing=self._playback is not None)
            self._finish("stopped")
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        elif cmd.command == mav.MAV_CMD_DRONECTL_SPEAKER_VOLUME:
            volume = cmd.param(1)
            if not 0.0 <= volume <= 100.0:
                self._refuse(cmd, f"Speaker volume {volume:g} % is not 0-100")
                return
            self.volume_pct = round(volume)
            self._record("speaker.volume", volume=self.volume_pct)
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        elif cmd.command == mav.MAV_CMD_DRONECTL_LIGHT_SET:
            self._light_set(cmd)
        elif cmd.command == mav.MAV_CMD_ILLUMINATOR_ON_OFF:
            self._illuminator_on_off(cmd)
        elif cmd.command == mav.MAV_CMD_DO_ILLUMINATOR_CONFIGURE:
            self._illuminator_configure(cmd)
        elif not cmd.broadcast:
            self._ack(cmd, mav.MAV_RESULT_UNSUPPORTED)

    # loudspeaker -------------------------------------------------------------------------------
    def _play_text(self, msg: MAVLinkMessage) -> None:
        text = _cstr(msg._text_raw).strip()
        lang = _cstr(msg._lang_raw).strip() or "zh"
        command = mav.MAV_CMD_DRONECTL_SPEAKER_PLAY_CLIP
        source = (msg.get_srcSystem(), msg.get_srcComponent())
        if not text or not (msg.volume == 255 or 0 <= msg.volume <= 100):
            reason = "Speaker: empty text" if not text else f"Speaker volume {msg.volume} % is not 0-100"
            self.outbox.statustext(reason, mav.MAV_SEVERITY_WARNING)
            self.outbox.command_ack(command, mav.MAV_RESULT_DENIED, *source, result_param2=msg.request_id)
            return
        if msg.volume != 255:
            self.volume_pct = msg.volume
        duration = speech_duration_s(text)
        self._start(0, duration, msg.repeat)
        self._record(
            "speaker.text",
            text=text,
            lang=lang,
            volume=self.volume_pct,
            repeat=msg.repeat,
            duration_s=round(duration, 3),
            request_id=msg.request_id,
        )
        self.outbox.command_ack(command, mav.MAV_RESULT_ACCEPTED, *source, result_param2=msg.request_id)

    def _play_clip(self, cmd: Command) -> None:
        clip_id, repeat, volume = round(cmd.param(1)), cmd.param(2), cmd.param(3)
        clip = self._clips.get(clip_id)
        if clip is None:
            self._refuse(cmd, f"Speaker: no clip {clip_id}")
            return
        if repeat < 0 or repeat > 65535 or not (volume == -1.0 or 0.0 <= volume <= 100.0):
            self._refuse(cmd, "Speaker: repeat or volume out of range")
            return
        if volume != -1.0:
            self.volume_pct = round(volume)
        self._start(clip_id, clip.duration_s, int(repeat))
        self._record(
            "speaker.clip",
            clip_id=clip_id,
            samples=clip.samples,
            sample_rate=clip.sample_rate_hz,
            duration_s=round(clip.duration_s, 3),
            repeat=int(repeat),
            volume=self.volume_pct,
            pcm_sha256=hashlib.sha256(clip.pcm).hexdigest(),
        )
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)

    def _start(self, clip_id: int, play_s: float, repeat: int) -> None:
        self._finish("interrupted")
        self._playback = _Playback(clip_id, play_s, repeat, self._now_s + play_s)

    def _finish(self, reason: str) -> None:
        playback = self._playback
        if playback is None:
            return
        self._playback = None
        self._record("speaker.finished", clip_id=playback.clip_id, reason=reason)

    def _clip_data(self, msg: MAVLinkMessage) -> None:
        result = self._accept_chunk(msg)
        self.outbox.send(
            mav.MAVLink_speaker_clip_ack_message(
                msg.get_srcSystem(), msg.get_srcComponent(), msg.clip_id, msg.seq, result
            )
        )

    def _accept_chunk(self, msg: MAVLinkMessage) -> int:
        clip_id, seq, total, rate = msg.clip_id, msg.seq, msg.total, msg.sample_rate
        length = msg.len
        if clip_id == 0 or total == 0 or seq >= total or length > 200:
            return int(mav.MAV_RESULT_DENIED)
        if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
            return int(mav.MAV_RESULT_DENIED)
        upload = self._uploads.get(clip_id)
        if seq == 0:
            if upload is not None and upload.next_seq == 1 and upload.total == total:
                return int(mav.MAV_RESULT_ACCEPTED)  # the first chunk again: its ack was lost
            upload = _Upload(clip_id, total, rate, last_heard_s=self._now_s)
            self._uploads[clip_id] = upload
        elif upload is None:
            complete = self._clips.get(clip_id)
            if complete is not None and seq == total - 1:
                return int(mav.MAV_RESULT_ACCEPTED)  # the last chunk again: its ack was lost
            return int(mav.MAV_RESULT_FAILED)
        elif upload.total != total or upload.sample_rate_hz != rate:
            return int(mav.MAV_RESULT_FAILED)
        elif seq == upload.next_seq - 1:
            upload.last_heard_s = self._now_s
            return int(mav.MAV_RESULT_ACCEPTED)  # repeated chunk: already stored
        elif seq != upload.next_seq:
            return int(mav.MAV_RESULT_FAILED)
        chunk = bytes(msg.data[:length])
        stored = sum(len(c.pcm) for i, c in self._clips.items() if i != clip_id)
        if len(upload.data) + length > MAX_CLIP_BYTES or stored + len(upload.data) + length > MAX_STORE_BYTES:
            del self._uploads[clip_id]
            self._record("speaker.upload_dropped", clip_id=clip_id, received_chunks=seq, reason="no room")
            self.outbox.statustext(f"Speaker: clip {clip_id} too large", mav.MAV_SEVERITY_WARNING)
            return int(mav.MAV_RESULT_FAILED)
        upload.data += chunk
        upload.next_seq = seq + 1
        upload.last_heard_s = self._now_s
        if upload.next_seq == upload.total:
            del self._uploads[clip_id]
            if len(upload.data) % BYTES_PER_SAMPLE or not upload.data:
                self._record("speaker.upload_dropped", clip_id=clip_id, reason="not 16-bit samples")
                return int(mav.MAV_RESULT_FAILED)
            clip = Clip(clip_id, rate, bytes(upload.data))
            self._clips[clip_id] = clip
            self._record(
                "speaker.clip_stored",
                clip_id=clip_id,
                samples=clip.samples,
                sample_rate=rate,
                duration_s=round(clip.duration_s, 3),
                pcm_sha256=hashlib.sha256(clip.pcm).hexdigest(),
            )
        return int(mav.MAV_RESULT_ACCEPTED)

    # warning light -----------------------------------------------------------------------------
    def _light_set(self, cmd: Command) -> None:
        pattern, brightness = cmd.param(1), cmd.param(2)
        if pattern not in {float(p) for p in LightPattern}:
            self._refuse(cmd, f"Light: no pattern {pattern:g}")
            return
        if not 0.0 <= brightness <= 100.0:
            self._refuse(cmd, f"Light brightness {brightness:g} % is not 0-100")
            return
        self._set_light(LightPattern(int(pattern)), round(brightness))
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)

    def _illuminator_on_off(self, cmd: Command) -> None:
        flag = cmd.param(1)
        if flag not in (0.0, 1.0):
            self._refuse(cmd, "Light: on/off must be 0 or 1")
            return
        pattern = self._last_on_pattern if flag == 1.0 else LightPattern.OFF
        self._set_light(pattern, self.light_brightness_pct)
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)

    def _illuminator_configure(self, cmd: Command) -> None:
        mode, brightness, period_s, duty_pct = cmd.param(1), cmd.param(2), cmd.param(3), cmd.param(4)
        if mode == mav.ILLUMINATOR_MODE_EXTERNAL_SYNC:
            self._refuse(cmd, "Light: no external sync input", mav.MAV_RESULT_UNSUPPORTED)
            return
        if (
            mode not in (mav.ILLUMINATOR_MODE_UNKNOWN, mav.ILLUMINATOR_MODE_INTERNAL_CONTROL)
            or not 0.0 <= brightness <= 100.0
            or period_s < 0.0
            or not 0.0 <= duty_pct <= 100.0
        ):
            self._refuse(cmd, "Light: configuration out of range")
            return
        strobe = period_s > 0.0 and 0.0 < duty_pct < 100.0
        if strobe:
            self.strobe_period_s, self.strobe_duty_pct = period_s, duty_pct
        pattern = LightPattern.STROBE if strobe else LightPattern.STEADY
        self._set_light(pattern if brightness > 0 else LightPattern.OFF, round(brightness))
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)

    def _set_light(self, pattern: LightPattern, brightness_pct: int) -> None:
        self.light_pattern = pattern
        self.light_brightness_pct = brightness_pct
        if pattern is not LightPattern.OFF:
            self._last_on_pattern = pattern
        data: dict[str, object] = {"pattern": pattern.name.lower(), "brightness": brightness_pct}
        if pattern is LightPattern.STROBE:
            data |= {"period_s": self.strobe_period_s, "duty_pct": self.strobe_duty_pct}
        self._record("light", **data)

    # messages ----------------------------------------------------------------------------------
    def _heartbeat(self) -> MAVLinkMessage:
        active = self._playback is not None or self.light_pattern is not LightPattern.OFF
        status = mav.MAV_STATE_ACTIVE if active else mav.MAV_STATE_STANDBY
        return mav.MAVLink_heartbeat_message(
            mav.MAV_TYPE_ILLUMINATOR, mav.MAV_AUTOPILOT_INVALID, 0, 0, status, 3
        )

    def _speaker_status(self) -> MAVLinkMessage:
        playback = self._playback
        return mav.MAVLink_speaker_status_message(
            int(self.speaker_state),
            self.volume_pct,
            playback.clip_id if playback else 0,
            playback.repeats_left if playback else 0,
        )

    def _light_status(self) -> MAVLinkMessage:
        return mav.MAVLink_light_status_message(int(self.light_pattern), self.light_brightness_pct, 0)

    def _status_on_change(self) -> None:
        playback = self._playback
        speaker = (
            int(self.speaker_state),
            self.volume_pct,
            playback.clip_id if playback else 0,
            playback.repeats_left if playback else 0,
        )
        if speaker != self._last_speaker_key:
            self._last_speaker_key = speaker
            self.streams.send_now(mav.MAVLINK_MSG_ID_SPEAKER_STATUS)
        light = (int(self.light_pattern), self.light_brightness_pct)
        if light != self._last_light_key:
            self._last_light_key = light
            self.streams.send_now(mav.MAVLINK_MSG_ID_LIGHT_STATUS)

    # helpers -----------------------------------------------------------------------------------
    def _ack(self, cmd: Command, result: int) -> None:
        self.outbox.command_ack(cmd.command, result, cmd.source_system, cmd.source_component)

    def _refuse(self, cmd: Command, reason: str, result: int = mav.MAV_RESULT_DENIED) -> None:
        self.outbox.statustext(reason, mav.MAV_SEVERITY_WARNING)
        self._ack(cmd, result)
        self._record("command.refused", command=cmd.command, result=result, reason=reason)

    def _record(self, kind: str, **data: object) -> None:
        self.ctx.recorder.add(self._now_s, "payload", kind, **data)
