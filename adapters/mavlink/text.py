"""UTF-8 in MAVLink char[] fields.

pymavlink decodes char[] fields as ASCII (non-ASCII bytes become U+FFFD), but our dialect carries
UTF-8 (Mandarin loudspeaker texts). Encode with ``text.encode()`` when building a message, and
read with :func:`utf8_field`, which decodes the raw bytes pymavlink keeps.
"""

from __future__ import annotations

from typing import Any


def utf8_field(msg: Any, name: str) -> str:
    """The UTF-8 text of char[] field ``name`` of a parsed or built message."""
    raw = getattr(msg, f"_{name}_raw", None)
    if raw is None:
        value = getattr(msg, name)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return bytes(raw).split(b"\x00", 1)[0].decode("utf-8", "replace")


def encode_utf8(text: str, size: int) -> bytes:
    """``text`` as UTF-8 cut to at most ``size`` bytes without splitting a character."""
    data = text.encode()
    if len(data) <= size:
        return data
    return data[:size].decode("utf-8", "ignore").encode()
