"""The ``Camera`` protocol over MAVLink (component 100 of the nest) and RTP/H.264 over UDP.

- Discovery: MAV_CMD_REQUEST_MESSAGE(VIDEO_STREAM_INFORMATION) answered by the camera's
  VIDEO_STREAM_INFORMATION (transport, encoding, resolution, URI).
- Streaming: for an RTP/UDP stream the URI names the port to listen on (``udp://0.0.0.0:5603``,
  or just ``5603``); we open a UDP socket there (before asking, so no packet is missed), then send
  MAV_CMD_VIDEO_START_STREAMING; the camera pushes RTP to us. The packets are reassembled into
  H.264 access units (``adapters.rtp_h264``) on the event loop - no decoding, no re-encoding.
- While streaming, a camera that falls silent for ``restart_after_s`` (it stopped after a link
  outage, or rebooted) is asked to START again; MAVLink has no keyframe request, so after a loss
  the stream resumes at the camera's next keyframe (one a second).
- MAV_CMD_VIDEO_STOP_STREAMING on stop; ``close()`` sends it without waiting.

Each ``access_units()`` iterator (taken while streaming; one taken before ends at once) starts at
a keyframe and has its own bounded queue; a reader
that falls behind loses what is queued and resumes at the next keyframe (live video: late
pictures are worth nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import weakref
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import structlog

from adapters.errors import CommandRejected, CommandTimeout
from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import RetryPolicy, raise_for
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.text import utf8_field
from adapters.protocols import (
    AccessUnit,
    CommandResult,
    LinkState,
    VideoEncoding,
    VideoStreamInfo,
    VideoTransport,
)
from adapters.rtp_h264 import DepacketizerStats, H264Depacketizer

log = structlog.get_logger(__name__)

POLICY = RetryPolicy(ack_timeout_s=1.0, attempts=3, max_duration_s=5.0)
INFO_TIMEOUT_S = 3.0
RESTART_AFTER_S = 2.0
QUEUE_UNITS = 90  # 3 s at 30 fps
RECEIVE_BUFFER_BYTES = 4 << 20

TRANSPORTS = {
    mav.VIDEO_STREAM_TYPE_RTSP: VideoTransport.RTSP,
    mav.VIDEO_STREAM_TYPE_RTPUDP: VideoTransport.RTP_UDP,
    mav.VIDEO_STREAM_TYPE_TCP_MPEG: VideoTransport.TCP_MPEG,
    mav.VIDEO_STREAM_TYPE_MPEG_TS: VideoTransport.MPEG_TS_UDP,
    mav.VIDEO_STREAM_TYPE_WHEP: VideoTransport.WHEP,
}
ENCODINGS = {
    mav.VIDEO_STREAM_ENCODING_H264: VideoEncoding.H264,
    mav.VIDEO_STREAM_ENCODING_H265: VideoEncoding.H265,
}


def stream_info(msg: MAVLinkMessage) -> VideoStreamInfo:
    return VideoStreamInfo(
        stream_id=int(msg.stream_id),
        name=utf8_field(msg, "name"),
        transport=TRANSPORTS.get(int(msg.type), VideoTransport.UNKNOWN),
        encoding=ENCODINGS.get(int(getattr(msg, "encoding", 0)), VideoEncoding.UNKNOWN),
        uri=utf8_field(msg, "uri"),
        width_px=int(msg.resolution_h),
        height_px=int(msg.resolution_v),
        framerate_hz=float(msg.framerate),
        bitrate_bps=int(msg.bitrate),
        hfov_deg=int(msg.hfov),
    )


def udp_port(uri: str) -> int:
    """The port of an RTP/UDP stream URI: ``udp://0.0.0.0:5600``, ``udp://@:5600`` or ``5600``."""
    text = uri.strip()
    if text.isdigit():
        return int(text)
    try:
        port = urlsplit(text.replace("@:", "0.0.0.0:", 1)).port
    except ValueError:
        port = None
    if port is None or not 0 < port < 65536:
        raise ValueError(f"no UDP port in stream URI {uri!r}")
    return port


class _Reader:
    """One ``access_units()`` iterator: its own bounded queue, starting at a keyframe.

    The camera keeps readers in a weak set, so an iterator its caller dropped (``break`` out of
    ``async for``) stops receiving at once.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[AccessUnit | None] = asyncio.Queue(QUEUE_UNITS)
        self.need_keyframe = True
        self.dropped = 0
        self._ended = False

    def __aiter__(self) -> _Reader:
        return self

    async def __anext__(self) -> AccessUnit:
        if self._ended:
            raise StopAsyncIteration
        unit = await self.queue.get()
        if unit is None:
            self._ended = True
            raise StopAsyncIteration
        return unit

    async def aclose(self) -> None:
        self._ended = True


class _RtpReceiver(asyncio.DatagramProtocol):
    def __init__(self, camera: MavlinkCamera) -> None:
        self._camera = camera

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._camera._on_packet(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("adapters.camera.socket_error", error=str(exc))


class MavlinkCamera:
    def __init__(
        self,
        link: ComponentLink,
        *,
        listen_host: str = "0.0.0.0",
        policy: RetryPolicy = POLICY,
        restart_after_s: float = RESTART_AFTER_S,
    ) -> None:
        self._link = link
        self._listen_host = listen_host
        self._policy = policy
        self._restart_after_s = restart_after_s
        self._info: VideoStreamInfo | None = None
        self._info_waiters: list[asyncio.Future[VideoStreamInfo]] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._depacketizer = H264Depacketizer()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._streaming = False
        self._last_packet_s: float | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._unsubscribe = link.subscribe(self._on_message)

    @property
    def stats(self) -> DepacketizerStats:
        """Packet and access-unit counters of the depacketizer."""
        return self._depacketizer.stats

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def reader_count(self) -> int:
        """How many ``access_units()`` iterators are running."""
        return len(self._readers)

    # Camera ---------------------------------------------------------------------------------------
    async def stream_info(self) -> VideoStreamInfo:
        link = self._link
        link.watchdog.ensure_connected()
        waiter: asyncio.Future[VideoStreamInfo] = asyncio.get_running_loop().create_future()
        self._info_waiters.append(waiter)
        try:
            ack = await link.commands.command_long(
                mav.MAV_CMD_REQUEST_MESSAGE, (mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, 0), self._policy
            )
            raise_for(ack, "request the video stream information", link.name, link.watchdog.silent_s())
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), INFO_TIMEOUT_S)
            except TimeoutError:
                raise CommandTimeout("request the video stream information", INFO_TIMEOUT_S, 1) from None
        finally:
            with contextlib.suppress(ValueError):
                self._info_waiters.remove(waiter)
            waiter.cancel()

    async def start_streaming(self) -> None:
        what = "start the video stream"
        info = self._info or await self.stream_info()
        if info.transport is not VideoTransport.RTP_UDP or info.encoding is not VideoEncoding.H264:
            reason = (
                f"stream is {info.transport.value}/{info.encoding.value}; this adapter takes RTP/UDP H.264"
            )
            raise CommandRejected(what, CommandResult.UNSUPPORTED, reason)
        try:
            port = udp_port(info.uri)
        except ValueError as exc:
            raise CommandRejected(what, CommandResult.UNSUPPORTED, str(exc)) from None
        if self._transport is None:
            await self._open_socket(port)
        self._streaming = True
        try:
            await self._send_start(info.stream_id)
        except BaseException:
            self._streaming = False
            self._close_socket()
            raise
        self._last_packet_s = asyncio.get_running_loop().time()
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(
                self._keep_alive(info.stream_id), name="adapters.camera.keeper"
            )

    async def stop_streaming(self) -> None:
        was_streaming = self._streaming
        stream_id = self._info.stream_id if self._info is not None else 0
        self._end_stream()
        if not was_streaming or not self._link.watchdog.connected:
            return
        link = self._link
        ack = await link.commands.command_long(mav.MAV_CMD_VIDEO_STOP_STREAMING, (stream_id,), self._policy)
        raise_for(ack, "stop the video stream", link.name, link.watchdog.silent_s())

    def access_units(self) -> AsyncIterator[AccessUnit]:
        reader = _Reader()
        if self._streaming:
            self._readers.add(reader)
        else:
            _put_latest(reader.queue, None)  # nothing to read: ends at once
        return reader

    def link_state(self) -> AsyncIterator[LinkState]:
        return self._link.watchdog.state.updates()

    def close(self) -> None:
        """Stop (telling the camera without waiting for its answer) and let go of everything."""
        if self._streaming and self._link.watchdog.connected:
            stream_id = self._info.stream_id if self._info is not None else 0
            self._link.send(
                mav.MAVLink_command_long_message(
                    self._link.system_id, self._link.component_id, mav.MAV_CMD_VIDEO_STOP_STREAMING, 0,
                    stream_id, 0, 0, 0, 0, 0, 0,
                )
            )  # fmt: skip
        self._end_stream()
        self._unsubscribe()

    # ----------------------------------------------------------------------------------------------
    async def _send_start(self, stream_id: int) -> None:
        link = self._link
        link.watchdog.ensure_connected()
        ack = await link.commands.command_long(mav.MAV_CMD_VIDEO_START_STREAMING, (stream_id,), self._policy)
        raise_for(ack, "start the video stream", link.name, link.watchdog.silent_s())

    async def _open_socket(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            sock.setblocking(False)
            sock.bind((self._listen_host, port))
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _RtpReceiver(self), sock=sock)
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._depacketizer.reset()
        log.info("adapters.camera.listening", camera=self._link.name, port=port)

    def _close_socket(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _end_stream(self) -> None:
        self._streaming = False
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        self._close_socket()
        for reader in list(self._readers):
            _put_latest(reader.queue, None)
        self._readers.clear()

    async def _keep_alive(self, stream_id: int) -> None:
        """Ask again when the camera falls silent while we stream (it stopped, or rebooted)."""
        loop = asyncio.get_running_loop()
        while self._streaming:
            await asyncio.sleep(self._restart_after_s / 4)
            last = self._last_packet_s
            if last is None or loop.time() - last < self._restart_after_s:
                continue
            if not self._link.watchdog.connected:
                continue
            log.info("adapters.camera.restart", camera=self._link.name, silent_s=round(loop.time() - last, 1))
            self._last_packet_s = loop.time()
            try:
                await self._send_start(stream_id)
            except Exception as exc:  # noqa: BLE001 - keep trying while the caller streams
                log.warning("adapters.camera.restart_failed", camera=self._link.name, error=str(exc))

    def _on_packet(self, data: bytes) -> None:
        if not self._streaming:
            return
        self._last_packet_s = asyncio.get_running_loop().time()
        for unit in self._depacketizer.push(data, time.time_ns() // 1000):
            for reader in list(self._readers):
                _deliver(reader, unit)

    def _on_message(self, msg: MAVLinkMessage) -> None:
        if msg.get_msgId() != mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION:
            return
        info = stream_info(msg)
        if self._info is None or self._info.stream_id == info.stream_id or info.stream_id == 1:
            self._info = info
        for waiter in self._info_waiters:
            if not waiter.done():
                waiter.set_result(info)


def _deliver(reader: _Reader, unit: AccessUnit) -> None:
    if reader.need_keyframe and not unit.keyframe:
        return
    if reader.queue.full():
        # Behind by QUEUE_UNITS pictures: drop them all and start again at a keyframe.
        while not reader.queue.empty():
            reader.queue.get_nowait()
            reader.dropped += 1
        reader.need_keyframe = True
        if not unit.keyframe:
            return
    reader.need_keyframe = False
    reader.queue.put_nowait(unit)


def _put_latest(queue: asyncio.Queue[AccessUnit | None], item: AccessUnit | None) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
