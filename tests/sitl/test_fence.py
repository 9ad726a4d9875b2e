"""Geofence evaluation with Changchun coordinates, as PX4's navigator evaluates fence plans."""

from __future__ import annotations

import random

import pytest
from shapely.geometry import Point, Polygon

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.fence import distance_m, fence_shapes, fence_violation, shapes_excluding_home
from sitl.autopilot.mission import FENCE, MissionItem
from sitl.environment import GeoPoint, LocalFrame

HOME = GeoPoint(43.8802, 125.3215, 215.0)  # a nest in Changchun
FRAME = LocalFrame(HOME)

POLY_IN = mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
POLY_OUT = mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION
CIRCLE_IN = mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
CIRCLE_OUT = mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION
RETURN_POINT = mav.MAV_CMD_NAV_FENCE_RETURN_POINT


def _geo(north_m: float, east_m: float) -> tuple[float, float]:
    p = FRAME.to_geo(north_m, east_m, 0.0)
    return p.lat_deg, p.lon_deg


def _item(seq: int, command: int, north_m: float, east_m: float, param1: float) -> MissionItem:
    lat, lon = _geo(north_m, east_m)
    return MissionItem(
        seq=seq, frame=mav.MAV_FRAME_GLOBAL_INT, command=command, param1=param1, param2=0.0,
        param3=0.0, param4=0.0, x=round(lat * 1e7), y=round(lon * 1e7), z=0.0, autocontinue=0,
        mission_type=FENCE,
    )  # fmt: skip


class Plan:
    def __init__(self) -> None:
        self.items: list[MissionItem] = []

    def polygon(self, command: int, corners: list[tuple[float, float]]) -> Plan:
        for north, east in corners:
            self.items.append(_item(len(self.items), command, north, east, float(len(corners))))
        return self

    def circle(self, command: int, north_m: float, east_m: float, radius_m: float) -> Plan:
        self.items.append(_item(len(self.items), command, north_m, east_m, radius_m))
        return self

    def item(self, command: int, north_m: float, east_m: float, param1: float = 0.0) -> Plan:
        self.items.append(_item(len(self.items), command, north_m, east_m, param1))
        return self


def violation(
    plan: Plan, north_m: float, east_m: float, height_m: float = 30.0, **limits: float
) -> str | None:
    lat, lon = _geo(north_m, east_m)
    return fence_violation(plan.items, lat, lon, HOME.alt_amsl_m + height_m, HOME, **limits)


SQUARE_1KM = [(-500.0, -500.0), (-500.0, 500.0), (500.0, 500.0), (500.0, -500.0)]


def test_empty_fence_allows_everything() -> None:
    assert violation(Plan(), 50_000.0, -50_000.0) is None


def test_inclusion_polygon() -> None:
    plan = Plan().polygon(POLY_IN, SQUARE_1KM)
    assert violation(plan, 0.0, 0.0) is None
    assert violation(plan, 490.0, -490.0) is None
    assert violation(plan, 510.0, 0.0) == "outside inclusion polygon 1"
    assert violation(plan, 0.0, -520.0) == "outside inclusion polygon 1"


def test_concave_polygon_notch_is_outside() -> None:
    # an L: the north-east quarter is cut away
    corners = [(-500.0, -500.0), (500.0, -500.0), (500.0, 0.0), (0.0, 0.0), (0.0, 500.0), (-500.0, 500.0)]
    plan = Plan().polygon(POLY_IN, corners)
    assert violation(plan, -250.0, 250.0) is None
    assert violation(plan, 250.0, -250.0) is None
    assert violation(plan, 250.0, 250.0) == "outside inclusion polygon 1"


def test_exclusion_shapes_are_numbered_by_kind() -> None:
    plan = (
        Plan()
        .polygon(POLY_IN, [(-3000.0, -3000.0), (-3000.0, 3000.0), (3000.0, 3000.0), (3000.0, -3000.0)])
        .circle(CIRCLE_OUT, 1000.0, 0.0, 100.0)  # exclusion circle 1
        .polygon(POLY_OUT, [(-1200.0, 800.0), (-1200.0, 1200.0), (-800.0, 1200.0), (-800.0, 800.0)])
        .circle(CIRCLE_OUT, 0.0, 2000.0, 200.0)  # exclusion circle 2
    )
    assert violation(plan, 0.0, 0.0) is None
    assert violation(plan, 1000.0, 50.0) == "inside exclusion circle 1"
    assert violation(plan, -1000.0, 1000.0) == "inside exclusion polygon 1"
    assert violation(plan, 100.0, 2000.0) == "inside exclusion circle 2"
    assert violation(plan, 3500.0, 0.0) == "outside inclusion polygon 1"


def test_circle_radius_is_in_metres() -> None:
    plan = Plan().circle(CIRCLE_IN, 0.0, 0.0, 300.0)
    assert violation(plan, 290.0, 0.0) is None
    assert violation(plan, 0.0, -290.0) is None
    assert violation(plan, 0.0, 310.0) == "outside inclusion circle 1"
    lat, lon = _geo(0.0, 300.0)
    assert distance_m(HOME.lat_deg, HOME.lon_deg, lat, lon) == pytest.approx(300.0, rel=0.005)


def test_every_inclusion_must_hold() -> None:
    # PX4 main combines all shapes with AND: two overlapping inclusion circles leave their lens
    plan = Plan().circle(CIRCLE_IN, 0.0, 0.0, 500.0).circle(CIRCLE_IN, 0.0, 400.0, 500.0)
    assert violation(plan, 0.0, 300.0) is None
    assert violation(plan, 0.0, -300.0) == "outside inclusion circle 2"


def test_shape_without_home_is_discarded() -> None:
    plan = Plan().circle(CIRCLE_OUT, 0.0, 0.0, 50.0).polygon(POLY_IN, SQUARE_1KM)
    (bad,) = shapes_excluding_home(plan.items, HOME)
    assert bad.name == "exclusion circle 1"
    assert violation(plan, 10.0, 0.0) is None  # the exclusion around home never triggers
    assert violation(plan, 600.0, 0.0) == "outside inclusion polygon 1"


def test_return_point_and_other_items_are_not_boundaries() -> None:
    plan = Plan().item(RETURN_POINT, 5000.0, 5000.0).polygon(POLY_IN, SQUARE_1KM)
    plan.item(mav.MAV_CMD_NAV_WAYPOINT, 9000.0, 0.0)
    shapes = fence_shapes(plan.items)
    assert [(s.kind, s.inclusion, s.first_seq) for s in shapes] == [("polygon", True, 1)]
    assert violation(plan, 0.0, 0.0) is None


def test_polygons_are_walked_by_their_vertex_count() -> None:
    plan = Plan().polygon(POLY_IN, SQUARE_1KM).polygon(POLY_OUT, [(0.0, 0.0), (0.0, 100.0), (100.0, 50.0)])
    shapes = fence_shapes(plan.items)
    assert [(s.name, len(s.vertices)) for s in shapes] == [
        ("inclusion polygon 1", 4),
        ("exclusion polygon 1", 3),
    ]
    # a vertex count larger than what follows: PX4's read past the end fails -> "outside"
    truncated = Plan().polygon(POLY_IN, SQUARE_1KM)
    truncated.items = [
        MissionItem(**{**item.__dict__, "param1": 5.0}) for item in truncated.items
    ]  # fmt: skip
    (shape,) = fence_shapes(truncated.items)
    assert not shape.complete
    lat, lon = _geo(0.0, 0.0)
    assert not shape.contains(lat, lon)


def test_distance_and_height_limits() -> None:
    plan = Plan()
    assert violation(plan, 900.0, 0.0, max_hor_dist_m=1000.0) is None
    reason = violation(plan, 0.0, 1100.0, max_hor_dist_m=1000.0)
    assert reason is not None and "from home" in reason
    assert violation(plan, 0.0, 0.0, height_m=110.0, max_ver_dist_m=120.0) is None
    reason = violation(plan, 0.0, 0.0, height_m=125.0, max_ver_dist_m=120.0)
    assert reason is not None and "above home" in reason


def test_polygon_test_agrees_with_shapely() -> None:
    rng = random.Random(7)
    corners = [
        (-800.0, -600.0),
        (-200.0, 900.0),
        (700.0, 800.0),
        (300.0, 100.0),
        (900.0, -700.0),
        (0.0, -200.0),
    ]
    plan = Plan().polygon(POLY_IN, corners)
    shape = Polygon([(lon, lat) for lat, lon in (_geo(n, e) for n, e in corners)])
    (fence,) = fence_shapes(plan.items)
    checked = 0
    for _ in range(2000):
        lat, lon = _geo(rng.uniform(-1000, 1000), rng.uniform(-1000, 1000))
        point = Point(lon, lat)
        if shape.exterior.distance(point) < 1e-7:
            continue  # on the boundary the two may legitimately differ
        assert fence.contains(lat, lon) == shape.contains(point)
        checked += 1
    assert checked > 1900
