"""Reading a MAVLink frame's target system from its bytes, without parsing the message.

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

from adapters.mavlink import dronectl_v20 as mav

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


def split_frames(data: bytes) -> Iterator[tuple[bytes, int | None]]:
    """Each whole frame in ``data`` with its target system (0: broadcast; None: the message has
    no target field). Raises Unreadable, before yielding anything, for bytes that are not whole
    frames of known messages one after another (no checksum is checked: the frames come from
    MAVSDK in this process, not from a radio)."""
    frames: list[tuple[bytes, int | None]] = []
    at = 0
    while at < len(data):
        magic = data[at]
        if magic == _V2 and at + _V2_HEADER <= len(data):
            length, incompat = data[at + 1], data[at + 2]
            msgid = data[at + 7] | data[at + 8] << 8 | data[at + 9] << 16
            payload = at + _V2_HEADER
            end = payload + length + _CRC + (_SIGNATURE if incompat & _INCOMPAT_SIGNED else 0)
        elif magic == _V1 and at + _V1_HEADER <= len(data):
            length, msgid = data[at + 1], data[at + 5]
            payload = at + _V1_HEADER
            end = payload + length + _CRC
        else:
            raise Unreadable(f"no MAVLink frame at byte {at}")
        if end > len(data) or msgid not in TARGET_OFFSETS:
            raise Unreadable(f"a torn frame or an unknown message id {msgid} at byte {at}")
        offset = TARGET_OFFSETS[msgid]
        target = None if offset is None else (data[payload + offset] if offset < length else 0)
        frames.append((data[at:end], target))
        at = end
    yield from frames
