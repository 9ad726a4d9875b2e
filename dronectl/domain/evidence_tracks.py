"""Flight tracks for an evidence package (issue 16): GeoJSON (RFC 7946) and KML 2.2. Pure.

A track is the audit store's rows, in order: mappings with ``at_unix_s``, ``lat_deg``,
``lon_deg``, ``alt_m`` (above mean sea level). GeoJSON coordinates are [lon, lat, alt]; each
flight is one LineString feature with the times of its points; KML gives each flight a
``gx:Track`` (a point per time, absolute altitude) so Google Earth can play it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape


def _iso(at_unix_s: float) -> str:
    return datetime.fromtimestamp(at_unix_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tracks_geojson(flights: Sequence[tuple[str, int, Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """A FeatureCollection, one LineString per (flight id, nest id, track) with at least one point."""
    features = []
    for flight_id, nest_id, track in flights:
        if not track:
            continue
        coords = [[p["lon_deg"], p["lat_deg"], p["alt_m"]] for p in track]
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString" if len(coords) > 1 else "Point",
                    "coordinates": coords if len(coords) > 1 else coords[0],
                },
                "properties": {
                    "flight_id": flight_id,
                    "nest_id": nest_id,
                    "times": [_iso(p["at_unix_s"]) for p in track],
                    "alt_reference": "MSL",
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def tracks_kml(flights: Sequence[tuple[str, int, Sequence[Mapping[str, Any]]]], title: str) -> str:
    """A KML document, one Placemark with a ``gx:Track`` per flight with at least one point."""
    marks = []
    for flight_id, nest_id, track in flights:
        if not track:
            continue
        whens = "".join(f"<when>{_iso(p['at_unix_s'])}</when>" for p in track)
        coords = "".join(f"<gx:coord>{p['lon_deg']} {p['lat_deg']} {p['alt_m']}</gx:coord>" for p in track)
        marks.append(
            f"<Placemark><name>{escape(f'nest {nest_id} flight {flight_id}')}</name>"
            f"<gx:Track><altitudeMode>absolute</altitudeMode>{whens}{coords}</gx:Track></Placemark>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">'
        f"<Document><name>{escape(title)}</name>{''.join(marks)}</Document></kml>\n"
    )
