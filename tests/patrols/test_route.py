"""A road stretch as a route: positions by distance, waypoints, nearest point (geodesic)."""

from __future__ import annotations

import itertools

import pytest

from dronectl.domain.config import RoadStretchConfig, load_config
from dronectl.domain.geo import GeoPoint, bearing_deg, destination, distance_m, distance_to_segment_m
from dronectl.domain.patrols.route import Route, routes_of

# an L: 980 m north along a N-S avenue, then 480 m east
L_STRETCH = RoadStretchConfig(
    id="railway-station",
    name="Station approach",
    points=[(43.8988, 125.3220), (43.9076, 125.3220), (43.9076, 125.3280)],
)


def test_length_is_the_sum_of_the_geodesic_legs() -> None:
    route = Route.of(L_STRETCH)
    a, b, c = route.points
    assert route.length_m == pytest.approx(distance_m(a, b) + distance_m(b, c), abs=1e-6)
    assert 1400.0 < route.length_m < 1500.0
    assert route.offsets_m == pytest.approx((0.0, distance_m(a, b), route.length_m))


def test_point_at_walks_the_legs_and_clamps_at_the_ends() -> None:
    route = Route.of(L_STRETCH)
    a, corner, end = route.points
    assert route.point_at(0.0) == a
    assert route.point_at(-50.0) == a
    assert route.point_at(route.length_m + 50.0) == end
    first_leg = route.offsets_m[1]
    assert distance_m(route.point_at(first_leg), corner) < 1e-6
    mid = route.point_at(300.0)  # on the first leg, 300 m north of the start
    assert distance_m(a, mid) == pytest.approx(300.0, abs=1e-6)
    assert mid.lon_deg == pytest.approx(125.3220, abs=1e-9)
    beyond = route.point_at(first_leg + 100.0)  # 100 m east of the corner
    assert distance_m(corner, beyond) == pytest.approx(100.0, abs=1e-6)
    assert bearing_deg(corner, beyond) == pytest.approx(90.0, abs=0.1)
    with pytest.raises(ValueError, match="NaN"):
        route.point_at(float("nan"))


def test_heading_follows_the_road() -> None:
    route = Route.of(L_STRETCH)
    assert route.heading_deg_at(10.0) == pytest.approx(0.0, abs=0.1)
    assert route.heading_deg_at(route.offsets_m[1] + 10.0) == pytest.approx(90.0, abs=0.1)
    assert route.heading_deg_at(route.length_m) == pytest.approx(90.0, abs=0.1)


def test_waypoints_are_no_further_apart_than_the_spacing_and_keep_the_corner() -> None:
    route = Route.of(L_STRETCH)
    points = route.waypoints(200.0)
    assert points[0] == route.start and points[-1] == route.end
    assert route.points[1] in points
    gaps = [distance_m(p, q) for p, q in itertools.pairwise(points)]
    assert max(gaps) <= 200.0 + 1e-6
    assert sum(gaps) == pytest.approx(route.length_m, abs=1e-3)  # on the road, no corner cut
    # 980 m in legs of <= 200 m is 5 legs, 480 m is 3: 1 + 5 + 3 points
    assert len(points) == 9
    # every waypoint lies on the road
    for p in points:
        assert route.nearest(p)[1] < 0.01


def test_waypoints_spacing_longer_than_the_road_gives_its_vertices() -> None:
    route = Route.of(L_STRETCH)
    assert route.waypoints(10_000.0) == route.points
    with pytest.raises(ValueError, match="spacing_m must be positive"):
        route.waypoints(0.0)


def test_nearest_s_of_points_beside_the_road() -> None:
    route = Route.of(L_STRETCH)
    for s in (0.0, 123.4, 700.0, route.offsets_m[1] + 50.0, route.length_m):
        on_road = route.point_at(s)
        # 30 m off the road, square to it (west of the first leg, north of the second)
        off = destination(on_road, 270.0 if s < route.offsets_m[1] else 0.0, 30.0)
        s_found, away = route.nearest(off)
        assert s_found == pytest.approx(s, abs=0.05)
        assert away == pytest.approx(30.0, abs=0.05)
        assert route.nearest_s(off) == s_found


def test_nearest_of_a_point_past_the_end_is_the_end() -> None:
    route = Route.of(L_STRETCH)
    past = destination(route.end, 90.0, 200.0)
    s, away = route.nearest(past)
    assert s == pytest.approx(route.length_m, abs=1e-6)
    assert away == pytest.approx(200.0, abs=0.05)


def test_nearest_agrees_with_the_segment_distance_of_geo() -> None:
    route = Route.of(L_STRETCH)
    p = GeoPoint(43.9040, 125.3250)
    _, away = route.nearest(p)
    expected = min(distance_to_segment_m(p, a, b) for a, b in itertools.pairwise(route.points))
    assert away == pytest.approx(expected, abs=1e-3)


def test_reversed_route_flies_the_other_way() -> None:
    route = Route.of(L_STRETCH)
    back = route.reversed()
    assert back.start == route.end and back.end == route.start
    assert back.length_m == pytest.approx(route.length_m, abs=1e-6)
    assert distance_m(back.point_at(100.0), route.point_at(route.length_m - 100.0)) < 0.01


def test_bad_routes_are_refused() -> None:
    p = GeoPoint(43.9, 125.3)
    with pytest.raises(ValueError, match="at least 2 points"):
        Route("x", (p,))
    with pytest.raises(ValueError, match="repeats the point"):
        Route("x", (p, p))


def test_every_shipped_stretch_becomes_a_route() -> None:
    config = load_config()
    routes = routes_of(config.patrols.stretches)
    assert set(routes) == {s.id for s in config.patrols.stretches}
    for route in routes.values():
        assert 500.0 <= route.length_m <= 2000.0
