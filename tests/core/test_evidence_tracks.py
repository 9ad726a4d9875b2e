"""Tracks as GeoJSON and KML (dronectl/domain/evidence_tracks.py): coordinates in each format's
order, the times kept, names escaped, flights without a point left out."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dronectl.domain.evidence_tracks import tracks_geojson, tracks_kml

T0 = 1_765_610_100.0  # 2025-12-13T07:15:00Z
TRACK = [
    {"at_unix_s": T0, "lat_deg": 43.86, "lon_deg": 125.30, "alt_m": 260.0},
    {"at_unix_s": T0 + 1.5, "lat_deg": 43.861, "lon_deg": 125.302, "alt_m": 300.0},
]
FLIGHTS = [("f-1", 7, TRACK), ("f-empty", 3, [])]
KML = "{http://www.opengis.net/kml/2.2}"
GX = "{http://www.google.com/kml/ext/2.2}"


def test_geojson_is_lon_lat_alt_with_times() -> None:
    doc = tracks_geojson(FLIGHTS)
    assert doc["type"] == "FeatureCollection"
    [feature] = doc["features"]
    assert feature["geometry"] == {
        "type": "LineString",
        "coordinates": [[125.30, 43.86, 260.0], [125.302, 43.861, 300.0]],
    }
    assert feature["properties"]["flight_id"] == "f-1"
    assert feature["properties"]["times"] == ["2025-12-13T07:15:00.000Z", "2025-12-13T07:15:01.500Z"]


def test_kml_parses_with_a_track_per_flight() -> None:
    root = ET.fromstring(tracks_kml(FLIGHTS, "incident <inc-1> & co").encode())
    doc = root.find(f"{KML}Document")
    assert doc is not None
    assert doc.findtext(f"{KML}name") == "incident <inc-1> & co"
    [mark] = doc.findall(f"{KML}Placemark")
    track = mark.find(f"{GX}Track")
    assert track is not None
    assert [w.text for w in track.findall(f"{KML}when")] == [
        "2025-12-13T07:15:00.000Z",
        "2025-12-13T07:15:01.500Z",
    ]
    assert [c.text for c in track.findall(f"{GX}coord")] == ["125.3 43.86 260.0", "125.302 43.861 300.0"]
