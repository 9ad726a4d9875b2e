"""Talk-back: a viewer's microphone in its WHEP session reaches the drone's loudspeaker."""

from __future__ import annotations

from dronectl.video.routes import SESSIONS
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
