"""Consecutive frames make a finding; one frame, a gap or a jump does not; the same ice once."""

from __future__ import annotations

import pytest

from dronectl.automations.lookout.findings import Confirmer, Sighting
from dronectl.domain.geo import GeoPoint, destination

ICE = GeoPoint(43.8624, 125.3100)


def seen(offset_m: float = 0.0, t: float = 0.0, bearing: float = 90.0) -> Sighting:
    return Sighting(destination(ICE, bearing, offset_m), 3.0, 1000.0 + t)


def test_one_frame_is_not_a_finding_two_in_a_row_are() -> None:
    c = Confirmer()
    assert c.add(seen(0.0, 0.0)) is None
    confirmed = c.add(seen(4.0, 0.5))
    assert confirmed is not None and confirmed.capture_unix_s == 1000.5


def test_a_frame_without_ice_starts_again() -> None:
    c = Confirmer()
    assert c.add(seen()) is None
    assert c.add(None) is None
    assert c.add(seen(1.0, 1.0)) is None
    assert c.add(seen(2.0, 1.5)) is not None


def test_two_places_far_apart_are_not_the_same_ice() -> None:
    c = Confirmer(same_place_m=25.0)
    assert c.add(seen(0.0)) is None
    assert c.add(seen(40.0, 0.5)) is None  # a glare elsewhere: starts a new run
    assert c.streak == 1
    assert c.add(seen(45.0, 1.0)) is not None


def test_the_same_ice_is_reported_once_other_ice_again() -> None:
    c = Confirmer(repeat_radius_m=60.0)
    assert c.add(seen(0.0)) is None and c.add(seen(0.0, 0.5)) is not None
    assert c.add(seen(10.0, 1.0)) is None and c.add(seen(10.0, 1.5)) is None
    far = [seen(200.0, 2.0), seen(201.0, 2.5)]
    assert c.add(far[0]) is None and c.add(far[1]) is not None
    assert len(c.reported) == 2


def test_frames_needed_is_checked() -> None:
    with pytest.raises(ValueError):
        Confirmer(frames_needed=0)
    c = Confirmer(frames_needed=3)
    assert c.add(seen()) is None and c.add(seen()) is None and c.add(seen()) is not None
