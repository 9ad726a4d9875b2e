"""A WHEP viewer in its own process, for tests that kill it (a browser tab gone without DELETE).

    python -m tests.video.viewer_process URL NEST TOKEN

Opens a session on ``URL/whep/nests/NEST``, receives the video, prints ``watching <Location>``
once a frame has arrived, then keeps watching until killed.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


async def watch(base_url: str, nest_id: int, token: str) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    first_frame = asyncio.Event()

    async def receive(track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            first_frame.set()

    tasks: set[asyncio.Task[None]] = set()
    pc.on("track", lambda track: tasks.add(asyncio.create_task(receive(track))))
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{base_url}/whep/nests/{nest_id}",
            data=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
        answer = await resp.text()
        if resp.status != 201:
            raise SystemExit(f"refused: {resp.status} {answer}")
        location = resp.headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await asyncio.wait_for(first_frame.wait(), 30)
    sys.stdout.write(f"watching {location}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(watch(sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3]))
