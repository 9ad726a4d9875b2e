"""The router reads a frame's target system from its bytes (issue 15): for every message of our
dialect that has one, what ``split_frames`` reads is what pymavlink's full parse says, whatever the
target, with MAVLink 2's trailing-zero trimming, signed frames, several frames in one buffer and
MAVLink 1; what is not whole frames of known messages is refused, for the caller to parse."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.frames import TARGET_OFFSETS, Unreadable, read_frames, split_frames
from adapters.mavlink.message import new_parser

WITH_TARGET = sorted(msgid for msgid, offset in TARGET_OFFSETS.items() if offset is not None)


def _message(msgid: int, target: int, fill: int) -> Any:
    """A message of the dialect with every field at ``fill`` (or its type's nearest) and the target."""
    cls = mav.mavlink_map[msgid]
    args = []
    for name, kind in zip(cls.fieldnames, cls.fieldtypes, strict=True):
        length = cls.array_lengths[cls.ordered_fieldnames.index(name)]
        if name == "target_system":
            value: Any = target
        elif kind == "char":
            value = b"x" * (length or 1) if fill else b""
        elif kind in ("float", "double"):
            value = float(fill)
        else:
            value = fill
        args.append([value] * length if length and kind != "char" else value)
    return cls(*args)


def _frame(msg: Any, sign: bool = False) -> bytes:
    encoder = new_parser(system_id=255, component_id=190)
    if sign:
        encoder.signing.secret_key = bytes(32)
        encoder.signing.link_id = 0
        encoder.signing.timestamp = 1
        encoder.signing.sign_outgoing = True
    return bytes(msg.pack(encoder))


@pytest.mark.parametrize("msgid", WITH_TARGET)
def test_the_target_read_from_the_bytes_is_pymavlinks(msgid: int) -> None:
    for target, fill in ((7, 0), (7, 1), (254, 1), (0, 0), (0, 1)):
        frame = _frame(_message(msgid, target, fill))
        parsed = new_parser().parse_buffer(frame)
        assert parsed and parsed[0].get_type() != "BAD_DATA"
        assert [(f, t) for f, t in split_frames(frame)] == [(frame, parsed[0].target_system)]


def test_several_frames_signed_and_unsigned_in_one_buffer() -> None:
    a = _frame(_message(mav.MAVLINK_MSG_ID_COMMAND_LONG, 3, 1))
    b = _frame(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3))
    c = _frame(_message(mav.MAVLINK_MSG_ID_PARAM_SET, 9, 1), sign=True)
    assert list(split_frames(a + b + c)) == [(a, 3), (b, None), (c, 9)]


def test_mavlink1_frames() -> None:
    encoder = new_parser(system_id=255, component_id=190)
    encoder.WIRE_PROTOCOL_VERSION = "1.0"
    msg = _message(mav.MAVLINK_MSG_ID_SET_MODE, 12, 1)
    frame = bytes(msg.pack(encoder, force_mavlink1=True))
    assert frame[0] == 0xFE
    assert list(split_frames(frame)) == [(frame, 12)]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02",  # no frame
        _frame(_message(mav.MAVLINK_MSG_ID_COMMAND_LONG, 3, 1))[:-3],  # torn
        bytes([0xFD, 0, 0, 0, 0, 1, 1, 0xFF, 0xFF, 0x7F, 0, 0]),  # an id not in the dialect
    ],
)
def test_what_is_not_whole_known_frames_is_refused(data: bytes) -> None:
    with pytest.raises(Unreadable):
        list(split_frames(data))


# --- incoming: read_frames ------------------------------------------------------------------------

ALL_IDS = sorted(mav.mavlink_map)


def _fields(msg: Any) -> dict[str, Any]:
    return {name: getattr(msg, name) for name in msg.get_fieldnames()}


@pytest.mark.parametrize("msgid", ALL_IDS)
def test_a_frame_read_from_its_header_decodes_as_pymavlinks_parse(msgid: int) -> None:
    """Every message of the dialect: the ids read from the header are pymavlink's, and the lazily
    decoded message has pymavlink's fields (MAVLink 2's trailing zeros trimmed or not)."""
    for fill in (0, 1):
        raw = _frame(_message(msgid, 7, fill))  # the target is set where the message has one
        parsed = new_parser().parse_buffer(raw)
        assert parsed and parsed[0].get_type() != "BAD_DATA"
        (frame,) = read_frames(raw, new_parser())
        assert (frame.buf, frame.msg_id, frame.src_system, frame.src_component) == (raw, msgid, 255, 190)
        assert _fields(frame.message()) == _fields(parsed[0])
        assert frame.message() is frame.message()  # decoded once


def test_signed_mavlink1_and_several_frames_in_one_datagram() -> None:
    a = _frame(_message(mav.MAVLINK_MSG_ID_COMMAND_ACK, 3, 1))
    b = _frame(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3), sign=True)
    encoder = new_parser(system_id=12, component_id=100)
    c = bytes(_message(mav.MAVLINK_MSG_ID_SET_MODE, 12, 1).pack(encoder, force_mavlink1=True))
    frames = read_frames(a + b + c, new_parser())
    assert [(f.buf, f.msg_id, f.src_system, f.src_component) for f in frames] == [
        (a, mav.MAVLINK_MSG_ID_COMMAND_ACK, 255, 190),
        (b, mav.MAVLINK_MSG_ID_HEARTBEAT, 255, 190),
        (c, mav.MAVLINK_MSG_ID_SET_MODE, 12, 100),
    ]
    assert frames[1].message().type == 6
    assert frames[2].message().custom_mode == 1


def test_a_flipped_bit_anywhere_fails_the_checksum() -> None:
    """What a checksum would refuse is refused before anything is read: the caller's pymavlink
    parse then counts it as malformed."""
    raw = _frame(_message(mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 0, 1))
    for byte in range(1, len(raw)):
        for bit in (0, 7):
            bad = bytearray(raw)
            bad[byte] ^= 1 << bit
            with pytest.raises(Unreadable):
                read_frames(bytes(bad), new_parser())


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02",
        _frame(_message(mav.MAVLINK_MSG_ID_COMMAND_LONG, 3, 1))[:-1],
        _frame(_message(mav.MAVLINK_MSG_ID_COMMAND_LONG, 3, 1)) + b"\xfd",
        bytes([0xFD, 0, 0, 0, 0, 1, 1, 0xFF, 0xFF, 0x7F, 0, 0]),
        bytes([0xFD, 0, 0x02, 0, 0, 1, 1, 0, 0, 0, 0, 0]),  # an incompatibility flag we do not know
    ],
)
def test_incoming_bytes_that_are_not_intact_frames_are_refused(data: bytes) -> None:
    with pytest.raises(Unreadable):
        read_frames(data, new_parser())
