"""An aiortc video track that passes the camera's H.264 through, coded as it came.

aiortc's ``RTCRtpSender`` takes either decoded frames (which it encodes) or ``av.Packet``
objects, which its H.264 codec only splits into NAL units and packetizes (``H264Encoder.pack``:
no libx264 context is ever opened). This track returns packets: one access unit each, in
Annex-B as the camera sent it, with the 90 kHz RTP timestamp of the camera carried over as the
packet's pts (re-based to start at 0 per viewer; aiortc adds its own random origin).
"""

from __future__ import annotations

from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from dronectl.video.hub import Subscription
from dronectl.video.timeline import CLOCK_RATE_HZ, Timeline

TIME_BASE = Fraction(1, CLOCK_RATE_HZ)


class PassthroughVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, subscription: Subscription) -> None:
        super().__init__()
        self.subscription = subscription
        self.sent_units = 0
        self.sent_bytes = 0
        self.stream_ended = False  # the ingest ended (rather than the sender or the session stopping)
        self._timeline = Timeline()

    async def recv(self) -> av.Packet:
        try:
            unit = await anext(self.subscription)
        except StopAsyncIteration:
            self.stream_ended = True
            self.stop()
            raise MediaStreamError("the video stream ended") from None
        packet = av.Packet(unit.data)
        packet.pts = self._timeline.next_pts(unit)
        packet.time_base = TIME_BASE
        self.sent_units += 1
        self.sent_bytes += len(unit.data)
        return packet

    def stop(self) -> None:
        super().stop()
        self.subscription.close()
