"""WHEP sessions (IETF WebRTC-HTTP Egress Protocol): one RTCPeerConnection per viewer.

A session is made from the viewer's SDP offer: its video transceiver sends the nest's ingest
(``PassthroughVideoTrack``, H.264 as the camera coded it) and, when the offer sends audio
(talk-back), an audio transceiver receives the viewer's microphone for the loudspeaker. The answer
carries every ICE candidate (aiortc gathers before answering), so no trickle is needed. A session
ends on DELETE, when its peer connection fails or closes, or when its video ends.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

import structlog
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from dronectl.video.errors import BadOffer
from dronectl.video.hub import VideoHub
from dronectl.video.offer import AudioWish, OfferSummary, check_offer, h264_preferences
from dronectl.video.talkback import TalkBack
from dronectl.video.track import PassthroughVideoTrack

log = structlog.get_logger(__name__)


@dataclass
class WhepSession:
    session_id: str
    nest_id: int
    viewer: str
    pc: RTCPeerConnection
    track: PassthroughVideoTrack
    talkback: TalkBack | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/whep/nests/{self.nest_id}/sessions/{self.session_id}"


class WhepSessions:
    def __init__(self, hub: VideoHub) -> None:
        self.hub = hub
        self.sessions: dict[str, WhepSession] = {}

    @staticmethod
    def check(offer_sdp: str) -> OfferSummary:
        try:
            return check_offer(offer_sdp)
        except ValueError as exc:
            raise BadOffer(str(exc)) from None

    async def open(self, nest_id: int, offer_sdp: str, viewer: str, *, talk: bool) -> tuple[WhepSession, str]:
        """A new session and its SDP answer. ``talk``: the viewer may send audio to the loudspeaker."""
        summary = self.check(offer_sdp)
        self.hub.check_watchable(nest_id)
        sub = await self.hub.subscribe(nest_id, f"whep {viewer}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: the LAN, and no internet
        track = PassthroughVideoTrack(sub)
        session = WhepSession(secrets.token_urlsafe(12), nest_id, viewer, pc, track)
        try:
            video = pc.addTransceiver(track, direction="sendonly")
            video.setCodecPreferences(h264_preferences())
            if summary.audio is AudioWish.TALK and talk:
                pc.addTransceiver("audio", direction="recvonly")
                session.talkback = TalkBack(nest_id, lambda: self.hub.sources.payload(nest_id))
            self._watch(session)
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            sub.close()
            await pc.close()
            if isinstance(exc, BadOffer):
                raise
            raise BadOffer(f"cannot answer the offer: {exc}") from None
        self.sessions[session.session_id] = session
        log.info("video.session_opened", nest=nest_id, session=session.session_id, viewer=viewer,
                 talkback=session.talkback is not None)  # fmt: skip
        return session, pc.localDescription.sdp

    def _watch(self, session: WhepSession) -> None:
        pc = session.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and session.talkback is not None:
                name = f"video.talkback[{session.nest_id:02d}]"
                session.tasks.append(self.hub.spawn(session.talkback.run(track), name))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self._open(session):
                self.hub.spawn(self._end(session.session_id), f"video.session_close[{session.nest_id:02d}]")

        @session.track.on("ended")
        def on_ended() -> None:
            if self._open(session):
                self.hub.spawn(self._end(session.session_id), f"video.session_close[{session.nest_id:02d}]")

    def _open(self, session: WhepSession) -> bool:
        return session.session_id in self.sessions and self.hub.running

    async def close(self, session_id: str) -> bool:
        """End a session; False if there is none by that id."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        session.track.stop()  # leaves the ingest at once, whatever the peer connection does
        await session.pc.close()
        for task in session.tasks:
            task.cancel()
        log.info("video.session_closed", nest=session.nest_id, session=session_id,
                 units=session.track.sent_units)  # fmt: skip
        return True

    async def _end(self, session_id: str) -> None:
        await self.close(session_id)

    async def close_all(self) -> None:
        for session_id in list(self.sessions):
            await self.close(session_id)
