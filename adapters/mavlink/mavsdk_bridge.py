"""The in-process MAVSDK serving the nests of one MAVLink network, fed through its ``raw://``
connection.

MAVSDK opens no socket: the router passes it each frame a nest's autopilot sends
(``pass_received_raw_bytes``) and MAVSDK hands back, on a thread of its own, each frame it wants
sent (``subscribe_raw_bytes_to_be_sent``); those are moved onto the event loop and routed to the
nest they are addressed to. MAVSDK tells the nests apart by their MAVLink system ids only: those
are unique on one network (``adapters.fleet`` runs a bridge per network beyond 254 nests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from mavsdk import ComponentType, Configuration, ConnectionResult, LogLevel, Mavsdk, log_subscribe

from adapters import blocking

log = structlog.get_logger(__name__)
mavsdk_log = structlog.get_logger("mavsdk")

DESTROY_TIMEOUT_S = 2.0
_LEVELS = {LogLevel.DEBUG: "debug", LogLevel.INFO: "info", LogLevel.WARN: "warning", LogLevel.ERROR: "error"}


def _mavsdk_log(level: LogLevel, message: str, file: str | None, line: int) -> bool:
    """MAVSDK's own log lines, into structlog (JSON on stderr) instead of its coloured text."""
    getattr(mavsdk_log, _LEVELS.get(level, "info"))("mavsdk.log", message=message, source=f"{file}:{line}")
    return True  # handled: MAVSDK prints nothing itself


def route_mavsdk_logs() -> None:
    """Process-wide (MAVSDK has one log sink); called when the bridge is created."""
    log_subscribe(_mavsdk_log)


class MavsdkBridge:
    """Owns the ``Mavsdk`` instance. ``mavsdk`` is there for the flight adapter's plugins."""

    def __init__(self, mavsdk: Mavsdk | None = None) -> None:
        route_mavsdk_logs()
        config = Configuration.create_with_component_type(ComponentType.GROUND_STATION)
        self.mavsdk: Any = mavsdk or Mavsdk(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transmit: Callable[[bytes], None] | None = None
        self._subscription: Any = None
        self._closed = False

    def start(self, transmit: Callable[[bytes], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._transmit = transmit
        result = self.mavsdk.add_any_connection("raw://")
        if result != ConnectionResult.SUCCESS:
            raise RuntimeError(f"MAVSDK raw connection failed: {result!r}")
        self._subscription = self.mavsdk.subscribe_raw_bytes_to_be_sent(self._on_bytes_to_send)
        log.info("adapters.mavsdk.started", version=self.mavsdk.version())

    def receive(self, frame: bytes) -> None:
        if not self._closed:
            self.mavsdk.pass_received_raw_bytes(frame)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.mavsdk.destroy()

    async def aclose(self, timeout_s: float = DESTROY_TIMEOUT_S) -> None:
        """Destroy MAVSDK on the bounded executor: a destroy held up by a call that never returns
        (its vehicle gone) is logged and left to its thread instead of blocking the loop."""
        if self._closed:
            return
        self._closed = True  # no more frames for MAVSDK from now on
        try:
            await blocking.call("destroy MAVSDK", self.mavsdk.destroy, timeout_s=timeout_s)
        except TimeoutError:
            log.warning("adapters.mavsdk.destroy_abandoned", timeout_s=timeout_s)

    def _on_bytes_to_send(self, data: bytes) -> None:
        # MAVSDK's thread (or the loop's, when a received frame makes it answer at once).
        loop, transmit = self._loop, self._transmit
        if loop is None or transmit is None or self._closed or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(transmit, data)
