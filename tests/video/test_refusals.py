"""What the WHEP endpoint refuses, with a status and a sentence a viewer's developer understands."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection

from dronectl.transports.whep.routes import SESSIONS
from dronectl.transports.whep.trickle import offer_ufrag
from tests.video.conftest import VideoSystem
from tests.video.whep_client import WhepViewer

NEST = 3
SDP_HEADERS = {"Content-Type": "application/sdp", "Authorization": "Bearer observer-token"}
FRAG_HEADERS = {"Content-Type": "application/trickle-ice-sdpfrag", "Authorization": "Bearer observer-token"}


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

    # trickle ICE on a session (RFC 9725 section 4.3 for WHIP, as WHEP uses it)
    viewer = WhepViewer(client, "observer-token")
    await viewer.connect(NEST)
    try:
        assert viewer.location is not None
        session = video.app[SESSIONS].sessions[viewer.location.rsplit("/", 1)[1]]
        ufrag = offer_ufrag(viewer.pc.localDescription.sdp)
        fragment = f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:x\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"

        resp = await client.options(f"/whep/nests/{NEST}")
        assert (resp.status, resp.headers["Accept-Post"]) == (204, "application/sdp")
        resp = await client.options(viewer.location)
        assert (resp.status, resp.headers["Accept-Patch"]) == (204, "application/trickle-ice-sdpfrag")

        async def patch(body: str, **headers: str) -> tuple[int, str]:
            resp = await client.patch(viewer.location or "", data=body, headers={**FRAG_HEADERS, **headers})
            return resp.status, await resp.text()

        assert (await patch(fragment, **{"Content-Type": "text/plain"}))[0] == 415
        assert (await patch(fragment, **{"If-Match": "*"})) == (
            422, "ICE restart is not supported: open a new session",
        )  # fmt: skip
        assert (await patch(fragment, **{"If-Match": '"stale"'}))[0] == 412
        assert (await patch(fragment, Authorization="Bearer pilot-token"))[0] == 403  # not its session
        status, text = await patch(fragment.replace(str(ufrag), "restart"))
        assert status == 422 and "ICE restart" in text
        status, text = await patch(fragment + "a=candidate:garbage\r\n")
        assert status == 400 and "not an ICE candidate" in text
        resp = await client.patch(f"/whep/nests/{NEST}/sessions/nope", data=fragment, headers=FRAG_HEADERS)
        assert resp.status == 404
        # a candidate and the end of them, under the session's entity tag: taken
        candidate = "a=candidate:1 1 udp 2113937151 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"
        assert (await patch(fragment + candidate, **{"If-Match": session.etag}))[0] == 204
        assert session.nest_id == NEST and session.session_id in video.app[SESSIONS].sessions
    finally:
        assert await viewer.leave() == 200
