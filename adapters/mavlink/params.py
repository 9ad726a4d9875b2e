"""The parameter micro-service, its write half: PARAM_SET until the component's PARAM_VALUE shows
the value took.

PX4 answers a PARAM_SET by broadcasting the parameter's PARAM_VALUE: the new value, or the old
one when it kept it; an unknown name gets no PARAM_VALUE at all, only a STATUSTEXT. So the set is
resent every ``resend_s`` until a PARAM_VALUE of that name carries the value asked for, for at
most ``timeout_s``; a PARAM_VALUE with another value is not final (it may answer an earlier
request), but if no matching one comes, the set is refused with the value the component kept.

Parameter sets went through MAVSDK's param plugin before. In CI (2026-12-03, under faketime and a
loaded machine) one set of MPC_XY_CRUISE to one autopilot never returned: its blocking C call held
an executor thread for more than 160 s, and every later set to that autopilot queued behind it,
while the simulator answered every PARAM_SET it received. A call that cannot be cancelled has no
place on the command path; this one is plain asyncio on the link, bounded like every command.
"""

from __future__ import annotations

import asyncio
import math
import struct

from adapters.errors import CommandRejected, CommandTimeout
from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.message import MAVLinkMessage
from adapters.protocols import CommandResult

PARAM_ID_BYTES = 16
RESEND_S = 0.5
TIMEOUT_S = 5.0


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _encode(value: float, param_type: int) -> float:
    """PARAM_SET's float: reals as they are, int32 bytewise (PX4's encoding)."""
    if param_type == mav.MAV_PARAM_TYPE_INT32:
        return float(struct.unpack("<f", struct.pack("<i", int(value)))[0])
    return _float32(value)


def _decode(raw: float, param_type: int) -> float:
    if param_type == mav.MAV_PARAM_TYPE_INT32:
        return float(struct.unpack("<i", struct.pack("<f", raw))[0])
    return float(raw)


def _param_name(msg: MAVLinkMessage) -> str:
    raw = msg.param_id
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    return str(raw).split("\x00", 1)[0]


async def set_param(
    link: ComponentLink,
    name: str,
    value: float,
    param_type: int = mav.MAV_PARAM_TYPE_REAL32,
    *,
    timeout_s: float = TIMEOUT_S,
    resend_s: float = RESEND_S,
) -> float:
    """Set ``name`` on the link's component; the value it reports once it took.

    Raises ``LinkLost`` when the component is not heard, ``CommandTimeout`` when no PARAM_VALUE of
    ``name`` came within ``timeout_s``, ``CommandRejected`` when the component kept another value.
    """
    encoded = name.encode("ascii")
    if not encoded or len(encoded) > PARAM_ID_BYTES:
        raise ValueError(f"a MAVLink parameter name has 1 to {PARAM_ID_BYTES} ASCII characters: {name!r}")
    if param_type not in (mav.MAV_PARAM_TYPE_REAL32, mav.MAV_PARAM_TYPE_INT32):
        raise ValueError(f"parameter type {param_type} is not supported (REAL32 or INT32)")
    if not math.isfinite(value):
        raise ValueError(f"{name} cannot be set to {value}")
    wanted = _decode(_encode(value, param_type), param_type)
    link.watchdog.ensure_connected()
    answers: asyncio.Queue[float] = asyncio.Queue()

    def on_message(msg: MAVLinkMessage) -> None:
        if msg.get_msgId() == mav.MAVLINK_MSG_ID_PARAM_VALUE and _param_name(msg) == name:
            answers.put_nowait(_decode(float(msg.param_value), int(msg.param_type)))

    what = f"set {name}"
    kept: float | None = None
    attempts = 0
    unsubscribe = link.subscribe(on_message, {mav.MAVLINK_MSG_ID_PARAM_VALUE})
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while loop.time() < end:
            link.watchdog.ensure_connected()
            link.send(
                mav.MAVLink_param_set_message(
                    link.system_id, link.component_id, encoded, _encode(value, param_type), param_type
                )
            )
            attempts += 1
            resend_at = min(end, loop.time() + resend_s)
            while (left := resend_at - loop.time()) > 0:
                try:
                    async with asyncio.timeout(left):
                        got = await answers.get()
                except TimeoutError:
                    break
                if got == wanted:
                    return got
                kept = got
    finally:
        unsubscribe()
    if kept is not None:
        raise CommandRejected(what, CommandResult.DENIED, f"{link.name} kept {name} = {kept:g}")
    raise CommandTimeout(what, timeout_s, attempts)
