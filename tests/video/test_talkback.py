"""Talk-back: a viewer's microphone in its WHEP session reaches the drone's loudspeaker, and the
session is in the audit store with its actor, start, end and duration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from dronectl.audit import AuditStore
from dronectl.audit.rows import CommandRow
from dronectl.transports.whep.routes import SESSIONS
from dronectl.video.talkback import CLIP_IDS, SAMPLE_RATE_HZ
from tests.adapters.fake_peer import wait_until
from tests.video.conftest import VideoSystem
from tests.video.whep_client import ToneTrack, WhepViewer, dominant_frequency_hz

NEST = 3


async def test_microphone_audio_is_played_on_the_loudspeaker(video: VideoSystem) -> None:
    await video.launch(NEST)
    viewer = WhepViewer(video.client, "pilot-token")
    await viewer.connect(NEST, audio=ToneTrack(frequency_hz=440.0))
    [session] = video.app[SESSIONS].sessions.values()
    assert session.talkback is not None
    payload = video.system.world.nest(NEST).payload

    talkback = session.talkback
    await wait_until(
        lambda: payload.clip(CLIP_IDS[0]) is not None and talkback.stats.clips_sent >= 1, 20.0, "a clip"
    )
    clip = payload.clip(CLIP_IDS[0])
    assert clip is not None and clip.sample_rate_hz == SAMPLE_RATE_HZ
    assert 1.5 < clip.samples / clip.sample_rate_hz <= 2.0
    assert abs(dominant_frequency_hz(clip.pcm, clip.sample_rate_hz) - 440.0) < 10.0
    played = [r for r in video.system.world.nest(NEST).ctx.recorder.all() if r.kind == "speaker.clip"]
    assert played and played[0].data["clip_id"] == CLIP_IDS[0]
    await viewer.wait_pictures(10)  # and the video flows in the same session
    assert await viewer.leave() == 200


async def test_a_talk_back_session_is_audited_with_its_actor_and_duration(video: VideoSystem) -> None:
    audit = video.system.fleet.audit
    await video.launch(NEST)
    viewer = WhepViewer(video.client, "pilot-token")
    connected_s = time.time()
    await viewer.connect(NEST, audio=ToneTrack(frequency_hz=440.0))
    [session] = video.app[SESSIONS].sessions.values()
    command_id = f"talkback-{session.session_id}"
    talkback = session.talkback
    assert talkback is not None

    # recorded as it starts: the actor, the nest, the session; accepted, not yet over
    [row] = await _talk_rows(audit, lambda rows: len(rows) == 1, "the talk-back recorded as started")
    assert (row["command_id"], row["actor_id"], row["actor_role"]) == (command_id, "pilot", "pilot")
    assert row["args"] == {"session": session.session_id}
    assert [o["outcome"] for o in row["outcomes"]] == ["accepted"]
    assert connected_s - 1.0 <= row["at_unix_s"] <= time.time()

    await wait_until(lambda: talkback.stats.clips_sent >= 1, 20.0, "a clip played")
    assert await viewer.leave() == 200

    [row] = await _talk_rows(audit, lambda rows: len(rows[0]["outcomes"]) == 2, "the end recorded")
    first, last = row["outcomes"]
    assert (first["outcome"], last["outcome"]) == ("accepted", "succeeded")
    duration_s = last["at_unix_s"] - first["at_unix_s"]
    assert 1.5 <= duration_s <= time.time() - connected_s  # it ran for at least one 2 s clip
    assert last["message"] is not None
    assert f"talk-back over after {duration_s:.1f} s" in last["message"]
    assert f"{talkback.stats.clips_sent} clip(s) played" in last["message"]

    # and on the flight's record: who talked, from when to when
    [flight] = await audit.open_flights(nest_id=NEST)
    detail = await audit.flight(flight["flight_id"])
    assert detail is not None
    [event] = [e for e in detail["events"] if e["kind"] == "talkback"]
    data = event["data"]
    assert data is not None
    assert (data["actor_id"], data["actor_role"], data["command_id"]) == ("pilot", "pilot", command_id)
    assert (data["started_at_unix_s"], data["ended_at_unix_s"]) == (first["at_unix_s"], last["at_unix_s"])
    assert abs(data["duration_s"] - duration_s) < 0.01
    assert data["clips_sent"] == talkback.stats.clips_sent


async def test_a_viewer_without_a_microphone_leaves_no_talk_back_record(video: VideoSystem) -> None:
    await video.launch(NEST)
    viewer = WhepViewer(video.client, "pilot-token")
    await viewer.connect(NEST)
    await viewer.wait_pictures(10)
    assert await viewer.leave() == 200
    await wait_until(lambda: not video.hub.ingest_running(NEST), 10.0, "the ingest stopped")
    commands = await video.system.fleet.audit.commands(nest_id=NEST)
    assert [c["method"] for c in commands if c["method"] == "talkback"] == []


async def _talk_rows(
    audit: AuditStore, done: Callable[[list[CommandRow]], bool], what: str, timeout_s: float = 20.0
) -> list[CommandRow]:
    """The nest's talk-back rows in the audit store, once ``done`` holds for them."""
    rows: list[CommandRow] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                rows = [c for c in await audit.commands(nest_id=NEST) if c["method"] == "talkback"]
                if rows and done(rows):
                    return rows
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}: {rows}") from None
