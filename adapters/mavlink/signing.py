"""MAVLink 2 message signing on raw frames: sign what leaves, verify what arrives.

The MAVLink signing spec (mavlink.io, "Message Signing"): a signed MAVLink 2 frame has bit 0 of
``incompat_flags`` set and carries 13 more bytes after its CRC: ``link_id`` (1), a 48-bit
timestamp in 10 µs units since 2015-01-01 GMT (6), and the first 6 bytes of
``SHA-256(secret_key + header + payload + CRC + link_id + timestamp)``. A receiver keeps, per
stream (link id, system id, component id), the last timestamp it accepted and refuses one that is
not newer (a replay); a new stream is refused when its timestamp is more than a minute behind the
newest one seen.

This works on frames, not on pymavlink messages, because the bytes leave through one place (the
nest's endpoint) whoever encoded them: our pymavlink encoders and MAVSDK's raw connection alike.
pymavlink's own ``check_signature`` is not used: it records a stream's timestamp before it checks
the signature, so one forged frame with a far-future timestamp would make every genuine frame of
that stream look like a replay. Here the signature is checked first.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
import time
from collections.abc import Callable

from adapters.mavlink import dronectl_v20 as mav

KEY_LEN = 32
SIGNATURE_BLOCK_LEN = 13  # link id (1) + timestamp (6) + signature (6)
HEADER_LEN = 10
IFLAG_SIGNED = mav.MAVLINK_IFLAG_SIGNED
EPOCH_2015_S = 1420070400  # 2015-01-01T00:00:00Z, the signing timestamps' origin
TICKS_PER_S = 100_000  # timestamp unit: 10 µs
NEW_STREAM_WINDOW_TICKS = 60 * TICKS_PER_S  # a new stream may lag the newest by a minute
TIMESTAMP_MAX = (1 << 48) - 1

# Messages PX4 accepts unsigned even with signing on (src/modules/mavlink/mavlink_sign_control.cpp,
# ``unsigned_messages``): radio modems and traffic receivers cannot sign them.
PX4_UNSIGNED_ALLOWED = frozenset(
    {mav.MAVLINK_MSG_ID_RADIO_STATUS, mav.MAVLINK_MSG_ID_ADSB_VEHICLE, mav.MAVLINK_MSG_ID_COLLISION}
)


class Reject(enum.StrEnum):
    """Why an incoming frame was dropped (the names are the state's counters)."""

    UNSIGNED = "unsigned"  # no signature from a nest that signs
    BAD_SIGNATURE = "bad_signature"  # signed, not with the nest's key (or altered)
    REPLAY = "replay"  # timestamp not newer than the stream's last (or a stale new stream)
    WRONG_SYSTEM = "wrong_system"  # another MAVLink system on this nest's link
    WRONG_PEER = "wrong_peer"  # from an address that is not the nest's
    NO_KEY = "no_key"  # signing required and no key provisioned
    MALFORMED = "malformed"  # not MAVLink, a torn frame, a bad CRC, an unknown message


def timestamp_now(wall_s: Callable[[], float] = time.time) -> int:
    """The signing timestamp for now (10 µs since 2015-01-01)."""
    return max(0, int((wall_s() - EPOCH_2015_S) * TICKS_PER_S))


def new_key() -> bytes:
    import secrets

    return secrets.token_bytes(KEY_LEN)


def is_signed(frame: bytes | bytearray) -> bool:
    return (
        len(frame) >= HEADER_LEN + 2 + SIGNATURE_BLOCK_LEN
        and frame[0] == mav.PROTOCOL_MARKER_V2
        and bool(frame[2] & IFLAG_SIGNED)
        and len(frame) == HEADER_LEN + frame[1] + 2 + SIGNATURE_BLOCK_LEN
    )


def signature_fields(frame: bytes | bytearray) -> tuple[int, int]:
    """(link_id, timestamp) of a signed frame."""
    block = frame[-SIGNATURE_BLOCK_LEN:]
    return block[0], int.from_bytes(block[1:7], "little")


def _signature(key: bytes, signed_part: bytes | bytearray) -> bytes:
    return hashlib.sha256(key + signed_part).digest()[:6]


def sign_frame(frame: bytes, key: bytes, link_id: int, timestamp: int) -> bytes | None:
    """``frame`` (one MAVLink 2 frame, signed or not) signed with ``key``; None when it cannot be
    (MAVLink 1, torn, or a message id our dialect does not know, whose CRC_EXTRA we lack)."""
    if len(frame) < HEADER_LEN + 2 or frame[0] != mav.PROTOCOL_MARKER_V2:
        return None
    body_end = HEADER_LEN + frame[1]
    if len(frame) < body_end + 2:
        return None
    head = bytearray(frame[:body_end])
    if head[2] & IFLAG_SIGNED:
        crc_bytes = bytes(frame[body_end : body_end + 2])  # the flag is already in its CRC
    else:
        msg_id = head[7] | head[8] << 8 | head[9] << 16
        msg_type = mav.mavlink_map.get(msg_id)
        if msg_type is None:
            return None
        head[2] |= IFLAG_SIGNED
        crc = mav.x25crc(head[1:])
        crc.accumulate(bytes((msg_type.crc_extra,)))
        crc_bytes = struct.pack("<H", crc.crc)
    head += crc_bytes
    head.append(link_id & 0xFF)
    head += (timestamp & TIMESTAMP_MAX).to_bytes(6, "little")
    head += _signature(key, head)
    return bytes(head)


class Signer:
    """Signs a link's outgoing frames: one key, one link id, timestamps strictly increasing."""

    def __init__(self, key: bytes, link_id: int = 0, wall_s: Callable[[], float] = time.time) -> None:
        if len(key) != KEY_LEN:
            raise ValueError(f"a MAVLink signing key is {KEY_LEN} bytes, not {len(key)}")
        self.key = bytes(key)
        self.link_id = link_id
        self._wall_s = wall_s
        self._last = 0
        self.signed = 0
        self.unsignable = 0

    def next_timestamp(self) -> int:
        self._last = max(self._last + 1, timestamp_now(self._wall_s))
        return self._last

    def sign(self, frame: bytes) -> bytes | None:
        signed = sign_frame(frame, self.key, self.link_id, self.next_timestamp())
        if signed is None:
            self.unsignable += 1
        else:
            self.signed += 1
        return signed


class Verifier:
    """Checks incoming signed frames against one key, with the per-stream replay rule."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ValueError(f"a MAVLink signing key is {KEY_LEN} bytes, not {len(key)}")
        self.key = bytes(key)
        self._streams: dict[tuple[int, int, int], int] = {}  # (link, system, component) -> ts
        self._newest = 0

    def check(self, frame: bytes | bytearray) -> Reject | None:
        """None when ``frame`` is signed with our key and newer than its stream; else why not.
        Only an accepted frame moves a stream's timestamp."""
        if not is_signed(frame):
            return Reject.UNSIGNED
        if not hmac.compare_digest(_signature(self.key, frame[:-6]), bytes(frame[-6:])):
            return Reject.BAD_SIGNATURE
        link_id, timestamp = signature_fields(frame)
        stream = (link_id, frame[5], frame[6])
        last = self._streams.get(stream)
        if last is not None:
            if timestamp <= last:
                return Reject.REPLAY
        elif timestamp + NEW_STREAM_WINDOW_TICKS < self._newest:
            return Reject.REPLAY
        self._streams[stream] = timestamp
        self._newest = max(self._newest, timestamp)
        return None
