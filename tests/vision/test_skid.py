"""The simulator draws cars on an icy stretch skidding: yawed off their lane, deterministically."""

from __future__ import annotations

import numpy as np

from dronectl.domain.geo import GeoPoint
from sitl.camera.city import BLOCK_LAT_DEG, EAST_WEST, Road, cars_on, lanes_of
from sitl.camera.render import _skid_yaw_deg
from sitl.camera.scene import SceneSnapshot
from tests.vision.scenes import EW_AVENUE_LAT, NS_AVENUE_LON, ew_ice, render

ICE = ew_ice(NS_AVENUE_LON + 0.0002, NS_AVENUE_LON + 0.0013, width_m=10.0)  # the avenue's middle 10 m


def _avenue_cars(t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    road = Road(EAST_WEST, round(EW_AVENUE_LAT / BLOCK_LAT_DEG))
    s0 = road.s_of(EW_AVENUE_LAT, NS_AVENUE_LON)
    cars = [c for lane in lanes_of(road) for c in cars_on(lane, s0, s0 + 150.0, t_s, ())]
    return (
        np.array([c.lat_deg for c in cars]),
        np.array([c.lon_deg for c in cars]),
        np.array([c.seed for c in cars], dtype=np.uint64),
    )


def test_cars_on_ice_skid_and_the_others_do_not() -> None:
    lat, lon, seeds = _avenue_cars(500.0)
    yaw = _skid_yaw_deg(lat, lon, seeds, (ICE,))
    on_ice = (
        (np.abs(lat - EW_AVENUE_LAT) * 111_132.0 <= 5.0)
        & (lon >= ICE.start_lon_deg)
        & (lon <= ICE.end_lon_deg)
    )
    assert on_ice.sum() >= 4 and (~on_ice).sum() >= 4  # inner lanes are on the ice, outer ones not
    assert np.all(yaw[~on_ice] == 0.0)
    assert np.all((np.abs(yaw[on_ice]) >= 12.0) & (np.abs(yaw[on_ice]) <= 35.0))
    assert (yaw[on_ice] > 0).any() and (yaw[on_ice] < 0).any()  # either way, by the car's hash
    # The same car skids the same way in every frame.
    assert np.array_equal(yaw, _skid_yaw_deg(lat, lon, seeds, (ICE,)))
    assert not _skid_yaw_deg(lat, lon, seeds, ()).any()


def test_frames_with_ice_stay_deterministic() -> None:
    spot = GeoPoint(EW_AVENUE_LAT, NS_AVENUE_LON + 0.00075)
    scene = SceneSnapshot(ice=(ICE,), winter=True)
    first = render(spot, 40.0, 15.0, scene, 700.0)
    again = render(spot, 40.0, 15.0, scene, 700.0)
    assert np.array_equal(first, again)
