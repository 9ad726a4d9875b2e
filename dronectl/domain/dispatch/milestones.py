"""An incident's milestones and the city's 1-3-5 doctrine they are measured against.

Dispatch within 1 minute, units moving within 3, on scene within 5: ``dispatched`` is the launch
(or retask) order sent, ``airborne`` the drone in the air and heading out, ``on_scene`` over the
scene and orbiting it, ``video_live`` its camera streaming to the command center (measured
against the on-scene target: the picture is what the command center gets from being there).
Times are seconds after the service received the incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dronectl.domain.dispatch.estimate import minutes
from dronectl.domain.dispatch_settings import DispatchSettings


class Milestone(StrEnum):
    RECEIVED = "received"
    PROPOSED = "proposed"  # waiting for a commander's confirmation
    QUEUED = "queued"  # no nest can go now
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"
    AIRBORNE = "airborne"
    ON_SCENE = "on_scene"
    VIDEO_LIVE = "video_live"
    FINDING = "finding"  # something found on scene in the drone's video (black ice) and responded to
    RESUMED = "resumed"  # picked up again after a controller restart (a note, no doctrine target)
    CLOSED = "closed"  # the drone left the scene (home, or taken over)
    FAILED = "failed"  # the flight ended before the scene, or the order was refused


def target_s(milestone: Milestone, settings: DispatchSettings) -> float | None:
    """The doctrine's limit for ``milestone``, if it has one."""
    return {
        Milestone.DISPATCHED: settings.dispatch_target_s,
        Milestone.AIRBORNE: settings.moving_target_s,
        Milestone.ON_SCENE: settings.on_scene_target_s,
        Milestone.VIDEO_LIVE: settings.on_scene_target_s,
    }.get(milestone)


@dataclass(frozen=True)
class Mark:
    """A milestone reached, with its time measured against its target."""

    milestone: Milestone
    elapsed_s: float
    target_s: float | None

    @property
    def met(self) -> bool | None:
        return None if self.target_s is None else self.elapsed_s <= self.target_s

    def describe(self) -> str:
        text = f"{self.milestone.value} after {self.elapsed_s:.1f} s"
        if self.target_s is not None:
            verdict = "within" if self.met else "LATE against"
            text += f" ({verdict} the {minutes(self.target_s)} target)"
        return text

    def data(self) -> dict[str, Any]:
        return {
            "milestone": self.milestone.value,
            "elapsed_s": round(self.elapsed_s, 3),
            "target_s": self.target_s,
            "met": self.met,
        }


def mark(milestone: Milestone, elapsed_s: float, settings: DispatchSettings) -> Mark:
    return Mark(milestone, max(0.0, elapsed_s), target_s(milestone, settings))
