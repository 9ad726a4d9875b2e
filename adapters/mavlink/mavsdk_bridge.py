"""The in-process MAVSDK serving the nests of one MAVLink network, fed through its ``raw://``
connection.

MAVSDK opens no socket. The router passes it each frame a nest's autopilot sends
(``pass_received_raw_bytes``) on a thread of ours: MAVSDK parses and dispatches within that call,
which was a quarter of the event loop's time at 64 airborne nests; ctypes releases the GIL during
it, so it runs beside the loop, several frames a call when they queue up. MAVSDK hands back, on a
thread of its own, each frame it wants sent (``subscribe_raw_bytes_to_be_sent``); those are moved
onto the event loop and routed to the nest they are addressed to. MAVSDK tells the nests apart by
their MAVLink system ids only: those are unique on one network (``adapters.fleet`` runs a bridge
per network beyond 254 nests).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog
from mavsdk import ComponentType, Configuration, ConnectionResult, LogLevel, Mavsdk, log_subscribe

from adapters import blocking

log = structlog.get_logger(__name__)
mavsdk_log = structlog.get_logger("mavsdk")

DESTROY_TIMEOUT_S = 2.0
# Frames waiting for MAVSDK beyond this are dropped (counted): a MAVSDK call that hangs must not
# make the queue grow without end (~45 frames a second per airborne nest).
MAX_QUEUED_FRAMES = 20_000
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
        # frames for MAVSDK, fed in order by one thread; None stops it
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._feeder: threading.Thread | None = None
        self.fed_calls = 0  # pass_received_raw_bytes calls (fewer than frames when they queue up)
        self.dropped_frames = 0  # while MAVSDK did not keep up (MAX_QUEUED_FRAMES)

    def start(self, transmit: Callable[[bytes], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._transmit = transmit
        result = self.mavsdk.add_any_connection("raw://")
        if result != ConnectionResult.SUCCESS:
            raise RuntimeError(f"MAVSDK raw connection failed: {result!r}")
        self._subscription = self.mavsdk.subscribe_raw_bytes_to_be_sent(self._on_bytes_to_send)
        self._feeder = threading.Thread(target=self._feed, name="mavsdk-feeder", daemon=True)
        self._feeder.start()
        log.info("adapters.mavsdk.started", version=self.mavsdk.version())

    def receive(self, frame: bytes) -> None:
        """Queue ``frame`` for MAVSDK (whole frames: MAVSDK parses several in one call)."""
        if self._closed:
            return
        if self._inbox.qsize() >= MAX_QUEUED_FRAMES:
            self.dropped_frames += 1
            if self.dropped_frames == 1 or self.dropped_frames % MAX_QUEUED_FRAMES == 0:
                log.warning(
                    "adapters.mavsdk.frames_dropped", dropped=self.dropped_frames, queued=MAX_QUEUED_FRAMES
                )
            return
        self._inbox.put(frame)

    def _feed(self) -> None:  # the feeder thread
        inbox, mavsdk = self._inbox, self.mavsdk
        while True:
            first = inbox.get()
            if first is None:
                return
            frames, stop = [first], False
            with contextlib.suppress(queue.Empty):
                while len(frames) < 64:
                    item = inbox.get_nowait()
                    if item is None:
                        stop = True
                        break
                    frames.append(item)
            try:
                mavsdk.pass_received_raw_bytes(b"".join(frames))
            except Exception:  # the feeder must outlive one bad call
                log.exception("adapters.mavsdk.feed_failed")
            self.fed_calls += 1
            if stop:
                return

    def _stop_feeding(self, timeout_s: float) -> None:
        """No more frames for MAVSDK: the feeder ends after its current call (before destroy)."""
        self._inbox.put(None)
        if self._feeder is not None and self._feeder is not threading.current_thread():
            self._feeder.join(timeout_s)
            if self._feeder.is_alive():
                log.warning("adapters.mavsdk.feeder_abandoned", timeout_s=timeout_s)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_feeding(DESTROY_TIMEOUT_S)
        self.mavsdk.destroy()

    async def aclose(self, timeout_s: float = DESTROY_TIMEOUT_S) -> None:
        """Destroy MAVSDK on the bounded executor: a destroy held up by a call that never returns
        (its vehicle gone) is logged and left to its thread instead of blocking the loop."""
        if self._closed:
            return
        self._closed = True  # no more frames for MAVSDK from now on

        def stop_and_destroy() -> None:
            self._stop_feeding(timeout_s)
            self.mavsdk.destroy()

        try:
            await blocking.call("destroy MAVSDK", stop_and_destroy, timeout_s=timeout_s)
        except TimeoutError:
            log.warning("adapters.mavsdk.destroy_abandoned", timeout_s=timeout_s)

    def _on_bytes_to_send(self, data: bytes) -> None:
        # MAVSDK's thread (or the loop's, when a received frame makes it answer at once).
        loop, transmit = self._loop, self._transmit
        if loop is None or transmit is None or self._closed or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(transmit, data)
