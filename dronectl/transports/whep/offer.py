"""What a viewer's WHEP offer asks for, checked before any WebRTC state is made.

The service sends only what the camera sends: H.264, packetization-mode 1, constrained
baseline (profile-level-id 42e01f). An offer must have exactly one video section that accepts
it; it may have one audio section (talk-back: the viewer sends microphone audio). Pure: parses
with aiortc's SDP module, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiortc import RTCRtpCodecCapability, RTCRtpSender
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

H264_PARAMETERS = {"level-asymmetry-allowed": "1", "packetization-mode": "1", "profile-level-id": "42e01f"}
H264 = RTCRtpCodecParameters(
    mimeType="video/H264", clockRate=90_000, payloadType=0, parameters=H264_PARAMETERS
)


class AudioWish(enum.Enum):
    NONE = "none"  # no audio section, or one we may leave inactive (the viewer only receives)
    TALK = "talk"  # the viewer sends audio (sendrecv or sendonly): talk-back


@dataclass(frozen=True)
class OfferSummary:
    video_codecs: tuple[str, ...]  # what the viewer offered, for the error text
    audio: AudioWish


def check_offer(sdp_text: str) -> OfferSummary:
    """Raise ValueError, with a reason a viewer's developer understands, unless we can answer."""
    if "v=0" not in sdp_text[:200]:
        raise ValueError("not an SDP offer (it must start with v=0)")
    try:
        description = SessionDescription.parse(sdp_text)
    except Exception as exc:  # noqa: BLE001 - aiortc raises assorted errors for malformed SDP
        raise ValueError(f"unparsable SDP offer: {exc}") from None
    videos = [m for m in description.media if m.kind == "video"]
    audios = [m for m in description.media if m.kind == "audio"]
    if len(videos) != 1:
        raise ValueError(f"the offer must have exactly one video section, it has {len(videos)}")
    if len(audios) > 1:
        raise ValueError(f"the offer may have at most one audio section, it has {len(audios)}")
    video = videos[0]
    if video.direction not in ("recvonly", "sendrecv"):
        raise ValueError(f"the video section is {video.direction}: a WHEP viewer must receive (recvonly)")
    offered = tuple(f"{c.mimeType} {c.parameters}" if c.parameters else c.mimeType for c in video.rtp.codecs)
    if not any(is_codec_compatible(H264, c) for c in video.rtp.codecs):
        raise ValueError(
            "the offer has no H.264 video with packetization-mode=1 and constrained baseline "
            "(profile-level-id 42e01f); this service sends the camera's H.264 as it is, never "
            "transcoded. Offered: " + ", ".join(offered or ("nothing",))
        )
    audio = AudioWish.NONE
    if audios and audios[0].direction in ("sendrecv", "sendonly") and audios[0].port != 0:
        audio = AudioWish.TALK
    return OfferSummary(offered, audio)


def h264_preferences() -> list[RTCRtpCodecCapability]:
    """Codec preferences for the video transceiver: constrained-baseline H.264 (and its RTX)."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in codecs if c.mimeType.lower() == "video/h264" and c.parameters == H264_PARAMETERS]
    rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    return chosen + rtx
