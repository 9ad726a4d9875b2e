"""One nest's UDP endpoint: a MAVLink 2 parser of its own, peers, and injected link faults.

The endpoint behaves like PX4 SITL's GCS link: it binds a local port, pushes everything it
sends to a configured remote (where a client listening with ``udpin://`` receives it) and to
every peer that has sent to it (a client using ``udpout://``). Bytes that are not MAVLink
(garbage, truncated frames, bad CRCs) are counted and dropped; nothing in them can raise out of
``datagram_received``. MAVLink signing is PX4's (``sitl.signing``): with a key, what leaves is
signed here and what arrives unsigned or wrongly signed is dropped before any component sees it.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import structlog

from adapters.mavlink import dronectl_v20 as mav
from sitl.clock import SimClock
from sitl.environment import Faults
from sitl.signing import SimSigning

log = structlog.get_logger(__name__)

Address = tuple[str, int]
PEER_TIMEOUT_S = 30.0  # real seconds after which a silent udpout peer is forgotten
HEARD_LIMIT = 4000  # commands kept per nest (who sent what: sitl.control op "commands")
# what a controller acts with, as opposed to what it listens to
ACTING_MESSAGES = frozenset(
    {
        mav.MAVLINK_MSG_ID_COMMAND_LONG,
        mav.MAVLINK_MSG_ID_COMMAND_INT,
        mav.MAVLINK_MSG_ID_SET_MODE,
        mav.MAVLINK_MSG_ID_MISSION_COUNT,
        mav.MAVLINK_MSG_ID_MISSION_CLEAR_ALL,
        mav.MAVLINK_MSG_ID_MISSION_SET_CURRENT,
        mav.MAVLINK_MSG_ID_PARAM_SET,
        mav.MAVLINK_MSG_ID_SET_POSITION_TARGET_GLOBAL_INT,
        mav.MAVLINK_MSG_ID_SET_POSITION_TARGET_LOCAL_NED,
    }
)


@dataclass(frozen=True)
class HeardCommand:
    """A command-like message as the nest received it, and from which peer."""

    time_s: float  # simulated time
    peer: str  # host:port it came from
    message: str
    command: int | None  # COMMAND_LONG/INT's command id


class NestLink(asyncio.DatagramProtocol):
    def __init__(
        self,
        system_id: int,
        clock: SimClock,
        faults: Faults,
        remote: Address | None,
        dispatch: Callable[[mav.MAVLink_message], None],
        rng: random.Random | None = None,
        signing: SimSigning | None = None,
    ) -> None:
        self.system_id = system_id
        self.signing = signing or SimSigning(system_id)
        self._clock = clock
        self._faults = faults
        self._remote = remote
        self._dispatch = dispatch
        self._rng = rng or random.Random(system_id)
        self._parser = mav.MAVLink(None)
        self._parser.robust_parsing = True
        self._transport: asyncio.DatagramTransport | None = None
        self._peers: dict[Address, float] = {}  # address -> real monotonic time last heard
        self.heard: deque[HeardCommand] = deque(maxlen=HEARD_LIMIT)
        self.rx_messages = 0
        self.rx_bad = 0
        self.tx_datagrams = 0

    # asyncio.DatagramProtocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport: cast.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while no client listens on the remote port: normal for UDP.
        pass

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self._dropped():
            return
        loop_time = asyncio.get_running_loop().time()
        if addr != self._remote:
            self._peers[addr] = loop_time
        try:
            messages = self._parser.parse_buffer(data) or []
        except Exception as exc:  # noqa: BLE001 - pymavlink raises assorted errors on garbage
            self.rx_bad += 1
            log.debug("sitl.link.garbage", system_id=self.system_id, error=str(exc))
            self._parser = self._fresh_parser()
            return
        if self._parser.buf_len():
            # A UDP datagram carries whole frames: a leftover is a garbage "frame" start that
            # would swallow the next datagram's real frames. Drop it.
            self.rx_bad += 1
            self._parser = self._fresh_parser()
        for msg in messages:
            if msg.get_type() == "BAD_DATA" or isinstance(msg, mav.MAVLink_unknown):
                self.rx_bad += 1  # not MAVLink, or a message id no component here knows (no CRC check)
                continue
            if msg.get_srcSystem() == self.system_id:
                continue  # our own traffic echoed back
            if not self.signing.accept(msg):
                continue  # unsigned or wrongly signed while a key is set (or SETUP_SIGNING)
            self.rx_messages += 1
            if msg.get_msgId() in ACTING_MESSAGES:
                command = getattr(msg, "command", None)
                self.heard.append(
                    HeardCommand(self._clock.now(), f"{addr[0]}:{addr[1]}", msg.get_type(), command)
                )
            self._dispatch(msg)

    # sending ------------------------------------------------------------------------------
    def transmit(self, data: bytes) -> None:
        """Send one encoded frame to the remote and to every live peer (signed when a key is
        set: every component's traffic leaves here)."""
        if self._transport is None or self._dropped():
            return
        signed = self.signing.outgoing(data)
        if signed is None:
            return
        data = signed
        now = asyncio.get_running_loop().time()
        stale = [a for a, t in self._peers.items() if now - t > PEER_TIMEOUT_S]
        for addr in stale:
            del self._peers[addr]
        if self._remote is not None:
            self._transport.sendto(data, self._remote)
            self.tx_datagrams += 1
        for addr in self._peers:
            self._transport.sendto(data, addr)
            self.tx_datagrams += 1

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # ---------------------------------------------------------------------------------------
    def _dropped(self) -> bool:
        now_s = self._clock.now()
        if self._faults.link_down(now_s):
            return True
        loss = self._faults.packet_loss_pct
        return loss > 0 and self._rng.random() * 100.0 < loss

    @staticmethod
    def _fresh_parser() -> mav.MAVLink:
        parser = mav.MAVLink(None)
        parser.robust_parsing = True
        return parser
