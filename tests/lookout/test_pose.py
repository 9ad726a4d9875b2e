"""The camera's pose at a frame's capture time: position interpolated from the track, heading
from the orbit's centre or the last movement."""

from __future__ import annotations

import pytest

from dronectl.automations.lookout.pose import MAX_GAP_S, PoseSample, PoseTrack, camera_pose
from dronectl.domain.geo import GeoPoint, bearing_deg, destination, distance_m

START = GeoPoint(43.86, 125.31)


def flown(bearing: float, speed_mps: float, seconds: int, t0: float = 1000.0) -> PoseTrack:
    track = PoseTrack()
    for i in range(seconds + 1):
        track.add(PoseSample(t0 + i, destination(START, bearing, speed_mps * i), 60.0))
    return track


def test_position_is_interpolated_at_the_capture_time() -> None:
    track = flown(90.0, 10.0, 10)
    pose = track.at(1004.5)
    assert pose is not None
    assert distance_m(pose.position, destination(START, 90.0, 45.0)) < 0.05
    assert pose.height_m == 60.0


def test_no_position_far_from_the_track() -> None:
    track = flown(90.0, 10.0, 10)
    assert track.at(1010.0 + MAX_GAP_S + 0.1) is None
    assert track.at(1000.0 - MAX_GAP_S - 0.1) is None
    assert PoseTrack().at(1000.0) is None


def test_heading_is_the_direction_of_travel_and_kept_when_hovering() -> None:
    track = flown(30.0, 5.0, 10)
    end = destination(START, 30.0, 50.0)
    for i in range(1, 20):  # then it hovers (centimetres of drift)
        track.add(PoseSample(1010.0 + i, destination(end, 200.0, 0.01 * (i % 3)), 60.0))
    pose = camera_pose(track, 1025.0, None)
    assert pose is not None and pose.heading_deg == pytest.approx(30.0, abs=0.5)


def test_heading_faces_the_orbit_centre() -> None:
    centre = destination(START, 0.0, 60.0)
    track = flown(90.0, 5.0, 4)
    pose = camera_pose(track, 1002.0, centre)
    assert pose is not None
    assert pose.heading_deg == pytest.approx(bearing_deg(pose.centre, centre), abs=0.01)
    assert pose.heading_deg == pytest.approx(350.5, abs=1.0)  # north, a little back west


def test_no_heading_before_any_movement_unless_seeded() -> None:
    track = PoseTrack()
    for i in range(5):
        track.add(PoseSample(1000.0 + i, START, 60.0))
    assert camera_pose(track, 1002.0, None) is None
    track.seed_heading(370.0)
    pose = camera_pose(track, 1002.0, None)
    assert pose is not None and pose.heading_deg == pytest.approx(10.0)


def test_out_of_order_samples_are_ignored() -> None:
    track = flown(90.0, 10.0, 3)
    track.add(PoseSample(999.0, destination(START, 180.0, 500.0), 60.0))
    assert len(track) == 4
    pose = track.at(1000.0)
    assert pose is not None and distance_m(pose.position, START) < 0.01


def test_measured_heading_wins_over_the_inferred_one() -> None:
    # flying east, but the telemetry says the nose points 300 (e.g. yawed by the pilot)
    track = PoseTrack()
    for i in range(6):
        track.add(PoseSample(1000.0 + i, destination(START, 90.0, 5.0 * i), 60.0, 300.0))
    pose = camera_pose(track, 1002.5, None)
    assert pose is not None and pose.heading_measured
    assert pose.heading_deg == pytest.approx(300.0)
    centre = destination(START, 0.0, 60.0)  # and in an orbit: not the bearing to the centre either
    pose = camera_pose(track, 1002.5, centre)
    assert pose is not None and pose.heading_measured
    assert pose.heading_deg == pytest.approx(300.0)


def test_measured_heading_is_interpolated_the_short_way_round() -> None:
    track = PoseTrack()
    track.add(PoseSample(1000.0, START, 60.0, 350.0))
    track.add(PoseSample(1001.0, START, 60.0, 10.0))
    pose = camera_pose(track, 1000.5, None)
    assert pose is not None and pose.heading_deg == pytest.approx(0.0, abs=1e-6)
    pose = camera_pose(track, 1000.75, None)
    assert pose is not None and pose.heading_deg == pytest.approx(5.0)


def test_without_a_measured_heading_it_is_inferred() -> None:
    # the samples do not carry a heading (an autopilot that does not say): direction of travel
    track = flown(30.0, 5.0, 10)
    pose = camera_pose(track, 1005.0, None)
    assert pose is not None and not pose.heading_measured
    assert pose.heading_deg == pytest.approx(30.0, abs=0.5)


def test_one_sample_without_heading_takes_its_neighbours() -> None:
    track = PoseTrack()
    track.add(PoseSample(1000.0, START, 60.0, 120.0))
    track.add(PoseSample(1001.0, destination(START, 0.0, 5.0), 60.0, None))
    pose = camera_pose(track, 1000.5, None)
    assert pose is not None and pose.heading_measured and pose.heading_deg == pytest.approx(120.0)
