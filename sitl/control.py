"""The simulator's control port: inject faults, change weather, read records, at run time.

A TCP server on 127.0.0.1 speaking JSON lines, one request per line, one reply per line::

    {"op": "fault", "nest": 3, "kind": "link_loss", "duration_s": 10}
    {"op": "weather", "nest": 3, "wind_speed_mps": 14}        (nest "all" for every nest)
    {"op": "records", "nest": 3, "kind": "speaker."}
    {"op": "state", "nest": 3}
    {"op": "commands", "nest": 3}     the commands the nest received (COMMAND_LONG/INT, SET_MODE,
                                      mission and parameter writes), each with the peer it came from
    {"op": "nests"}

Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. ``python -m sitl fault``,
``weather`` and ``records`` are command-line clients of this port.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

import structlog

from sitl.environment import FaultKind
from sitl.world import SimWorld

log = structlog.get_logger(__name__)

DEFAULT_CONTROL_PORT = 18500
MAX_LINE_BYTES = 64 * 1024


class ControlError(Exception):
    """A control request that cannot be carried out; its text is the reply's error."""


def _nest_ids(world: SimWorld, value: Any) -> list[int]:
    if value == "all":
        return list(world.nests)
    try:
        nest_id = int(value)
    except (TypeError, ValueError):
        raise ControlError(f"'nest' must be a nest number or \"all\", got {value!r}") from None
    if nest_id not in world.nests:
        raise ControlError(f"no simulated nest {nest_id}")
    return [nest_id]


def nest_state(world: SimWorld, nest_id: int) -> dict[str, Any]:
    nest = world.nest(nest_id)
    # a docks-only nest: what its dock senses of the real drone (no position of its own to give)
    pos = nest.autopilot.position if nest.autopilot is not None else None
    return {
        "nest": nest_id,
        "mode": nest.mode.value,
        "time_s": round(world.clock.now(), 3),
        "armed": nest.armed(),
        "landed": nest.autopilot.landed if nest.autopilot is not None else not nest.airborne(),
        "on_pad": nest.on_pad(),
        "lat": pos.lat_deg if pos is not None else None,
        "lon": pos.lon_deg if pos is not None else None,
        "alt_amsl_m": pos.alt_amsl_m if pos is not None else None,
        "battery_pct": nest.battery_pct(),
        "cover_open": nest.cover_open(),
        "charging": nest.charging(),
        "weather": {
            k: (v.name.lower() if hasattr(v, "name") else v) for k, v in vars(nest.ctx.weather).items()
        },
        "faults": asdict(nest.ctx.faults),
        # MAVLink signing as PX4 does it: whether a key is set, and what the nest refused
        "signing": {"enabled": nest.link.signing.enabled, "rejected": dict(nest.link.signing.rejected)},
    }


def handle(world: SimWorld, request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one request (pure dispatch over the world; no I/O)."""
    op = request.get("op")
    if op == "nests":
        return {"ok": True, "nests": [world.describe(n) for n in world.nests]}
    if op == "fault":
        kind_name = str(request.get("kind", "")).upper().replace("-", "_")
        try:
            kind = FaultKind[kind_name]
        except KeyError:
            names = ", ".join(k.name.lower() for k in FaultKind if k is not FaultKind.WEATHER)
            raise ControlError(f"unknown fault kind {request.get('kind')!r}; one of: {names}") from None
        if kind is FaultKind.WEATHER:
            raise ControlError("use op 'weather' to change the weather")
        value = float(request.get("value", 0.0))
        duration_s = float(request.get("duration_s", 0.0))
        nests = _nest_ids(world, request.get("nest"))
        for nest_id in nests:
            world.nest(nest_id).inject(kind, value, duration_s)
        return {"ok": True, "nests": nests}
    if op == "weather":
        changes = {k: v for k, v in request.items() if k not in ("op", "nest")}
        nests = _nest_ids(world, request.get("nest"))
        try:
            for nest_id in nests:
                world.nest(nest_id).set_weather(**changes)
        except (ValueError, TypeError, KeyError) as exc:
            raise ControlError(str(exc)) from None
        return {"ok": True, "nests": nests}
    if op == "records":
        [nest_id] = _nest_ids(world, request.get("nest"))
        prefix = str(request.get("kind", ""))
        records = [asdict(r) for r in world.nest(nest_id).ctx.recorder.all(prefix)]
        return {"ok": True, "records": records}
    if op == "state":
        return {"ok": True, "state": [nest_state(world, n) for n in _nest_ids(world, request.get("nest"))]}
    if op == "commands":
        [nest_id] = _nest_ids(world, request.get("nest"))
        return {"ok": True, "commands": [asdict(c) for c in world.nest(nest_id).link.heard]}
    raise ControlError(f"unknown op {op!r}; one of: nests, fault, weather, records, state, commands")


class ControlServer:
    def __init__(self, world: SimWorld, host: str = "127.0.0.1", port: int = DEFAULT_CONTROL_PORT) -> None:
        self.world = world
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port, limit=MAX_LINE_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]  # port 0: the one the system chose
        log.info("sitl.control.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ControlError("a request is a JSON object")
                    reply = handle(self.world, request)
                except (ControlError, ValueError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(reply, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def request(
    payload: dict[str, Any], host: str = "127.0.0.1", port: int = DEFAULT_CONTROL_PORT
) -> dict[str, Any]:
    """Send one request to a running simulator's control port and return the reply."""
    reader, writer = await asyncio.open_connection(host, port, limit=16 * MAX_LINE_BYTES)
    try:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    reply: dict[str, Any] = json.loads(line)
    return reply
