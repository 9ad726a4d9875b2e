"""A nest's far end in a few lines, over loopback UDP: components that send heartbeats, and
answer commands the way a test tells them to. Not a simulator: it does only what a test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.message import MAVLinkMessage, new_parser
from adapters.mavlink.signing import Signer

Address = tuple[str, int]
CommandHandler = Callable[[MAVLinkMessage], None]


class FakeNest(asyncio.DatagramProtocol):
    def __init__(self, system_id: int, router: Address) -> None:
        self.system_id = system_id
        self.router = router
        self.parser = new_parser()
        self._encoders: dict[int, mav.MAVLink] = {}
        self.received: list[MAVLinkMessage] = []
        self.received_from: set[Address] = set()
        self.cut = False  # drop everything both ways, as a cut link does
        self.on_command: CommandHandler | None = None
        self.signer: Signer | None = None  # set it to sign what the nest sends
        self._transport: asyncio.DatagramTransport | None = None
        self._heartbeat_timers: dict[int, asyncio.TimerHandle] = {}
        self._changed = asyncio.Event()

    async def open(self) -> FakeNest:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        return self

    def close(self) -> None:
        for timer in self._heartbeat_timers.values():
            timer.cancel()
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.cut:
            return
        self.received_from.add(addr)
        for msg in self.parser.parse_buffer(data) or []:
            if msg.get_type() == "BAD_DATA":
                continue
            self.received.append(msg)
            self._changed.set()
            if msg.get_type() in ("COMMAND_LONG", "COMMAND_INT", "SPEAKER_PLAY_TEXT") and self.on_command:
                self.on_command(msg)

    # sending ------------------------------------------------------------------------------------
    def encoder(self, component_id: int) -> mav.MAVLink:
        if component_id not in self._encoders:
            self._encoders[component_id] = new_parser(self.system_id, component_id)
        return self._encoders[component_id]

    def send(self, component_id: int, msg: MAVLinkMessage) -> bytes:
        """Send ``msg`` from ``component_id`` (signed when ``signer`` is set); the bytes sent."""
        frame = bytes(msg.pack(self.encoder(component_id)))
        if self.signer is not None:
            signed = self.signer.sign(frame)
            assert signed is not None
            frame = signed
        self.send_raw(frame)
        return frame

    def send_raw(self, data: bytes) -> None:
        if self._transport is not None and not self.cut:
            self._transport.sendto(data, self.router)

    def heartbeat(self, component_id: int) -> None:
        self.send(
            component_id,
            mav.MAVLink_heartbeat_message(mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_PX4, 0, 0, 3, 3),
        )

    def start_heartbeats(self, component_id: int, interval_s: float = 0.2) -> None:
        def beat() -> None:
            self.heartbeat(component_id)
            self._heartbeat_timers[component_id] = loop.call_later(interval_s, beat)

        loop = asyncio.get_running_loop()
        self.stop_heartbeats(component_id)
        beat()

    def stop_heartbeats(self, component_id: int) -> None:
        timer = self._heartbeat_timers.pop(component_id, None)
        if timer is not None:
            timer.cancel()

    def ack(self, cmd: MAVLinkMessage, result: int, progress: int = 0, result_param2: int = 0) -> None:
        """Answer ``cmd`` from the component it was sent to, addressed to its sender."""
        self.send(
            cmd.target_component,
            mav.MAVLink_command_ack_message(
                cmd.command, result, progress, result_param2, cmd.get_srcSystem(), cmd.get_srcComponent()
            ),
        )

    def statustext(self, component_id: int, text: str, severity: int = mav.MAV_SEVERITY_WARNING) -> None:
        self.send(component_id, mav.MAVLink_statustext_message(severity, text.encode()))

    # reading -------------------------------------------------------------------------------------
    def of_type(self, name: str) -> list[MAVLinkMessage]:
        return [m for m in self.received if m.get_type() == name]


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)
