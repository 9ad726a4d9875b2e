"""A camera without a network: the test pushes access units; and sources of one nest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from adapters.protocols import AccessUnit, LinkState, Payload, VideoEncoding, VideoStreamInfo, VideoTransport

INFO = VideoStreamInfo(1, "nadir", VideoTransport.RTP_UDP, VideoEncoding.H264, "udp://0.0.0.0:5603",
                       1280, 720, 30.0, 4_000_000, 80)  # fmt: skip


def unit(index: int, keyframe: bool = False, gop: int = 30) -> AccessUnit:
    return AccessUnit(bytes([0, 0, 0, 1, 0x65 if keyframe else 0x41, index & 0xFF]), 1000 + 3000 * index,
                      keyframe, None, index * 33_333)  # fmt: skip


class FakeCamera:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.starts = 0
        self.stops = 0
        self.streaming = False
        self._readers: list[asyncio.Queue[AccessUnit | None]] = []

    async def stream_info(self) -> VideoStreamInfo:
        return INFO

    async def start_streaming(self) -> None:
        if self.refuse:
            raise RuntimeError("camera busy")
        self.starts += 1
        self.streaming = True

    async def stop_streaming(self) -> None:
        self.stops += 1
        self.streaming = False
        for queue in self._readers:
            queue.put_nowait(None)
        self._readers.clear()

    def push(self, au: AccessUnit) -> None:
        for queue in self._readers:
            queue.put_nowait(au)

    @property
    def readers(self) -> int:
        return len(self._readers)

    async def access_units(self) -> AsyncIterator[AccessUnit]:
        if not self.streaming:
            return
        queue: asyncio.Queue[AccessUnit | None] = asyncio.Queue()
        self._readers.append(queue)
        while (au := await queue.get()) is not None:
            yield au

    async def link_state(self) -> AsyncIterator[LinkState]:
        yield LinkState(True, 0.0)


class OneNest:
    def __init__(self, camera: FakeCamera | None, nest_id: int = 3, airborne: bool = True) -> None:
        self.nest_id = nest_id
        self.cam = camera
        self.flying = airborne

    def known(self, nest_id: int) -> bool:
        return nest_id == self.nest_id

    def airborne(self, nest_id: int) -> bool:
        return self.flying

    def camera(self, nest_id: int) -> FakeCamera | None:
        return self.cam

    def payload(self, nest_id: int) -> Payload | None:
        return None
