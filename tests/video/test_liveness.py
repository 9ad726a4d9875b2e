"""A WHEP session whose viewer is gone without DELETE is closed and its subscription released, so
the ingest stops when no viewer is left: the viewer's process killed (silent), its ICE never
completing, its peer connection closed; and the pure verdict behind it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from dronectl.transports.whep.liveness import LivenessSettings, PeerObservation, lost_reason
from dronectl.transports.whep.routes import SESSIONS
from tests.adapters.fake_peer import wait_until
from tests.video.conftest import VideoSystem
from tests.video.whep_client import WhepViewer

NEST = 3
ROOT = Path(__file__).resolve().parents[2]
FAST = LivenessSettings(connect_timeout_s=4.0, silence_timeout_s=3.0, check_interval_s=0.5)


# the verdict ----------------------------------------------------------------------------------------
def seen(
    open_s: float = 30.0, connected: bool = True, silent_s: float = 0.0, units: int = 0
) -> PeerObservation:
    return PeerObservation(
        open_s=open_s, connected=connected, silent_s=silent_s, units_sent_while_silent=units
    )


def test_a_viewer_that_never_connects_is_gone_after_the_connect_timeout() -> None:
    s = LivenessSettings(connect_timeout_s=15.0)
    assert lost_reason(seen(open_s=14.9, connected=False), s) is None
    reason = lost_reason(seen(open_s=15.0, connected=False), s)
    assert reason == "the viewer did not connect within 15 s (ICE/DTLS)"


def test_a_silent_viewer_is_gone_only_while_video_was_sent_to_it() -> None:
    s = LivenessSettings(silence_timeout_s=10.0)
    assert lost_reason(seen(silent_s=9.9, units=300), s) is None
    assert lost_reason(seen(silent_s=60.0, units=0), s) is None  # the camera paused: nothing to report on
    reason = lost_reason(seen(silent_s=10.0, units=300), s)
    assert reason == "the viewer sent no receiver report for 10 s while 300 video frames were sent to it"


def test_liveness_settings_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LivenessSettings(silence_timeout_s=0.0)


# against the service ----------------------------------------------------------------------------------
def fast_liveness(video: VideoSystem) -> None:
    video.app[SESSIONS].liveness = FAST


async def test_a_killed_viewer_is_dropped_and_the_ingest_stops(video: VideoSystem) -> None:
    fast_liveness(video)
    await video.launch(NEST)
    url = str(video.client.make_url("/"))
    viewer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.video.viewer_process", url, str(NEST), "observer-token",
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert viewer.stdout is not None
        async with asyncio.timeout(60):
            line = (await viewer.stdout.readline()).decode()
        assert line.startswith("watching /whep/nests/3/sessions/"), line
        session_id = line.split("/")[-1].strip()
        sessions = video.app[SESSIONS]
        assert session_id in sessions.sessions and video.hub.subscriber_count(NEST) == 1
        viewer.send_signal(signal.SIGKILL)  # gone without DELETE, without a DTLS close
        await viewer.wait()
    finally:
        if viewer.returncode is None:
            viewer.kill()
            await viewer.wait()
    await wait_until(lambda: session_id not in sessions.sessions, 20.0, "the session closed")
    [reason] = [r for s, r in sessions.ended if s == session_id]
    assert reason.startswith("the viewer sent no receiver report for "), reason
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0, "the ingest stopped")
    await wait_until(lambda: not video.system.world.nest(NEST).camera.streaming, 10.0, "the camera stopped")


async def test_a_watching_viewer_is_kept(video: VideoSystem) -> None:
    fast_liveness(video)
    await video.launch(NEST)
    viewer = WhepViewer(video.client, "observer-token")
    await viewer.connect(NEST)
    await viewer.wait_pictures(10)
    [session] = video.app[SESSIONS].sessions.values()
    # open for three silence timeouts, watching all along: it reports, so it stays
    watched = len(viewer.pictures)
    await wait_until(
        lambda: (
            time.monotonic() - session.opened_mono_s > 3 * FAST.silence_timeout_s
            or session.session_id not in video.app[SESSIONS].sessions
        ),
        30.0,
        "three silence timeouts",
    )
    assert session.session_id in video.app[SESSIONS].sessions, video.app[SESSIONS].ended
    await viewer.wait_pictures(watched + 30)
    assert await viewer.leave() == 200
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0, "the ingest stopped")


async def test_a_viewer_whose_ice_never_completes_is_dropped(video: VideoSystem) -> None:
    fast_liveness(video)
    await video.launch(NEST)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    await pc.close()  # its candidates now lead nowhere: the service's checks go unanswered
    resp = await video.client.post(
        f"/whep/nests/{NEST}",
        data=offer,
        headers={"Content-Type": "application/sdp", "Authorization": "Bearer observer-token"},
    )
    assert resp.status == 201, await resp.text()
    session_id = resp.headers["Location"].split("/")[-1]
    sessions = video.app[SESSIONS]
    assert video.hub.subscriber_count(NEST) == 1
    await wait_until(lambda: session_id not in sessions.sessions, 20.0, "the session closed")
    [reason] = [r for s, r in sessions.ended if s == session_id]
    assert reason in ("the viewer did not connect within 4 s (ICE/DTLS)", "the peer connection failed"), (
        reason
    )
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0, "the ingest stopped")


async def test_a_viewer_closing_its_connection_without_delete_is_dropped(video: VideoSystem) -> None:
    await video.launch(NEST)  # default liveness: the DTLS close itself ends the session
    viewer = WhepViewer(video.client, "observer-token")
    await viewer.connect(NEST)
    await viewer.wait_pictures(10)
    assert viewer.location is not None
    session_id = viewer.location.split("/")[-1]
    await viewer.close()  # no DELETE
    sessions = video.app[SESSIONS]
    await wait_until(lambda: session_id not in sessions.sessions, 10.0, "the session closed")
    [reason] = [r for s, r in sessions.ended if s == session_id]
    # aiortc's sender sees the DTLS close first, or the peer connection's state does
    assert reason.startswith(("the viewer's connection ended", "the peer connection closed")), reason
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0, "the ingest stopped")
