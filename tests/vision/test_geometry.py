"""Pixel <-> ground for the nadir camera, checked against the simulator's own projection."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.protocols import VideoEncoding, VideoStreamInfo, VideoTransport
from dronectl.automations.vision.geometry import (
    DEFAULT_OPTICS,
    CameraOptics,
    ground_sample_m,
    ground_to_pixel,
    pixel_to_ground,
)
from dronectl.domain.geo import GeoPoint, distance_m
from sitl.camera.render import CameraPose, Optics, _Projector
from tests.vision.scenes import EW_AVENUE_LAT, NS_AVENUE_LON, offset

CENTRE = GeoPoint(EW_AVENUE_LAT, NS_AVENUE_LON)


@pytest.mark.parametrize("height_m", [5.0, 30.0, 55.0, 80.0, 120.0])
def test_ground_sample_distance_is_the_simulated_cameras(height_m: float) -> None:
    assert ground_sample_m(height_m, 82.0, 1280) == pytest.approx(Optics().gsd_m(height_m), rel=1e-12)
    assert DEFAULT_OPTICS.gsd_m(height_m) == pytest.approx(Optics().gsd_m(height_m), rel=1e-12)
    # A picture scaled down to half the width has pixels twice as large.
    assert DEFAULT_OPTICS.gsd_m(height_m, 640) == pytest.approx(2 * Optics().gsd_m(height_m))


@pytest.mark.parametrize("heading_deg", [0.0, 37.0, 90.0, 181.5, 300.0])
@pytest.mark.parametrize("height_m", [30.0, 80.0])
def test_a_pixel_maps_where_the_renderer_drew_that_ground(heading_deg: float, height_m: float) -> None:
    """Points around the drone, projected by the renderer, come back to within a few centimetres."""
    optics = Optics()
    projector = _Projector(CameraPose(CENTRE.lat_deg, CENTRE.lon_deg, height_m, heading_deg, 0.0), optics)
    gsd = ground_sample_m(height_m, optics.hfov_deg, optics.width_px)
    for east_m, north_m in [(0.0, 0.0), (20.0, 0.0), (0.0, -15.0), (-25.0, 12.0), (31.0, 17.0)]:
        point = offset(CENTRE, east_m, north_m)
        x, y = (float(v) for v in projector.px(np.array([point.lat_deg, point.lon_deg])))
        back = pixel_to_ground(x, y, optics.width_px, optics.height_px, gsd, heading_deg, CENTRE)
        # The renderer rounds to whole pixels (half a pixel's diagonal) and takes the earth as
        # flat with round figures for a degree (0.2 % of the distance; geo is WGS84 geodesics).
        far_m = float(np.hypot(east_m, north_m))
        assert distance_m(back, point) < 0.75 * gsd + 0.002 * far_m
        fx, fy = ground_to_pixel(point, optics.width_px, optics.height_px, gsd, heading_deg, CENTRE)
        assert np.hypot(fx - x, fy - y) <= 0.75 + 0.002 * far_m / gsd


def test_the_top_of_the_picture_is_the_heading() -> None:
    gsd = DEFAULT_OPTICS.gsd_m(40.0)
    ahead = pixel_to_ground(640.0, 0.0, 1280, 720, gsd, 90.0, CENTRE)  # heading east: top is east
    assert ahead.lon_deg > CENTRE.lon_deg
    assert distance_m(ahead, CENTRE) == pytest.approx(360 * gsd, rel=1e-3)
    right = pixel_to_ground(1280.0, 360.0, 1280, 720, gsd, 90.0, CENTRE)  # right of east is south
    assert right.lat_deg < CENTRE.lat_deg
    assert distance_m(pixel_to_ground(640.0, 360.0, 1280, 720, gsd, 123.0, CENTRE), CENTRE) < 1e-6


def test_optics_come_from_the_stream_information_else_the_default() -> None:
    info = VideoStreamInfo(1, "nadir", VideoTransport.RTP_UDP, VideoEncoding.H264, "udp://0.0.0.0:5603",
                           1920, 1080, 30.0, 4_000_000, 70)  # fmt: skip
    optics = CameraOptics.from_stream(info)
    assert (optics.width_px, optics.height_px, optics.hfov_deg) == (1920, 1080, 70.0)
    assert CameraOptics.from_stream(None) == DEFAULT_OPTICS == CameraOptics(1280, 720, 82.0)
    blank = VideoStreamInfo(1, "nadir", VideoTransport.RTP_UDP, VideoEncoding.H264, "", 0, 0, 0.0, 0, 0)
    assert CameraOptics.from_stream(blank) == DEFAULT_OPTICS


@pytest.mark.parametrize(
    ("height_m", "hfov_deg", "width_px"), [(0.0, 82.0, 1280), (-3.0, 82.0, 1280), (40.0, 180.0, 1280),
                                           (40.0, 0.0, 1280), (40.0, 82.0, 0), (float("nan"), 82.0, 1280)]
)  # fmt: skip
def test_impossible_optics_are_refused(height_m: float, hfov_deg: float, width_px: int) -> None:
    with pytest.raises(ValueError):
        ground_sample_m(height_m, hfov_deg, width_px)


def test_a_non_positive_ground_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="ground sample"):
        pixel_to_ground(1.0, 1.0, 1280, 720, 0.0, 0.0, CENTRE)
