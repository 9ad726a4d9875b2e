"""Ice seen on the ground, and when a sighting counts as a finding: pure, no I/O.

One frame is not enough: a glare, a white lorry or a frame torn by packet loss can look like ice
for a frame. A sighting becomes a finding when ``frames_needed`` consecutive frames placed it
within ``same_place_m`` of each other (the drone moves between frames; the ice does not). A
frame without ice, or one that cannot be placed, starts the count again. Once a finding is
reported, another within ``repeat_radius_m`` of it is not reported again (the same stretch).
"""

from __future__ import annotations

from dataclasses import dataclass

from dronectl.domain.geo import GeoPoint, distance_m

FRAMES_NEEDED = 2
SAME_PLACE_M = 25.0
REPEAT_RADIUS_M = 60.0


@dataclass(frozen=True)
class Sighting:
    """Ice in one frame, placed on the ground (no picture: cheap to keep)."""

    position: GeoPoint
    coverage_pct: float
    capture_unix_s: float


@dataclass(frozen=True)
class GroundFinding:
    """Ice confirmed over consecutive frames: where, how much of the picture, when, and the
    picture (JPEG) of the last frame that saw it."""

    nest_id: int
    position: GeoPoint
    coverage_pct: float
    capture_unix_s: float
    jpeg: bytes
    width_px: int
    height_px: int
    frames: int  # how many consecutive frames saw it
    drone_position: GeoPoint
    drone_height_m: float
    heading_deg: float
    heading_measured: bool = False  # the autopilot's heading, not one inferred from the flight


class Confirmer:
    """Feeds on one frame's sighting (or None) at a time; says when it makes a finding."""

    def __init__(
        self,
        frames_needed: int = FRAMES_NEEDED,
        same_place_m: float = SAME_PLACE_M,
        repeat_radius_m: float = REPEAT_RADIUS_M,
    ) -> None:
        if frames_needed < 1:
            raise ValueError("frames_needed must be at least 1")
        self.frames_needed = frames_needed
        self.same_place_m = same_place_m
        self.repeat_radius_m = repeat_radius_m
        self._run: list[Sighting] = []
        self.reported: list[GeoPoint] = []

    def add(self, sighting: Sighting | None) -> Sighting | None:
        """The sighting that completes a finding (to report), else None."""
        if sighting is None:
            self._run.clear()
            return None
        if self._run and distance_m(self._run[-1].position, sighting.position) > self.same_place_m:
            self._run.clear()
        self._run.append(sighting)
        if len(self._run) < self.frames_needed:
            return None
        if any(distance_m(p, sighting.position) <= self.repeat_radius_m for p in self.reported):
            return None
        self.reported.append(sighting.position)
        self._run.clear()
        return sighting

    @property
    def streak(self) -> int:
        return len(self._run)
