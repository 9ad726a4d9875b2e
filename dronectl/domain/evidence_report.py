"""The evidence package's readable report (issue 16): one self-contained HTML page, nothing
loaded from anywhere: the incident, an inline SVG of the tracks, and the timeline as a table.
Pure; every text from the audit store is escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

SVG_W, SVG_H, PAD = 640, 420, 20
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")


def _utc(at_unix_s: float) -> str:
    return datetime.fromtimestamp(at_unix_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def tracks_svg(flights: Sequence[tuple[str, int, Sequence[Mapping[str, Any]]]]) -> str:
    """The tracks drawn north up, equal scale both ways (local equirectangular), in an SVG."""
    points = [(p["lon_deg"], p["lat_deg"]) for _f, _n, track in flights for p in track]
    if not points:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>'
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    k = math.cos(math.radians(sum(lats) / len(lats)))
    span = max((max(lons) - min(lons)) * k, max(lats) - min(lats), 1e-6)
    scale = min(SVG_W - 2 * PAD, SVG_H - 2 * PAD) / span

    def xy(lon: float, lat: float) -> str:
        return f"{PAD + (lon - min(lons)) * k * scale:.1f},{SVG_H - PAD - (lat - min(lats)) * scale:.1f}"

    lines = []
    for i, (flight_id, nest_id, track) in enumerate(flights):
        if not track:
            continue
        colour = COLOURS[i % len(COLOURS)]
        pts = " ".join(xy(p["lon_deg"], p["lat_deg"]) for p in track)
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}">'
            f"<title>{escape(f'nest {nest_id}, flight {flight_id}')}</title></polyline>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_W}" height="{SVG_H}" '
        f'style="background:#f4f4f4">{"".join(lines)}</svg>'
    )


def report_html(
    incident: Mapping[str, Any],
    timeline: Sequence[Mapping[str, Any]],
    flights: Sequence[tuple[str, int, Sequence[Mapping[str, Any]]]],
) -> str:
    """The page: ``incident`` (the audit store's command row), the timeline's entries, the tracks."""
    rows = []
    for e in timeline:
        who = e.get("actor") or {}
        actor = f"{who.get('id', '')} ({who.get('role', '')})" if who else ""
        what = e.get("method") or e.get("outcome") or e.get("kind") or e.get("to_state") or ""
        text = e.get("message") or e.get("cause") or e.get("code") or ""
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{escape(str(v))}</td>"
                for v in (_utc(e["at_unix_s"]), e["what"], e.get("nest_id") or "", what, actor, text)
            )
            + "</tr>"
        )
    title = f"Incident {incident['command_id']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>body{{font-family:sans-serif}}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}table{border-collapse:collapse}</style>"
        f"</head><body><h1>{escape(title)}</h1>"
        f"<p>Reported {escape(_utc(incident['at_unix_s']))} by {escape(str(incident['actor_id']))}"
        f" ({escape(str(incident['actor_role']))}).</p><h2>Tracks</h2>{tracks_svg(flights)}"
        "<h2>Timeline</h2><table><tr><th>time</th><th>record</th><th>nest</th><th>what</th>"
        f"<th>actor</th><th>detail</th></tr>{''.join(rows)}</table></body></html>\n"
    )
