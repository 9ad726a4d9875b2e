"""Where the camera was, and which way it looked, when it took a frame: pure, no I/O.

The camera hangs under the drone pointing straight down, the top of the picture towards the
drone's heading. The telemetry carries the heading the autopilot measures
(``adapters.protocols.Position.heading_deg``, GLOBAL_POSITION_INT's ``hdg``): when a sample has
it, that is the camera's heading. Where it is unknown (an autopilot that does not say), the
heading comes from how the drone is flown, which the service itself commands:

- in an orbit the adapter asks PX4 to keep its front to the circle's centre
  (``ORBIT_YAW_BEHAVIOUR_HOLD_FRONT_TO_CIRCLE_CENTER``): the heading is the bearing to the centre;
- otherwise (launch, go to, hold) a multicopter faces its direction of travel and keeps that
  heading when it stops: the bearing of its last movement of at least ``MIN_TRAVEL_M``.

Positions are kept with the wall-clock time they arrived (:class:`PoseTrack`), so a frame is
placed with the drone's position at the frame's capture time (the simulated camera stamps it in
the pixels), not with where the drone is when the decoded frame reaches us."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

from dronectl.domain.geo import GeoPoint, bearing_deg, distance_m, interpolate

MIN_TRAVEL_M = 1.0  # a movement shorter than this says nothing about the heading
TRACK_SAMPLES = 2000  # at 10 Hz: over 3 minutes of positions
MAX_GAP_S = 2.0  # a frame further than this from every position is not placed


@dataclass(frozen=True)
class PoseSample:
    at_unix_s: float
    position: GeoPoint
    height_m: float  # above the nest's pad (the ground, for a nadir camera over flat city)
    heading_deg: float | None = None  # measured by the autopilot; None when it does not say


@dataclass(frozen=True)
class CameraPose:
    centre: GeoPoint
    height_m: float
    heading_deg: float
    heading_measured: bool = False  # from the telemetry, not inferred from the flight


class PoseTrack:
    """The drone's recent positions, in the order they arrived."""

    def __init__(self, max_samples: int = TRACK_SAMPLES) -> None:
        self._samples: deque[PoseSample] = deque(maxlen=max_samples)
        self._heading_deg: float | None = None  # of the last movement of MIN_TRAVEL_M or more
        self._moved_from: PoseSample | None = None

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def travel_heading_deg(self) -> float | None:
        return self._heading_deg

    def seed_heading(self, heading_deg: float) -> None:
        """The heading to assume until the drone is seen moving (e.g. the way it flew out)."""
        if self._heading_deg is None:
            self._heading_deg = heading_deg % 360.0

    def add(self, sample: PoseSample) -> None:
        if self._samples and sample.at_unix_s < self._samples[-1].at_unix_s:
            return  # out of order: keep the track sorted
        self._samples.append(sample)
        if self._moved_from is None:
            self._moved_from = sample
        elif distance_m(self._moved_from.position, sample.position) >= MIN_TRAVEL_M:
            self._heading_deg = bearing_deg(self._moved_from.position, sample.position)
            self._moved_from = sample

    def at(self, t_unix_s: float) -> PoseSample | None:
        """The position at ``t_unix_s``, interpolated between the samples around it; None when
        the track does not reach within MAX_GAP_S of that time."""
        samples = self._samples
        if not samples:
            return None
        times = [s.at_unix_s for s in samples]
        i = bisect.bisect_left(times, t_unix_s)
        if i == 0:
            first = samples[0]
            return first if first.at_unix_s - t_unix_s <= MAX_GAP_S else None
        if i == len(samples):
            last = samples[-1]
            return last if t_unix_s - last.at_unix_s <= MAX_GAP_S else None
        before, after = samples[i - 1], samples[i]
        span_s = after.at_unix_s - before.at_unix_s
        if span_s > 2 * MAX_GAP_S:
            return None
        f = 0.0 if span_s <= 0 else (t_unix_s - before.at_unix_s) / span_s
        return PoseSample(
            t_unix_s,
            interpolate(before.position, after.position, f),
            before.height_m + (after.height_m - before.height_m) * f,
            _heading_between(before.heading_deg, after.heading_deg, f),
        )

    def heading_at(self, t_unix_s: float) -> float | None:
        """Bearing of the last movement of MIN_TRAVEL_M or more before ``t_unix_s``."""
        anchor: PoseSample | None = None
        for sample in reversed(self._samples):
            if sample.at_unix_s > t_unix_s:
                continue
            if anchor is None:
                anchor = sample
            elif distance_m(sample.position, anchor.position) >= MIN_TRAVEL_M:
                return bearing_deg(sample.position, anchor.position)
        return self._heading_deg if anchor is not None else None  # hovering since before the window


def _heading_between(before: float | None, after: float | None, f: float) -> float | None:
    """The heading a fraction ``f`` of the way from ``before`` to ``after``, the short way round;
    the one that is known when only one is."""
    if before is None or after is None:
        return before if after is None else after
    turn = (after - before + 180.0) % 360.0 - 180.0
    return (before + turn * f) % 360.0


def camera_pose(track: PoseTrack, t_unix_s: float, orbit_centre: GeoPoint | None) -> CameraPose | None:
    """The camera's pose at ``t_unix_s``: the measured heading when the telemetry has it, else
    inferred (orbit centre, direction of travel); None when it cannot be known (no position near
    that time, or no heading yet)."""
    sample = track.at(t_unix_s)
    if sample is None:
        return None
    if sample.heading_deg is not None:
        return CameraPose(sample.position, sample.height_m, sample.heading_deg % 360.0, heading_measured=True)
    heading: float | None
    if orbit_centre is not None and distance_m(sample.position, orbit_centre) >= MIN_TRAVEL_M:
        heading = bearing_deg(sample.position, orbit_centre)
    else:
        heading = track.heading_at(t_unix_s)
    if heading is None:
        return None
    return CameraPose(sample.position, sample.height_m, heading % 360.0)
