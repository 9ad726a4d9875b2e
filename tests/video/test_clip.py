"""dronectl/video/clip.py: a window of a recording copied without re-encoding starts at the
keyframe before the window and holds the window's pictures, byte for byte the source's packets."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dronectl.video.clip import cut

FPS = 10


def write_recording(path: Path, seconds: int) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(
            "libx264", rate=FPS, options={"g": str(FPS), "keyint_min": str(FPS), "bf": "0"}
        )
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(seconds * FPS):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 3 % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _packets(path: Path) -> list[tuple[bytes, bool]]:
    with av.open(str(path)) as inp:
        return [(bytes(p), p.is_keyframe) for p in inp.demux(inp.streams.video[0]) if p.size]


def test_a_window_is_copied_from_the_keyframe_before_it(tmp_path: Path) -> None:
    source, clip = tmp_path / "rec.mp4", tmp_path / "clip.mp4"
    write_recording(source, 4)
    from_s, to_s = cut(source, clip, 1.5, 2.5)
    assert from_s == pytest.approx(1.0)
    assert 2.3 <= to_s < 2.5
    got, whole = _packets(clip), _packets(source)
    assert got[0][1]  # starts on a keyframe
    assert got == whole[FPS : FPS + len(got)]  # the source's own packets: nothing re-encoded
    assert len(got) == 15
    with av.open(str(clip)) as inp:
        assert sum(1 for _ in inp.decode(video=0)) == 15


def test_a_window_outside_the_recording_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "rec.mp4"
    write_recording(source, 2)
    with pytest.raises(ValueError, match="no picture"):
        cut(source, tmp_path / "clip.mp4", 10.0, 12.0)
