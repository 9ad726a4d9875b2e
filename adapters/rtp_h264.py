"""H.264 over RTP (RFC 6184, packetization mode 1) and the Annex-B byte stream, in plain Python.

The simulated camera packetizes with :class:`H264Packetizer`; the camera adapter reassembles with
:class:`H264Depacketizer`. Both are pure (no sockets, no clock) so they are tested directly.

- Packets: RTP version 2, dynamic payload type 96, 90 kHz timestamps, one timestamp per access
  unit (frame) and the marker bit on its last packet. A NAL unit that fits in ``max_payload``
  bytes goes alone in a packet (single NAL unit packet); a longer one is cut into FU-A fragments.
  The depacketizer also takes STAP-A aggregates (other senders use them).
- Keyframes: SPS and PPS are sent in front of every IDR picture, so a receiver can start at any
  keyframe.
- Capture time: each access unit can carry the wall-clock time its picture was taken in an SEI
  ``user_data_unregistered`` message with dronectl's UUID (8 bytes, microseconds since the epoch,
  big-endian). Decoders ignore it; the adapter reads it without decoding the picture.
- Loss: a sequence-number gap discards the access unit it hit, and everything after it until the
  next keyframe (H.264 pictures refer to the ones before; MAVLink has no keyframe request, so the
  camera's one-second GOP bounds the outage). Reordered (late) packets are dropped: the camera is
  on the same LAN or loopback.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapters.protocols import AccessUnit

RTP_VERSION = 2
PAYLOAD_TYPE = 96
CLOCK_RATE_HZ = 90_000
MAX_PAYLOAD = 1200  # bytes of RTP payload: fits any path MTU with room for tunnels
HEADER_BYTES = 12

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_STAP_A = 24
NAL_FU_A = 28
VCL_TYPES = frozenset(range(1, 6))

START_CODE = b"\x00\x00\x00\x01"
SEI_USER_DATA_UNREGISTERED = 5
CAPTURE_TIME_UUID = uuid.uuid5(uuid.NAMESPACE_URL, "https://dronectl/capture-time").bytes


# Annex-B ----------------------------------------------------------------------------------------
def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte string (start codes 00 00 01 or 00 00 00 01 removed)."""
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    if start < 0:
        return [data] if data else []
    pos = start + 3
    while True:
        nxt = data.find(b"\x00\x00\x01", pos)
        if nxt < 0:
            nal = data[pos:]
            if nal:
                nals.append(nal)
            return nals
        end = nxt - 1 if nxt > pos and data[nxt - 1] == 0 else nxt  # a 4-byte start code
        if end > pos:
            nals.append(data[pos:end])
        pos = nxt + 3


def join_annexb(nals: Iterable[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def is_keyframe(nals: Iterable[bytes]) -> bool:
    return any(nal_type(nal) == NAL_IDR for nal in nals)


# capture time in SEI ----------------------------------------------------------------------------
def _escape(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes (00 00 0x -> 00 00 03 0x for x <= 3)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _unescape(ebsp: bytes) -> bytes:
    return ebsp.replace(b"\x00\x00\x03", b"\x00\x00")


def capture_time_sei(time_us: int) -> bytes:
    """An SEI NAL unit carrying ``time_us`` (user_data_unregistered with dronectl's UUID)."""
    payload = CAPTURE_TIME_UUID + struct.pack(">Q", time_us)
    rbsp = bytes([SEI_USER_DATA_UNREGISTERED, len(payload)]) + payload + b"\x80"
    return bytes([NAL_SEI]) + _escape(rbsp)  # nal_ref_idc 0, type 6


def read_capture_time_sei(nal: bytes) -> int | None:
    """The capture time in an SEI NAL unit made by :func:`capture_time_sei`; None for any other."""
    if not nal or nal_type(nal) != NAL_SEI:
        return None
    rbsp = _unescape(nal[1:])
    if len(rbsp) < 2 + 24 or rbsp[0] != SEI_USER_DATA_UNREGISTERED or rbsp[1] != 24:
        return None
    if rbsp[2:18] != CAPTURE_TIME_UUID:
        return None
    return int(struct.unpack(">Q", rbsp[18:26])[0])


# packetizing ------------------------------------------------------------------------------------
def rtp_header(
    marker: bool, sequence: int, timestamp: int, ssrc: int, payload_type: int = PAYLOAD_TYPE
) -> bytes:
    return struct.pack(
        ">BBHII",
        RTP_VERSION << 6,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )


def packetize(
    nals: Sequence[bytes],
    *,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload_type: int = PAYLOAD_TYPE,
    max_payload: int = MAX_PAYLOAD,
) -> list[bytes]:
    """RTP packets for one access unit, numbered from ``sequence``; marker on the last one."""
    if max_payload < 3:
        raise ValueError("max_payload too small for FU-A")
    payloads: list[bytes] = []
    for nal in nals:
        if not nal:
            continue
        if len(nal) <= max_payload:
            payloads.append(nal)
            continue
        indicator = (nal[0] & 0xE0) | NAL_FU_A
        kind = nal[0] & 0x1F
        body = memoryview(nal)[1:]
        step = max_payload - 2
        for offset in range(0, len(body), step):
            start = offset == 0
            end = offset + step >= len(body)
            fu_header = (0x80 if start else 0) | (0x40 if end else 0) | kind
            payloads.append(bytes((indicator, fu_header)) + body[offset : offset + step])
    last = len(payloads) - 1
    return [
        rtp_header(i == last, sequence + i, timestamp, ssrc, payload_type) + payload
        for i, payload in enumerate(payloads)
    ]


class H264Packetizer:
    """Packetizes a stream of Annex-B access units; keeps the sequence number and SPS/PPS."""

    def __init__(self, ssrc: int, sequence: int = 0, max_payload: int = MAX_PAYLOAD) -> None:
        self.ssrc = ssrc
        self.sequence = sequence & 0xFFFF
        self.max_payload = max_payload
        self._sps: bytes | None = None
        self._pps: bytes | None = None

    def packetize(
        self, access_unit: bytes, timestamp: int, capture_time_us: int | None = None
    ) -> list[bytes]:
        nals = self.prepare(split_annexb(access_unit), capture_time_us)
        packets = packetize(
            nals, sequence=self.sequence, timestamp=timestamp, ssrc=self.ssrc, max_payload=self.max_payload
        )
        self.sequence = (self.sequence + len(packets)) & 0xFFFF
        return packets

    def prepare(self, nals: list[bytes], capture_time_us: int | None) -> list[bytes]:
        """The NAL units to send: SPS/PPS in front of an IDR, the capture-time SEI before the picture."""
        types = [nal_type(nal) for nal in nals]
        for nal, kind in zip(nals, types, strict=True):
            if kind == NAL_SPS:
                self._sps = nal
            elif kind == NAL_PPS:
                self._pps = nal
        out: list[bytes] = []
        first_vcl = next((i for i, kind in enumerate(types) if kind in VCL_TYPES), len(nals))
        for i, (nal, kind) in enumerate(zip(nals, types, strict=True)):
            if i == first_vcl:
                if kind == NAL_IDR:
                    if NAL_SPS not in types[:i] and self._sps is not None:
                        out.append(self._sps)
                    if NAL_PPS not in types[:i] and self._pps is not None:
                        out.append(self._pps)
                if capture_time_us is not None:
                    out.append(capture_time_sei(capture_time_us))
            if kind == NAL_AUD:
                continue  # RFC 6184 allows dropping access unit delimiters; they carry nothing here
            out.append(nal)
        return out


# depacketizing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RtpHeader:
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload_offset: int
    payload_end: int


def parse_rtp(packet: bytes) -> RtpHeader | None:
    """The header of an RTP packet, or None if ``packet`` is not one."""
    if len(packet) < HEADER_BYTES or packet[0] >> 6 != RTP_VERSION:
        return None
    first, second, sequence, timestamp, ssrc = struct.unpack_from(">BBHII", packet)
    offset = HEADER_BYTES + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(packet) < offset + 4:
            return None
        (words,) = struct.unpack_from(">H", packet, offset + 2)
        offset += 4 + 4 * words
    end = len(packet)
    if first & 0x20:  # padding
        end -= packet[-1]
    if offset >= end:
        return None
    return RtpHeader(bool(second & 0x80), second & 0x7F, sequence, timestamp, ssrc, offset, end)


@dataclass
class DepacketizerStats:
    packets: int = 0
    access_units: int = 0
    lost_packets: int = 0
    dropped_access_units: int = 0  # damaged, or waiting for a keyframe
    ignored_packets: int = 0  # not RTP, other payload type, late


class H264Depacketizer:
    """Reassembles access units from RTP packets (single NAL, STAP-A, FU-A)."""

    def __init__(self, payload_type: int = PAYLOAD_TYPE) -> None:
        self.payload_type = payload_type
        self.stats = DepacketizerStats()
        self._ssrc: int | None = None
        self._expected: int | None = None
        self._timestamp: int | None = None
        self._nals: list[bytes] = []
        self._fragment: list[bytes] | None = None
        self._damaged = False
        self._need_keyframe = True

    def reset(self) -> None:
        """Forget everything (a new stream): the next access unit delivered is a keyframe."""
        self._ssrc = None
        self._expected = None
        self._start_unit(None)
        self._need_keyframe = True

    def push(self, packet: bytes, received_time_us: int = 0) -> list[AccessUnit]:
        """Feed one packet; returns the access units it completed (zero, one, or two)."""
        header = parse_rtp(packet)
        if header is None or header.payload_type != self.payload_type:
            self.stats.ignored_packets += 1
            return []
        out: list[AccessUnit] = []
        if header.ssrc != self._ssrc:
            if self._ssrc is not None:
                self.reset()
            self._ssrc = header.ssrc
        gap = False
        if self._expected is not None and header.sequence != self._expected:
            lost = (header.sequence - self._expected) & 0xFFFF
            if lost > 0x8000:  # older than expected: late or duplicated
                self.stats.ignored_packets += 1
                return []
            self.stats.lost_packets += lost
            self._need_keyframe = True
            gap = True
        self._expected = (header.sequence + 1) & 0xFFFF
        self.stats.packets += 1
        unfinished = self._timestamp is not None
        if header.timestamp != self._timestamp:
            if unfinished:
                # The last unit's marker packet was lost; the gap may have taken this one's head too.
                self._damaged = self._damaged or gap
                out.extend(self._finish(received_time_us))
            self._start_unit(header.timestamp)
            self._damaged = gap and unfinished
        elif gap:
            self._damaged = True
        self._payload(packet[header.payload_offset : header.payload_end])
        if header.marker:
            out.extend(self._finish(received_time_us))
        return out

    def _start_unit(self, timestamp: int | None) -> None:
        self._timestamp = timestamp
        self._nals = []
        self._fragment = None
        self._damaged = False

    def _payload(self, payload: bytes) -> None:
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._nals.append(payload)
        elif kind == NAL_STAP_A:
            pos = 1
            while pos + 2 <= len(payload):
                (size,) = struct.unpack_from(">H", payload, pos)
                pos += 2
                if size == 0 or pos + size > len(payload):
                    self._damaged = True
                    return
                self._nals.append(payload[pos : pos + size])
                pos += size
        elif kind == NAL_FU_A and len(payload) > 2:
            fu_header = payload[1]
            if fu_header & 0x80:
                if self._fragment is not None:
                    self._damaged = True  # a fragmented NAL that never ended
                self._fragment = [bytes(((payload[0] & 0xE0) | (fu_header & 0x1F),)), payload[2:]]
            elif self._fragment is None:
                self._damaged = True  # its first fragment was lost
                return
            else:
                self._fragment.append(payload[2:])
            if fu_header & 0x40:
                self._nals.append(b"".join(self._fragment))
                self._fragment = None
        else:
            self._damaged = True  # FU-B, MTAP...: not mode 1

    def _finish(self, received_time_us: int) -> list[AccessUnit]:
        nals, timestamp = self._nals, self._timestamp
        damaged = self._damaged or self._fragment is not None
        self._start_unit(None)
        if not nals or timestamp is None:
            return []
        if damaged:
            self._need_keyframe = True
            self.stats.dropped_access_units += 1
            return []
        keyframe = is_keyframe(nals)
        if self._need_keyframe and not keyframe:
            self.stats.dropped_access_units += 1
            return []
        self._need_keyframe = False
        self.stats.access_units += 1
        capture = next((t for nal in nals if (t := read_capture_time_sei(nal)) is not None), None)
        return [AccessUnit(join_annexb(nals), timestamp, keyframe, capture, received_time_us)]
