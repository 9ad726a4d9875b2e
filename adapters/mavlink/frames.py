"""Reading MAVLink frames from their bytes, without parsing the messages.

Outgoing: the target system of each frame MAVSDK sends (``split_frames``). Incoming: each frame
a nest sends, framed and checksummed, its message decoded only when someone reads it
(``read_frames``, ``Frame``).

The router hands every frame MAVSDK sends to the nest it is for. Parsing each one with pymavlink
only to read ``target_system`` cost a fifth of the service's CPU at 256 nests (issue 15's
profile). The field sits at a fixed offset of the payload for each message id (MAVLink orders a
message's fields by type size, and our dialect's pymavlink classes say the order), and MAVLink 2
trims trailing zero bytes from the payload: an offset past the payload's end reads 0.

    for frame, target in split_frames(data):   # target None: the message has no target
        ...
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import NamedTuple

from pymavlink.generator.mavcrc import x25crc

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.message import MAVLinkMessage

_V2, _V1 = 0xFD, 0xFE
_V2_HEADER, _V1_HEADER, _CRC, _SIGNATURE = 10, 6, 2, 13
_INCOMPAT_SIGNED = 0x01
_TOKEN = re.compile(r"(\d*)([a-zA-Z?])")


def _target_offset(cls: type) -> int | None:
    """The byte offset of ``target_system`` in the class's wire payload, None without one."""
    names: list[str] = list(cls.ordered_fieldnames)  # type: ignore[attr-defined]
    if "target_system" not in names:
        return None
    fmt: str = cls.unpacker.format  # type: ignore[attr-defined]
    tokens = ["".join(t) for t in _TOKEN.findall(fmt.lstrip("<"))]
    if len(tokens) != len(names):  # a format this reading does not understand: parse instead
        raise ValueError(f"{cls.__name__}: {fmt!r} has {len(tokens)} fields, not {len(names)}")
    return struct.calcsize("<" + "".join(tokens[: names.index("target_system")]))


TARGET_OFFSETS: dict[int, int | None] = {msgid: _target_offset(cls) for msgid, cls in mav.mavlink_map.items()}


class Unreadable(ValueError):
    """Bytes that are not whole MAVLink frames of our dialect (the caller parses them instead)."""


class _Header(NamedTuple):
    msgid: int
    src_system: int
    src_component: int
    incompat: int
    payload: int  # where the payload starts
    length: int  # of the payload, as sent (MAVLink 2 trims trailing zeros)
    end: int  # where the frame ends (after the checksum and any signature)


def _header(data: bytes, at: int) -> _Header:
    """The header of the frame at ``at``; Unreadable if there is none, it is torn, or its message
    is not of our dialect."""
    size = len(data)
    if data[at] == _V2 and at + _V2_HEADER <= size:
        length, incompat = data[at + 1], data[at + 2]
        src_system, src_component = data[at + 5], data[at + 6]
        msgid = data[at + 7] | data[at + 8] << 8 | data[at + 9] << 16
        payload = at + _V2_HEADER
        end = payload + length + _CRC + (_SIGNATURE if incompat & _INCOMPAT_SIGNED else 0)
    elif data[at] == _V1 and at + _V1_HEADER <= size:
        length, src_system, src_component, msgid = data[at + 1], data[at + 3], data[at + 4], data[at + 5]
        incompat, payload = 0, at + _V1_HEADER
        end = payload + length + _CRC
    else:
        raise Unreadable(f"no MAVLink frame at byte {at}")
    if end > size or msgid not in TARGET_OFFSETS:
        raise Unreadable(f"a torn frame or an unknown message id {msgid} at byte {at}")
    return _Header(msgid, src_system, src_component, incompat, payload, length, end)


def split_frames(data: bytes) -> Iterator[tuple[bytes, int | None]]:
    """Each whole frame in ``data`` with its target system (0: broadcast; None: the message has
    no target field). Raises Unreadable, before yielding anything, for bytes that are not whole
    frames of known messages one after another (no checksum is checked: the frames come from
    MAVSDK in this process, not from a radio)."""
    frames: list[tuple[bytes, int | None]] = []
    at = 0
    while at < len(data):
        h = _header(data, at)
        offset = TARGET_OFFSETS[h.msgid]
        target = None if offset is None else (data[h.payload + offset] if offset < h.length else 0)
        frames.append((data[at : h.end], target))
        at = h.end
    yield from frames


# --- incoming ------------------------------------------------------------------------------------

_CRC_EXTRA: dict[int, int] = {msgid: cls.crc_extra for msgid, cls in mav.mavlink_map.items()}


class Frame:
    """One frame a nest sent: its bytes, its header's ids, and its message, decoded on first read.

    A nest's autopilot sends ~45 messages a second that only MAVSDK reads (which gets the bytes):
    decoding each one with pymavlink as well was a tenth of the event loop's time (issue 15's
    profile). The links decode only what they read (command acks, status texts, the dock's and
    the payload's messages)."""

    __slots__ = ("_message", "_parser", "buf", "msg_id", "src_component", "src_system")

    def __init__(
        self,
        buf: bytes,
        msg_id: int,
        src_system: int,
        src_component: int,
        parser: mav.MAVLink | None = None,
        message: MAVLinkMessage | None = None,
    ) -> None:
        self.buf = buf
        self.msg_id = msg_id
        self.src_system = src_system
        self.src_component = src_component
        self._parser = parser
        self._message = message

    @classmethod
    def of(cls, message: MAVLinkMessage) -> Frame:
        """The frame of a message pymavlink already parsed."""
        return cls(
            bytes(message.get_msgbuf()),
            message.get_msgId(),
            message.get_srcSystem(),
            message.get_srcComponent(),
            message=message,
        )

    def message(self) -> MAVLinkMessage:
        """The decoded message (pymavlink's), decoded once."""
        if self._message is None:
            assert self._parser is not None  # a frame is made with a parser or a message
            self._message = self._parser.decode(bytearray(self.buf))
        return self._message

    def __repr__(self) -> str:
        ids = f"msg_id={self.msg_id}, src={self.src_system}/{self.src_component}"
        return f"Frame({ids}, {len(self.buf)} bytes)"


def read_frames(data: bytes, parser: mav.MAVLink) -> list[Frame]:
    """Every frame of a datagram, framed from the header and checked against its checksum (the
    message's CRC_EXTRA included), none decoded (``parser`` decodes them when read). Raises
    Unreadable, before returning anything, for bytes that are not whole, intact frames of known
    messages one after another: the caller then parses them with pymavlink, which says what was
    wrong and counts it."""
    frames: list[Frame] = []
    at = 0
    while at < len(data):
        h = _header(data, at)
        if h.incompat & ~_INCOMPAT_SIGNED:
            raise Unreadable(f"incompatibility flags {h.incompat:#x} at byte {at}")
        crc_at = h.payload + h.length
        crc = x25crc(data[at + 1 : crc_at])
        crc.accumulate(bytes((_CRC_EXTRA[h.msgid],)))
        if crc.crc != data[crc_at] | data[crc_at + 1] << 8:
            raise Unreadable(f"a bad checksum at byte {at}")
        frames.append(Frame(data[at : h.end], h.msgid, h.src_system, h.src_component, parser))
        at = h.end
    return frames
