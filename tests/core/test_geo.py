"""Geodesy and airspace: geographiclib distances, exact path/zone intersections."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dronectl.domain.config import load_config
from dronectl.domain.geo import (
    Airspace,
    GeoPoint,
    LocalProjection,
    ViolationKind,
    Zone,
    bearing_deg,
    destination,
    distance_m,
    distance_to_segment_m,
    interpolate,
    segment_distance_m,
    short_distance_m,
)

PEOPLES_SQUARE = GeoPoint(43.88590, 125.32450)
NANHU = GeoPoint(43.85420, 125.29870)
AIRSPACE = load_config().airspace()

# points in and around Changchun
lat = st.floats(43.70, 44.10)
lon = st.floats(125.05, 125.60)
points = st.builds(GeoPoint, lat, lon)


def test_distance_and_bearing_known_values() -> None:
    # one degree of latitude at 44 N is ~111.1 km on WGS84
    assert distance_m(GeoPoint(43.5, 125.0), GeoPoint(44.5, 125.0)) == pytest.approx(111_141, abs=50)
    assert bearing_deg(GeoPoint(43.5, 125.0), GeoPoint(44.5, 125.0)) == pytest.approx(0.0, abs=1e-9)
    assert bearing_deg(PEOPLES_SQUARE, NANHU) == pytest.approx(210.5, abs=0.1)  # south-west
    assert distance_m(PEOPLES_SQUARE, NANHU) == pytest.approx(4087.36, abs=0.01)


def test_geopoint_rejects_impossible_coordinates() -> None:
    with pytest.raises(ValueError, match="latitude"):
        GeoPoint(91.0, 0.0)
    with pytest.raises(ValueError, match="longitude"):
        GeoPoint(0.0, 181.0)
    with pytest.raises(ValueError, match="latitude"):
        GeoPoint(math.nan, 0.0)


@given(points, st.floats(0.0, 359.99), st.floats(1.0, 30_000.0))
def test_destination_inverts_distance_and_bearing(start: GeoPoint, bearing: float, dist: float) -> None:
    end = destination(start, bearing, dist)
    assert distance_m(start, end) == pytest.approx(dist, rel=1e-9, abs=1e-6)
    diff = (bearing_deg(start, end) - bearing + 180.0) % 360.0 - 180.0
    assert abs(diff) < 1e-6


@given(points, points, st.floats(0.0, 1.0))
def test_interpolation_lies_on_the_geodesic(a: GeoPoint, b: GeoPoint, f: float) -> None:
    p = interpolate(a, b, f)
    total = distance_m(a, b)
    assert distance_m(a, p) == pytest.approx(f * total, abs=1e-3)
    assert distance_m(a, p) + distance_m(p, b) == pytest.approx(total, abs=1e-3)


@given(points)
def test_projection_round_trip_and_exact_centre_distance(p: GeoPoint) -> None:
    proj = LocalProjection(PEOPLES_SQUARE)
    x, y = proj.to_xy(p)
    assert math.hypot(x, y) == pytest.approx(distance_m(PEOPLES_SQUARE, p), abs=1e-6)
    back = proj.to_geo(x, y)
    assert distance_m(back, p) < 1e-4


@given(points, points, st.floats(0.0, 1.0), st.floats(-2000.0, 2000.0))
def test_point_to_segment_distance_matches_geodesic_offset(
    a: GeoPoint, b: GeoPoint, f: float, offset: float
) -> None:
    """A point pushed ``offset`` metres sideways from a point of the path is |offset| from it
    (when its foot lies within the segment), to within the projection's centimetres."""
    length = distance_m(a, b)
    if length < 5000.0:
        return
    on = interpolate(a, b, f)
    side = (bearing_deg(on, b) + 90.0) % 360.0 if f < 1.0 else (bearing_deg(a, b) + 90.0) % 360.0
    p = destination(on, side, abs(offset)) if offset >= 0 else destination(on, (side + 180) % 360, -offset)
    foot_inside = 0.05 < f < 0.95
    d = distance_to_segment_m(p, a, b)
    if foot_inside:
        assert d == pytest.approx(abs(offset), abs=0.5)
    assert d <= abs(offset) + 0.5  # never farther than to the point it was offset from


def test_point_to_segment_beyond_the_ends_is_distance_to_the_end() -> None:
    end = destination(PEOPLES_SQUARE, 0.0, 1000.0)
    beyond = destination(PEOPLES_SQUARE, 0.0, 1500.0)
    assert distance_to_segment_m(beyond, PEOPLES_SQUARE, end) == pytest.approx(500.0, abs=0.05)
    behind = destination(PEOPLES_SQUARE, 180.0, 300.0)
    assert distance_to_segment_m(behind, PEOPLES_SQUARE, end) == pytest.approx(300.0, abs=0.05)
    assert distance_to_segment_m(behind, PEOPLES_SQUARE, PEOPLES_SQUARE) == pytest.approx(300.0, abs=0.05)


def test_crossing_paths_have_zero_separation() -> None:
    a0, a1 = destination(PEOPLES_SQUARE, 0, 1000), destination(PEOPLES_SQUARE, 180, 1000)
    b0, b1 = destination(PEOPLES_SQUARE, 90, 1000), destination(PEOPLES_SQUARE, 270, 1000)
    assert segment_distance_m(a0, a1, b0, b1) == pytest.approx(0.0, abs=1e-6)
    c0, c1 = destination(b0, 0, 400), destination(b1, 0, 400)  # parallel, 400 m north of b
    assert segment_distance_m(c0, c1, b0, b1) == pytest.approx(400.0, abs=0.5)


# --- airspace on the shipped Changchun config -------------------------------------------------


def test_every_nest_is_inside_the_geofence_and_outside_no_fly_zones() -> None:
    for nest in load_config().nests:
        p = GeoPoint(nest.lat, nest.lon)
        assert AIRSPACE.contains(p), nest.name
        assert AIRSPACE.zone_at(p) is None, nest.name


def test_zone_at_names_the_zone() -> None:
    zone = AIRSPACE.zone_at(GeoPoint(43.905, 125.21))
    assert zone is not None and zone.name == "Dafangshen airfield"
    zone = AIRSPACE.zone_at(GeoPoint(43.892, 125.331))
    assert zone is not None and zone.name == "Provincial government compound"
    assert AIRSPACE.zone_at(GeoPoint(43.889, 125.331)) is None  # 170 m south of the compound


def test_outside_geofence() -> None:
    assert not AIRSPACE.contains(GeoPoint(44.05, 125.30))
    assert not AIRSPACE.contains(GeoPoint(43.90, 125.60))
    assert AIRSPACE.contains(GeoPoint(43.90, 125.30))


def test_path_through_the_compound_is_found_with_its_entry_distance() -> None:
    start, end = GeoPoint(43.885, 125.331), GeoPoint(43.900, 125.331)
    found = AIRSPACE.path_violations(start, end)
    assert [v.zone_name for v in found] == ["Provincial government compound"]
    assert found[0].kind is ViolationKind.ENTERS_NO_FLY
    entry = GeoPoint(43.8905, 125.331)
    assert found[0].at_distance_m == pytest.approx(distance_m(start, entry), abs=0.5)


def test_path_clipping_a_zone_corner_that_sampling_would_miss() -> None:
    # a path passing 3 m inside the compound's south-east corner: a 50 m sampling step skips it
    corner = GeoPoint(43.8905, 125.3340)
    inside = destination(destination(corner, 0.0, 3.0), 270.0, 3.0)
    start = destination(inside, 225.0, 2000.0)
    end = destination(inside, 45.0, 2000.0)
    violation = AIRSPACE.path_violation(start, end)
    assert violation is not None and violation.zone_name == "Provincial government compound"
    # the same path shifted 20 m south-east misses it
    start2, end2 = destination(start, 135.0, 20.0), destination(end, 135.0, 20.0)
    assert AIRSPACE.path_violation(start2, end2) is None


def test_path_leaving_a_concave_geofence_with_both_ends_inside() -> None:
    # a U-shaped operating area: the path across the notch leaves it
    fence = Zone(
        "U",
        tuple(
            GeoPoint(a, b)
            for a, b in [
                (0, 0),
                (0, 0.03),
                (0.03, 0.03),
                (0.03, 0.02),
                (0.01, 0.02),
                (0.01, 0.01),
                (0.03, 0.01),
                (0.03, 0),
            ]
        ),
    )
    airspace = Airspace(fence)
    a, b = GeoPoint(0.02, 0.005), GeoPoint(0.02, 0.025)
    assert airspace.contains(a) and airspace.contains(b)
    v = airspace.path_violation(a, b)
    assert v is not None and v.kind is ViolationKind.LEAVES_GEOFENCE
    assert v.at_distance_m == pytest.approx(distance_m(a, GeoPoint(0.02, 0.01)), abs=1.0)
    assert airspace.path_violation(GeoPoint(0.005, 0.005), GeoPoint(0.005, 0.025)) is None


def test_violations_are_ordered_along_the_path() -> None:
    start, end = GeoPoint(43.885, 125.331), GeoPoint(44.1, 125.331)
    kinds = [v.kind for v in AIRSPACE.path_violations(start, end)]
    assert kinds == [ViolationKind.ENTERS_NO_FLY, ViolationKind.LEAVES_GEOFENCE]
    assert AIRSPACE.path_violations(end, start)[0].kind is ViolationKind.LEAVES_GEOFENCE


def test_orbit_circle_checks() -> None:
    near_compound = GeoPoint(43.8880, 125.3315)  # ~280 m south of it
    assert AIRSPACE.circle_violations(near_compound, 100.0) == ()
    hits = AIRSPACE.circle_violations(near_compound, 400.0)
    assert [v.zone_name for v in hits] == ["Provincial government compound"]
    edge = GeoPoint(44.005, 125.30)  # 560 m from the northern fence
    assert AIRSPACE.circle_violations(edge, 300.0) == ()
    assert AIRSPACE.circle_violations(edge, 800.0)[0].kind is ViolationKind.LEAVES_GEOFENCE


@settings(max_examples=30, deadline=None)
@given(points, points)
def test_path_violation_agrees_with_dense_sampling(a: GeoPoint, b: GeoPoint) -> None:
    """Every zone dense sampling of the geodesic finds, the exact test finds too."""
    exact = {v.zone_name for v in AIRSPACE.path_violations(a, b) if v.kind is ViolationKind.ENTERS_NO_FLY}
    n = max(2, int(distance_m(a, b) / 40.0))
    sampled = {z.name for i in range(n + 1) if (z := AIRSPACE.zone_at(interpolate(a, b, i / n))) is not None}
    assert sampled <= exact


def test_invalid_polygon_is_refused() -> None:
    bow_tie = Zone("bow tie", (GeoPoint(0, 0), GeoPoint(0.01, 0.01), GeoPoint(0, 0.01), GeoPoint(0.01, 0)))
    with pytest.raises(ValueError, match="bow tie"):
        Airspace(bow_tie)


def test_short_distances_on_the_tangent_plane_are_the_geodesics() -> None:
    """Successive samples of a flight (issue 15: the speed from each position) are measured on the
    tangent plane: within 1e-6 relative (or a millimetre) of the geodesic up to 1 km, at any
    latitude a city may lie at, across the antimeridian too."""
    rng = random.Random(15)
    for _ in range(2000):
        a = GeoPoint(rng.uniform(-70.0, 70.0), rng.uniform(-180.0, 180.0))
        b = destination(a, rng.uniform(0.0, 360.0), rng.choice((0.0, 0.3, 5.0, 60.0, 400.0, 1000.0)))
        exact, flat = distance_m(a, b), short_distance_m(a, b)
        assert abs(flat - exact) <= max(1e-3, 1e-6 * exact), (a, b, exact, flat)
