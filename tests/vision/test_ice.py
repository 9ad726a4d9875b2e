"""Ice in frames drawn by the simulator's renderer: found where the IceStretch lies, and never
on snow, plain roads, white cars or markings."""

from __future__ import annotations

import numpy as np
import pytest

from dronectl.automations.vision.geometry import DEFAULT_OPTICS, pixel_to_ground
from dronectl.automations.vision.ice import IceFinding, find_ice
from dronectl.domain.geo import GeoPoint, distance_m, distance_to_segment_m
from sitl.camera.render import SUMMER, WINTER
from sitl.camera.scene import IceStretch, SceneSnapshot
from tests.vision.scenes import EW_AVENUE_LAT, NS_AVENUE_LON, Image, ew_ice, h264_round_trip, offset, render

W, H = DEFAULT_OPTICS.width_px, DEFAULT_OPTICS.height_px
# An icy 90 m of the E-W avenue, east of the N-S avenue's junction.
STRETCH = ew_ice(NS_AVENUE_LON + 0.0002, NS_AVENUE_LON + 0.0013)
STRETCH_MID = GeoPoint(EW_AVENUE_LAT, NS_AVENUE_LON + 0.00075)
# A short icy patch on a N-S street (lon 125.3055 is a street: index 83537).
STREET_PATCH = IceStretch(EW_AVENUE_LAT + 0.0004, 125.3055, EW_AVENUE_LAT + 0.0006, 125.3055, 8.0)


def _ground(finding: IceFinding, centre: GeoPoint, height_m: float, heading_deg: float) -> GeoPoint:
    assert finding.centroid_px is not None
    x, y = finding.centroid_px
    return pixel_to_ground(x, y, W, H, DEFAULT_OPTICS.gsd_m(height_m), heading_deg, centre)


def _on_stretch_m(point: GeoPoint, stretch: IceStretch) -> float:
    return distance_to_segment_m(
        point,
        GeoPoint(stretch.start_lat_deg, stretch.start_lon_deg),
        GeoPoint(stretch.end_lat_deg, stretch.end_lon_deg),
    )


@pytest.mark.parametrize("winter", [False, True])
@pytest.mark.parametrize(
    ("height_m", "heading_deg", "east_m", "north_m"),
    [(30.0, 0.0, 4.0, 6.0), (40.0, 75.0, -10.0, -8.0), (55.0, 200.0, 12.0, 10.0), (80.0, 300.0, -20.0, 15.0)],
)
def test_ice_is_found_where_the_stretch_lies(
    winter: bool, height_m: float, heading_deg: float, east_m: float, north_m: float
) -> None:
    centre = offset(STRETCH_MID, east_m, north_m)  # the drone a little off the stretch
    scene = SceneSnapshot(ice=(STRETCH,), winter=winter)
    frame = render(centre, height_m, heading_deg, scene)
    finding = find_ice(frame, gsd_m=DEFAULT_OPTICS.gsd_m(height_m))
    assert finding.found, finding
    assert finding.coverage_pct > 5.0
    at = _ground(finding, centre, height_m, heading_deg)
    # The centroid of what is in view lies on the stretch's centre line (cars skid on it, so it
    # shifts a little), never at the drone: the drone is 7-25 m off the stretch here.
    assert _on_stretch_m(at, STRETCH) < 2.0, (at, finding)
    assert distance_m(at, centre) > 0.5 * abs(north_m)
    assert finding.bbox_px is not None
    x, y, w, h = finding.bbox_px
    assert x <= finding.centroid_px[0] <= x + w and y <= finding.centroid_px[1] <= y + h  # type: ignore[index]
    # Without the ground sample distance, the same answer.
    assert find_ice(frame).found


@pytest.mark.parametrize("height_m", [30.0, 60.0])
def test_a_short_patch_on_a_street_is_placed_within_metres(height_m: float) -> None:
    patch_mid = GeoPoint(EW_AVENUE_LAT + 0.0005, 125.3055)
    centre = offset(patch_mid, -9.0, 5.0)
    frame = render(centre, height_m, 40.0, SceneSnapshot(ice=(STREET_PATCH,), winter=True))
    finding = find_ice(frame, gsd_m=DEFAULT_OPTICS.gsd_m(height_m))
    assert finding.found
    assert distance_m(_ground(finding, centre, height_m, 40.0), patch_mid) < 3.0


@pytest.mark.parametrize("winter", [False, True])
def test_ice_survives_the_cameras_h264(winter: bool) -> None:
    centre = offset(STRETCH_MID, 6.0, -9.0)
    frames = [render(centre, 50.0, 20.0, SceneSnapshot(ice=(STRETCH,), winter=winter), sim_time_s=t)
              for t in (100.0, 100.5)]  # fmt: skip
    frames.append(render(centre, 50.0, 20.0, SceneSnapshot(winter=winter), sim_time_s=101.0))
    decoded = h264_round_trip(frames)
    assert len(decoded) == 3
    gsd = DEFAULT_OPTICS.gsd_m(50.0)
    for frame in decoded[:2]:
        finding = find_ice(frame, gsd_m=gsd)
        assert finding.found
        assert _on_stretch_m(_ground(finding, centre, 50.0, 20.0), STRETCH) < 2.0
    assert not find_ice(decoded[2], gsd_m=gsd).found


def _has(frame: Image, colour: tuple[int, int, int], at_least_px: int) -> bool:
    return int(np.all(frame == np.array(colour, dtype=np.uint8), axis=2).sum()) >= at_least_px


# Places with a lot of white: the avenue junction (markings, white cars), a block of roofs, streets.
PLACES = [
    GeoPoint(EW_AVENUE_LAT, NS_AVENUE_LON),
    GeoPoint(EW_AVENUE_LAT + 0.00055, NS_AVENUE_LON + 0.00075),
    GeoPoint(EW_AVENUE_LAT - 0.0011, NS_AVENUE_LON + 0.0015),
    GeoPoint(EW_AVENUE_LAT + 0.0030, NS_AVENUE_LON - 0.0042),
]


@pytest.mark.parametrize("winter", [False, True])
@pytest.mark.parametrize("height_m", [30.0, 50.0, 80.0])
def test_no_ice_on_snow_roads_white_cars_or_markings(winter: bool, height_m: float) -> None:
    gsd = DEFAULT_OPTICS.gsd_m(height_m)
    white_car_seen = marking_seen = False
    for i, place in enumerate(PLACES):
        for t in (500.0, 503.0):
            frame = render(place, height_m, 35.0 * i, SceneSnapshot(winter=winter), sim_time_s=t)
            white_car_seen |= _has(frame, SUMMER.cars[0], 200)
            marking_seen |= _has(frame, (WINTER if winter else SUMMER).marking, 50)
            assert find_ice(frame, gsd_m=gsd) == IceFinding(False, 0.0, None, None), (place, t)
            assert not find_ice(frame).found
    assert white_car_seen and marking_seen  # the test saw what it claims to


def test_snow_through_h264_is_not_ice() -> None:
    frames = [render(place, 40.0, 10.0, SceneSnapshot(winter=True)) for place in PLACES]
    for frame in h264_round_trip(frames):
        assert not find_ice(frame).found


def test_a_patch_smaller_than_a_car_is_not_ice() -> None:
    speck = IceStretch(EW_AVENUE_LAT, 125.3052, EW_AVENUE_LAT, 125.30521, 1.5)  # ~1 x 2.5 m
    frame = render(GeoPoint(EW_AVENUE_LAT, 125.3052), 30.0, 0.0, SceneSnapshot(ice=(speck,), winter=True))
    assert _has(frame, (238, 214, 190), 500)  # drawn, and seen as sheen by the eye
    assert not find_ice(frame, gsd_m=DEFAULT_OPTICS.gsd_m(30.0)).found


@pytest.mark.parametrize(
    "image",
    [np.zeros((720, 1280), np.uint8), np.zeros((720, 1280, 3), np.float32), np.zeros((4, 4, 3), np.uint8)],
)
def test_a_picture_it_cannot_read_is_refused(image: Image) -> None:
    with pytest.raises(ValueError):
        find_ice(image)


def test_a_non_positive_ground_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="ground sample"):
        find_ice(np.zeros((72, 128, 3), np.uint8), gsd_m=0.0)
