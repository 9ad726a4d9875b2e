"""One nest's UDP endpoint on our side: the only socket we open for that nest.

It listens on the nest's port like a ground station (``udpin``): the nest pushes to it. It binds
the configured address (127.0.0.1 for the simulator) and pins its peer: the configured one
(``udpout``), or for ``udpin`` the first address whose frames are accepted; after that a frame
from elsewhere is dropped, unless the link signs and the frame verifies with the nest's key (a
nest that really moved). An unsigned packet never re-targets our commands.

It frames each datagram from the headers and checks every frame's checksum (``frames.read_frames``;
what is not whole, intact frames goes to a pymavlink parser of its own, our dialect, no
process-global state), drops what is not MAVLink, not from the nest's system, not from its peer or
refused by the link's security (``adapters.mavlink.link_security``: signature, replay), counting
each by reason, and hands each accepted frame to ``on_frame``: its message is decoded only when
read. Everything sent leaves through ``send_frame``, the one place
it is signed: our own HEARTBEAT as a ground station once a second, our pymavlink messages and the
frames MAVSDK encoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import structlog

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.frames import Frame, Unreadable, read_frames
from adapters.mavlink.ids import DRONECTL_COMPONENT_ID, GCS_SYSTEM_ID
from adapters.mavlink.link_security import LinkSecurity
from adapters.mavlink.message import MAVLinkMessage, new_parser
from adapters.mavlink.signing import Reject

log = structlog.get_logger(__name__)

Address = tuple[str, int]


class NestEndpoint(asyncio.DatagramProtocol):
    def __init__(
        self,
        nest_system_id: int,
        on_frame: Callable[[Frame], None],
        *,
        peer: Address | None = None,
        gcs_system_id: int = GCS_SYSTEM_ID,
        gcs_component_id: int = DRONECTL_COMPONENT_ID,
        heartbeat_interval_s: float = 1.0,
        security: LinkSecurity | None = None,
    ) -> None:
        """``peer``: the nest's address when configured (``udpout``): then only it is accepted."""
        self.nest_system_id = nest_system_id
        self._on_frame = on_frame
        self.peer = peer
        self._peer_fixed = peer is not None
        self.security = security or LinkSecurity()
        self._parser = new_parser()
        self._encoder = new_parser(gcs_system_id, gcs_component_id)
        self._heartbeat_interval_s = heartbeat_interval_s
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self.rx_messages = 0
        self.rx_bad = 0
        self.rx_foreign = 0  # valid MAVLink from another system
        self.rx_rejected = 0  # refused by the peer pin or the link's security
        self.tx_frames = 0
        self.tx_dropped = 0  # nothing to send to yet

    # asyncio.DatagramProtocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport: cast.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._schedule_heartbeat(0.0)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the nest is down: normal for UDP, the watchdog tells.
        log.debug("adapters.endpoint.error", system_id=self.nest_system_id, error=str(exc))

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            frames = read_frames(data, self._parser)
        except Unreadable:  # not whole, intact frames: pymavlink parses them and says what is wrong
            frames = self._parsed(data)
        for frame in frames:
            if frame.src_system != self.nest_system_id:
                self.rx_foreign += 1
                self.security.reject(Reject.WRONG_SYSTEM)
                continue
            if not self._accept(frame.buf, addr):
                self.rx_rejected += 1
                continue
            self.rx_messages += 1
            try:
                self._on_frame(frame)
            except Exception:  # one bad handler must not kill the nest's link
                log.exception("adapters.endpoint.handler_failed", system_id=self.nest_system_id)

    def _parsed(self, data: bytes) -> list[Frame]:
        """The frames pymavlink makes of ``data``, the garbage dropped and counted."""
        try:
            messages = self._parser.parse_buffer(data) or []
        except Exception as exc:  # noqa: BLE001 - pymavlink raises assorted errors on garbage
            self.rx_bad += 1
            self.security.reject(Reject.MALFORMED)
            log.debug("adapters.endpoint.garbage", system_id=self.nest_system_id, error=str(exc))
            self._parser = new_parser()
            return []
        if self._parser.buf_len():
            # A UDP datagram carries whole frames: what is left is a garbage "frame" start that
            # would swallow the next datagram's real frames. Drop it.
            self.rx_bad += 1
            self.security.reject(Reject.MALFORMED)
            self._parser = new_parser()
        frames: list[Frame] = []
        for msg in messages:
            if msg.get_type() == "BAD_DATA":
                self.rx_bad += 1
                self.security.reject(Reject.MALFORMED)
                continue
            frames.append(Frame.of(msg))
        return frames

    def _accept(self, frame: bytes, addr: Address) -> bool:
        """The peer pin and the link's security: whether ``frame`` (from ``addr``) is the nest's."""
        from_peer = self.peer == addr
        if not from_peer and (self._peer_fixed or (self.peer is not None and not self.security.active)):
            self.security.reject(Reject.WRONG_PEER)  # an unsigned packet never moves the peer
            return False
        # Before any peer is pinned what is refused may well be the nest's own (a key it does not
        # share with us): it counts towards the link's fault, with its reason.
        if self.security.incoming(frame, from_peer=from_peer or self.peer is None) is not None:
            return False
        if not from_peer:
            # The first peer heard, or (signing) a frame from a new address that verifies.
            log.info("adapters.endpoint.peer", system_id=self.nest_system_id, peer=f"{addr[0]}:{addr[1]}")
            self.peer = addr
        return True

    # sending ----------------------------------------------------------------------------------
    @property
    def encoder(self) -> mav.MAVLink:
        """Our pymavlink encoder for this nest (dronectl's identity and sequence numbers)."""
        return self._encoder

    @property
    def local_address(self) -> Address | None:
        if self._transport is None:
            return None
        sockname = self._transport.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1])) if sockname else None

    def send_frame(self, frame: bytes) -> bool:
        """Send one encoded frame to the nest, signed when the link signs; False when its address
        is not known yet or the frame cannot be signed (MAVLink 1, a message id we do not know)."""
        if self._transport is None or self.peer is None:
            self.tx_dropped += 1
            return False
        signed = self.security.outgoing(frame)
        if signed is None:
            self.tx_dropped += 1
            return False
        return self.send_signed(signed)

    def send_signed(self, frame: bytes) -> bool:
        """Send a frame exactly as given (already signed, or to stay as it is)."""
        if self._transport is None or self.peer is None:
            self.tx_dropped += 1
            return False
        self._transport.sendto(frame, self.peer)
        self.tx_frames += 1
        return True

    def send(self, msg: MAVLinkMessage) -> bool:
        """Encode ``msg`` as dronectl (our sequence numbers) and send it."""
        return self.send_frame(msg.pack(self._encoder))

    def close(self) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        if self._transport is not None:
            self._transport.close()

    # heartbeat -----------------------------------------------------------------------------------
    def _schedule_heartbeat(self, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        self._heartbeat_timer = loop.call_later(delay_s, self._heartbeat)

    def _heartbeat(self) -> None:
        if self._transport is None:
            return
        heartbeat = mav.MAVLink_heartbeat_message(
            mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE, 3
        )
        self.send(heartbeat)
        self._schedule_heartbeat(self._heartbeat_interval_s)
