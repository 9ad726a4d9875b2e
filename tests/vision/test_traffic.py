"""Traffic read from frame sequences the simulator renders over an avenue, hovering."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import numpy as np
import pytest

from dronectl.automations.vision.geometry import DEFAULT_OPTICS
from dronectl.automations.vision.traffic import STOPPED_BELOW_MPS, TrafficEstimator, TrafficReading
from dronectl.domain.geo import GeoPoint
from sitl.camera.render import Renderer
from sitl.camera.scene import SceneSnapshot, SlowTraffic
from tests.vision.scenes import (
    EW_AVENUE_LAT,
    NS_AVENUE_LON,
    h264_round_trip,
    lane_speeds_in_view,
    offset,
    render,
)

# Mid-block on the E-W avenue (half-way between two N-S roads: no junction in view).
EW_SPOT = GeoPoint(EW_AVENUE_LAT, NS_AVENUE_LON + 0.00075)
# Mid-block on the N-S avenue.
NS_SPOT = GeoPoint(EW_AVENUE_LAT + 0.00055, NS_AVENUE_LON)
T0_S = 2000.0

Drift = Callable[[float], tuple[float, float]]  # seconds -> (east_m, north_m) of the drone


def _hover(
    spot: GeoPoint,
    height_m: float,
    heading_deg: float,
    scene: SceneSnapshot,
    fps: float,
    seconds: float = 8.0,
    drift: Drift | None = None,
) -> tuple[TrafficReading, list[float]]:
    """Hover over ``spot`` feeding frames at ``fps``; the reading and the true speed of every car
    seen in every other frame."""
    estimator = TrafficEstimator(DEFAULT_OPTICS.gsd_m(height_m))
    renderer = Renderer()
    truth: list[float] = []
    for k in range(round(seconds * fps) + 1):
        t = T0_S + k / fps
        centre = offset(spot, *drift(t - T0_S)) if drift else spot
        estimator.add(render(centre, height_m, heading_deg, scene, t, renderer), t)
        if k % 2 == 0:  # every other frame is enough of a sample, and halves the test's time
            truth += lane_speeds_in_view(centre, height_m, heading_deg, t, scene)
    reading = estimator.reading()
    assert reading is not None
    return reading, truth


def _jam(spot: GeoPoint, factor: float) -> SceneSnapshot:
    return SceneSnapshot(slow_traffic=(SlowTraffic(spot.lat_deg, spot.lon_deg, 200.0, factor),))


@pytest.mark.parametrize(
    ("spot", "height_m", "heading_deg", "fps", "factor", "winter"),
    [
        (EW_SPOT, 40.0, 0.0, 2.0, 0.15, False),
        (EW_SPOT, 40.0, 30.0, 4.0, 0.1, False),
        (NS_SPOT, 60.0, 110.0, 2.0, 0.2, False),
        (EW_SPOT, 40.0, 0.0, 2.0, 0.15, True),  # snow: white kerbs, light roofs, grey asphalt
        (NS_SPOT, 50.0, 45.0, 3.0, 0.15, True),
    ],
)
def test_a_slow_zone_reads_slower_and_denser_than_normal_traffic(
    spot: GeoPoint, height_m: float, heading_deg: float, fps: float, factor: float, winter: bool
) -> None:
    jam = _jam(spot, factor)
    normal, normal_truth = _hover(spot, height_m, heading_deg, SceneSnapshot(winter=winter), fps)
    slow, slow_truth = _hover(
        spot, height_m, heading_deg, SceneSnapshot(slow_traffic=jam.slow_traffic, winter=winter), fps
    )
    sampled = round(8.0 * fps) // 2 + 1  # frames whose cars are in the truth
    # Speeds within a reasonable tolerance of the lanes' (avenue: 13 m/s x 0.8..1.2).
    assert normal.mean_speed_mps is not None and slow.mean_speed_mps is not None
    assert normal.mean_speed_mps == pytest.approx(statistics.fmean(normal_truth), rel=0.12)
    assert slow.mean_speed_mps == pytest.approx(statistics.fmean(slow_truth), rel=0.25)
    assert slow.mean_speed_mps < 0.35 * normal.mean_speed_mps
    # Vehicles in view: within a third of the truth (queued cars touch and are counted by length).
    assert normal.vehicles == pytest.approx(len(normal_truth) / sampled, rel=0.35, abs=1.5)
    assert slow.vehicles == pytest.approx(len(slow_truth) / sampled, rel=0.35)
    assert slow.density_veh_per_km > 3.0 * normal.density_veh_per_km
    # The same road in view both times; at 40 m a 24 m avenue across a 70 m view is ~480 m of lane
    # (a queue along a snowy kerb takes a little of it: the carriageway is found around vehicles).
    assert slow.lane_length_m == pytest.approx(normal.lane_length_m, rel=0.15)
    assert normal.density_veh_per_km == pytest.approx(1000 * normal.vehicles / normal.lane_length_m, rel=0.1)
    assert normal.stopped_fraction < 0.05 and slow.stopped_fraction < 0.1  # slow, not stopped
    assert normal.window_s == pytest.approx(8.0)


def test_standing_traffic_reads_as_stopped() -> None:
    reading, truth = _hover(EW_SPOT, 40.0, 0.0, _jam(EW_SPOT, 0.02), 2.0)
    assert max(truth) < STOPPED_BELOW_MPS  # 2 % of 11-16 m/s
    assert reading.mean_speed_mps is not None and reading.mean_speed_mps < STOPPED_BELOW_MPS
    assert reading.stopped_fraction > 0.8
    assert reading.vehicles > 20


def _wobble(t_s: float) -> tuple[float, float]:
    """A drone holding position in gusts: up to ~1.5 m off, drifting at up to ~1 m/s."""
    east_m = 1.2 * math.sin(0.7 * t_s) + 0.3 * math.sin(2.3 * t_s)
    north_m = 0.9 * math.cos(0.5 * t_s) - 0.4 * math.sin(1.9 * t_s)
    return east_m, north_m


def test_the_drones_drift_is_taken_off() -> None:
    normal, truth = _hover(EW_SPOT, 40.0, 20.0, SceneSnapshot(), 2.0, drift=_wobble)
    assert normal.mean_speed_mps == pytest.approx(statistics.fmean(truth), rel=0.12)
    standing, _ = _hover(EW_SPOT, 40.0, 20.0, _jam(EW_SPOT, 0.02), 2.0, drift=_wobble)
    assert standing.mean_speed_mps is not None and standing.mean_speed_mps < STOPPED_BELOW_MPS
    assert standing.stopped_fraction > 0.7


def test_traffic_through_the_cameras_h264() -> None:
    scenes = {"normal": SceneSnapshot(), "slow": _jam(EW_SPOT, 0.15)}
    readings: dict[str, TrafficReading] = {}
    for name, scene in scenes.items():
        frames = [render(EW_SPOT, 40.0, 0.0, scene, T0_S + k / 2.0) for k in range(13)]
        estimator = TrafficEstimator(DEFAULT_OPTICS.gsd_m(40.0))
        for k, frame in enumerate(h264_round_trip(frames, fps=2, bitrate_bps=1_000_000)):
            estimator.add(frame, k / 2.0)
        reading = estimator.reading()
        assert reading is not None and reading.mean_speed_mps is not None
        readings[name] = reading
    assert 10.0 < readings["normal"].mean_speed_mps < 16.0  # type: ignore[operator]
    assert readings["slow"].mean_speed_mps < 0.35 * readings["normal"].mean_speed_mps  # type: ignore[operator]
    assert readings["slow"].density_veh_per_km > 3.0 * readings["normal"].density_veh_per_km


def test_no_road_in_view_reads_no_traffic() -> None:
    block = GeoPoint(EW_AVENUE_LAT + 0.00055, NS_AVENUE_LON + 0.00075)  # over a block's roofs
    estimator = TrafficEstimator(DEFAULT_OPTICS.gsd_m(25.0))
    for k in range(4):
        estimator.add(render(block, 25.0, 0.0, SceneSnapshot(), T0_S + k), float(k))
    reading = estimator.reading()
    assert reading is not None
    assert (reading.vehicles, reading.mean_speed_mps, reading.stopped_fraction) == (0, None, 0.0)


def test_a_reading_needs_three_frames_and_covers_the_window() -> None:
    estimator = TrafficEstimator(DEFAULT_OPTICS.gsd_m(40.0), window_s=4.0)
    for k in range(2):
        estimator.add(render(EW_SPOT, 40.0, 0.0, SceneSnapshot(), T0_S + k), float(k))
        assert estimator.reading() is None
    for k in range(2, 9):
        estimator.add(render(EW_SPOT, 40.0, 0.0, SceneSnapshot(), T0_S + k), float(k))
    reading = estimator.reading()
    assert reading is not None and reading.window_s == pytest.approx(4.0)


def test_bad_input_is_refused_and_changes_nothing() -> None:
    with pytest.raises(ValueError, match="ground sample"):
        TrafficEstimator(0.0)
    estimator = TrafficEstimator(DEFAULT_OPTICS.gsd_m(40.0))
    frame = render(EW_SPOT, 40.0, 0.0, SceneSnapshot(), T0_S)
    for k in range(3):
        estimator.add(render(EW_SPOT, 40.0, 0.0, SceneSnapshot(), T0_S + k / 2), k / 2)
    before = estimator.reading()
    with pytest.raises(ValueError, match="not after"):
        estimator.add(frame, 0.5)
    with pytest.raises(ValueError, match="not a number"):
        estimator.add(frame, float("nan"))
    with pytest.raises(ValueError, match="BGR"):
        estimator.add(np.zeros((720, 1280), np.uint8), 5.0)
    assert estimator.reading() == before
