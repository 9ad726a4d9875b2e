"""The evidence report (dronectl/domain/evidence_report.py): self-contained, every flight's track
drawn inside the picture, the timeline with actors, audit texts escaped."""

from __future__ import annotations

import re

from dronectl.domain.evidence_report import SVG_H, SVG_W, report_html

T0 = 1_765_610_100.0
TRACK = [{"at_unix_s": T0 + i, "lat_deg": 43.86 + i * 1e-3, "lon_deg": 125.3 + i * 2e-3} for i in range(4)]
INCIDENT = {"command_id": "inc-1", "at_unix_s": T0, "actor_id": "cc-<1>", "actor_role": "commander"}
TIMELINE = [
    {
        "at_unix_s": T0,
        "what": "command",
        "nest_id": 7,
        "method": "launch",
        "actor": {"id": "dispatcher", "role": "automation"},
    },
    {"at_unix_s": T0 + 1, "what": "event", "nest_id": 7, "kind": "incident.on_scene", "message": "<b>x</b>"},
]


def test_the_report_is_self_contained_with_tracks_and_timeline() -> None:
    page = report_html(INCIDENT, TIMELINE, [("f-1", 7, TRACK), ("f-2", 3, [])])
    assert "<script" not in page and "src=" not in page and "href=" not in page
    [points] = re.findall(r'points="([^"]+)"', page)
    xy = [tuple(map(float, p.split(","))) for p in points.split()]
    assert len(xy) == 4
    assert all(0 <= x <= SVG_W and 0 <= y <= SVG_H for x, y in xy)
    assert xy[-1][1] < xy[0][1]  # north is up: the track goes north-east
    assert "dispatcher (automation)" in page and "2025-12-13 07:15:00.000 UTC" in page
    assert "cc-&lt;1&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
