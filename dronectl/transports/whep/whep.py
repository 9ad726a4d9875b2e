"""WHEP sessions (IETF WebRTC-HTTP Egress Protocol): one RTCPeerConnection per viewer.

A session is made from the viewer's SDP offer: its video transceiver sends the nest's ingest
(``PassthroughVideoTrack``, H.264 as the camera coded it) and, when the offer sends audio
(talk-back), an audio transceiver receives the viewer's microphone for the loudspeaker. The answer
carries every ICE candidate (aiortc gathers before answering); a viewer that sends its offer before
its own gathering is done trickles the rest with PATCH (``trickle``; an ICE restart is not done,
the viewer opens a new session). A session
ends on DELETE, when its peer connection fails or closes, when its video ends, or when its viewer
is taken as gone (``liveness``: never connected, or silent while video was sent to it); each way
its subscription is released, so the ingest stops with the last viewer. A talk-back session is
audited with its actor (``talk_audit``) when the hub has an audit store.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from dronectl.operations.models import Actor
from dronectl.transports.whep.liveness import LivenessSettings, PeerObservation, lost_reason
from dronectl.transports.whep.offer import AudioWish, OfferSummary, check_offer, h264_preferences
from dronectl.transports.whep.track import PassthroughVideoTrack
from dronectl.transports.whep.trickle import BadFragment, Fragment, offer_ufrag
from dronectl.video.errors import BadOffer
from dronectl.video.hub import VideoHub
from dronectl.video.talkback import TalkBack

log = structlog.get_logger(__name__)


@dataclass
class WhepSession:
    session_id: str
    nest_id: int
    actor: Actor
    pc: RTCPeerConnection
    track: PassthroughVideoTrack
    talkback: TalkBack | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    opened_mono_s: float = field(default_factory=time.monotonic)
    connected_mono_s: float | None = None
    remote_ufrag: str | None = None  # the offer's ICE credentials: trickled candidates must match
    etag: str = field(default_factory=lambda: f'"{secrets.token_hex(8)}"')

    @property
    def viewer(self) -> str:
        return self.actor.id

    @property
    def path(self) -> str:
        return f"/whep/nests/{self.nest_id}/sessions/{self.session_id}"


class WhepSessions:
    def __init__(self, hub: VideoHub, liveness: LivenessSettings | None = None) -> None:
        self.hub = hub
        self.liveness = liveness or LivenessSettings()
        self.sessions: dict[str, WhepSession] = {}
        self.ended: deque[tuple[str, str]] = deque(maxlen=64)  # (session id, why), the latest last

    @staticmethod
    def check(offer_sdp: str) -> OfferSummary:
        try:
            return check_offer(offer_sdp)
        except ValueError as exc:
            raise BadOffer(str(exc)) from None

    async def open(
        self, nest_id: int, offer_sdp: str, actor: Actor, *, talk: bool
    ) -> tuple[WhepSession, str]:
        """A new session and its SDP answer. ``talk``: the viewer may send audio to the loudspeaker."""
        summary = self.check(offer_sdp)
        self.hub.check_watchable(nest_id)
        sub = await self.hub.subscribe(nest_id, f"whep {actor.id}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: the LAN, and no internet
        track = PassthroughVideoTrack(sub)
        session = WhepSession(secrets.token_urlsafe(12), nest_id, actor, pc, track)
        session.remote_ufrag = offer_ufrag(offer_sdp)
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
        session.opened_mono_s = time.monotonic()
        name = f"video.session_watch[{nest_id:02d}]"
        session.tasks.append(self.hub.spawn(self._watch_peer(session), name))
        log.info("video.session_opened", nest=nest_id, session=session.session_id, viewer=actor.id,
                 talkback=session.talkback is not None)  # fmt: skip
        return session, pc.localDescription.sdp

    async def trickle(self, session: WhepSession, fragment: Fragment) -> int:
        """Add the viewer's trickled candidates to its session; how many were added."""
        added = 0
        for item in fragment.candidates:
            try:
                candidate = candidate_from_sdp(item.candidate.removeprefix("candidate:"))
            except (AssertionError, ValueError) as exc:
                raise BadFragment(f"not an ICE candidate: {item.candidate[:120]!r}") from exc
            candidate.sdpMid = item.mid
            candidate.sdpMLineIndex = item.mline_index if item.mid is None else None
            await session.pc.addIceCandidate(candidate)
            added += 1
        if fragment.end_of_candidates:
            await session.pc.addIceCandidate(None)
        log.info("video.trickle", nest=session.nest_id, session=session.session_id, candidates=added,
                 end=fragment.end_of_candidates)  # fmt: skip
        return added

    def _watch(self, session: WhepSession) -> None:
        pc = session.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and session.talkback is not None:
                name = f"video.talkback[{session.nest_id:02d}]"
                session.tasks.append(self.hub.spawn(self._talk(session, session.talkback, track), name))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected" and session.connected_mono_s is None:
                session.connected_mono_s = time.monotonic()
            if pc.connectionState in ("failed", "closed") and self._open(session):
                self._end(session, f"the peer connection {pc.connectionState}")

        @session.track.on("ended")
        def on_ended() -> None:
            if self._open(session):  # the ingest ended, or aiortc's sender stopped (transport gone)
                ended = session.track.stream_ended
                self._end(
                    session,
                    "the video ended" if ended else f"the viewer's connection ended ({pc.connectionState})",
                )

    def _open(self, session: WhepSession) -> bool:
        return session.session_id in self.sessions and self.hub.running

    def _end(self, session: WhepSession, reason: str) -> None:
        async def end() -> None:
            await self.close(session.session_id, reason)

        self.hub.spawn(end(), f"video.session_close[{session.nest_id:02d}]")

    async def close(self, session_id: str, reason: str = "the viewer left (DELETE)") -> bool:
        """End a session; False if there is none by that id."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        session.track.stop()  # leaves the ingest at once, whatever the peer connection does
        self.ended.append((session_id, reason))
        await session.pc.close()
        for task in session.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        log.info("video.session_closed", nest=session.nest_id, session=session_id, reason=reason,
                 units=session.track.sent_units)  # fmt: skip
        return True

    async def _talk(self, session: WhepSession, talkback: TalkBack, track: MediaStreamTrack) -> None:
        """Run the session's talk-back, audited from its first audio to its end."""
        audit = self.hub.talk_audit
        record = await audit.started(session.session_id, session.nest_id, session.actor) if audit else None
        try:
            await talkback.run(track)
        finally:
            if audit is not None and record is not None:
                # shielded: a session closing cancels this task, and the end must still be written
                await asyncio.shield(audit.ended(record, talkback.stats))

    async def _watch_peer(self, session: WhepSession) -> None:
        """Close the session when its viewer is taken as gone (see ``dronectl.transports.whep.liveness``)."""
        settings = self.liveness
        last_report: datetime | None = None
        units_reported = 0  # video units sent up to the viewer's last receiver report
        waiting_since: float | None = None  # since video went out with no report after it
        while self._open(session):
            await asyncio.sleep(settings.check_interval_s)  # a polling period: aiortc has no event for RTCP
            now = time.monotonic()
            report = await _last_receiver_report(session.pc)
            sent = session.track.sent_units
            if report is not None and report != last_report:
                last_report, units_reported, waiting_since = report, sent, None
            elif waiting_since is None and sent > units_reported and session.connected_mono_s is not None:
                waiting_since = now
            seen = PeerObservation(
                open_s=now - session.opened_mono_s,
                connected=session.connected_mono_s is not None,
                silent_s=now - waiting_since if waiting_since is not None else 0.0,
                units_sent_while_silent=sent - units_reported,
            )
            reason = lost_reason(seen, settings)
            if reason is not None and self._open(session):
                log.warning(
                    "video.viewer_lost", nest=session.nest_id, session=session.session_id, reason=reason
                )
                await self.close(session.session_id, reason)
                return

    async def close_all(self) -> None:
        for session_id in list(self.sessions):
            await self.close(session_id, "the service is stopping")


async def _last_receiver_report(pc: RTCPeerConnection) -> datetime | None:
    """When the video sender last got an RTCP receiver report from the viewer (None: never)."""
    for sender in pc.getSenders():
        if sender.track is None or sender.track.kind != "video":
            continue
        stats = await sender.getStats()
        for stat in stats.values():
            if stat.type == "remote-inbound-rtp":
                stamp: datetime = stat.timestamp
                return stamp
    return None
