"""What the WHEP endpoint refuses, with a status and a sentence a viewer's developer understands."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection

from tests.video.conftest import VideoSystem

NEST = 3
SDP_HEADERS = {"Content-Type": "application/sdp", "Authorization": "Bearer observer-token"}


async def browser_like_offer(audio: str | None = None) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    if audio is not None:
        pc.addTransceiver("audio", direction=audio)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def without_h264(sdp: str) -> str:
    """The offer as a browser with only VP8 would make it."""
    h264 = {
        line.split(":")[1].split()[0]
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:") and " H264/" in line
    }
    rtx = {
        line.split(":")[1].split()[0]
        for line in sdp.splitlines()
        if line.startswith("a=fmtp:") and any(f"apt={pt}" in line for pt in h264)
    }
    drop = h264 | rtx
    out = []
    for line in sdp.splitlines():
        if line.startswith("m=video"):
            parts = line.split()
            line = " ".join(parts[:3] + [pt for pt in parts[3:] if pt not in drop])
        elif (
            line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")) and line.split(":")[1].split()[0] in drop
        ):
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


async def test_refusals(video: VideoSystem) -> None:
    client = video.client
    offer = await browser_like_offer()

    resp = await client.post(f"/whep/nests/{NEST}", data=offer, headers={"Content-Type": "application/sdp"})
    assert resp.status == 401

    resp = await client.post("/whep/nests/99", data=offer, headers=SDP_HEADERS)
    assert (resp.status, await resp.text()) == (404, "no nest 99")

    resp = await client.post(f"/whep/nests/{NEST}", data=offer, headers=SDP_HEADERS)
    assert resp.status == 409 and "not airborne" in await resp.text()

    await video.launch(NEST)
    resp = await client.post(
        f"/whep/nests/{NEST}", data=offer, headers={**SDP_HEADERS, "Content-Type": "application/json"}
    )
    assert resp.status == 415

    resp = await client.post(f"/whep/nests/{NEST}", data="hello", headers=SDP_HEADERS)
    assert resp.status == 400 and "SDP" in await resp.text()

    resp = await client.post(f"/whep/nests/{NEST}", data=without_h264(offer), headers=SDP_HEADERS)
    text = await resp.text()
    assert resp.status == 400 and "H.264" in text and "VP8" in text, text

    talk = await browser_like_offer(audio="sendrecv")
    resp = await client.post(f"/whep/nests/{NEST}", data=talk, headers=SDP_HEADERS)
    assert resp.status == 403 and "talk-back" in await resp.text()

    resp = await client.delete(f"/whep/nests/{NEST}/sessions/nope", headers=SDP_HEADERS)
    assert resp.status == 404

    assert not video.hub.ingest_running(NEST)  # no refused request left a stream running
