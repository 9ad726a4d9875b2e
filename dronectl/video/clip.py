"""A stretch of a recording copied to a new file without re-encoding (PyAV stream copy).

The clip starts at the last keyframe at or before ``start_s`` (a picture before it cannot be
decoded without it) and ends with the last packet before ``end_s``; times are re-based to 0.
Packets are taken in decode order, as the recordings are written (pts = dts, no B-frames:
video_file.py). Blocking: run it in a worker thread.
"""

from __future__ import annotations

from pathlib import Path

import av


def cut(source: Path, target: Path, start_s: float, end_s: float) -> tuple[float, float]:
    """Copy [start_s, end_s) of ``source``'s video to ``target``; returns the (from, to) seconds
    of ``source`` the clip really covers. ValueError when no picture falls in the window or the
    file cannot be read as video."""
    try:
        return _cut(source, target, start_s, end_s)
    except av.FFmpegError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _cut(source: Path, target: Path, start_s: float, end_s: float) -> tuple[float, float]:
    with av.open(str(source)) as inp:
        stream = inp.streams.video[0]
        base = stream.time_base
        if base is None:
            raise ValueError(f"{source}: its video has no time base")
        kept: list[av.Packet] = []
        for packet in inp.demux(stream):
            if packet.pts is None or packet.dts is None:
                continue
            at_s = float(packet.pts * base)
            if at_s >= end_s:
                break
            if packet.is_keyframe and at_s <= start_s:
                kept = []
            if kept or packet.is_keyframe:
                kept.append(packet)
        if not kept or max(p.pts or 0 for p in kept) * base < start_s:
            raise ValueError(f"{source}: no picture between {start_s:.1f} s and {end_s:.1f} s")
        first = kept[0]
        assert first.pts is not None and first.dts is not None
        offset = min(first.pts, first.dts)
        from_s = float(first.pts * base)
        last_s = float(max(p.pts or 0 for p in kept) * base)
        with av.open(str(target), "w", format="mp4") as out:
            copy = out.add_stream_from_template(stream)
            for packet in kept:
                assert packet.pts is not None and packet.dts is not None
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = copy
                out.mux(packet)
        return from_s, last_s
