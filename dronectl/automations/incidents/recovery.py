"""Incidents after a controller restart: what the audit store says of each, and what to do with it.
Pure, no I/O: the dispatcher (``restart.IncidentRestart.recover``) reads the rows
and the nests and carries the decision out.

An incident is a ``commands`` row (method ``incident``, the reporter as actor, the incident's
fields as args); each of its milestones is an outcome (``in_progress`` with the milestone as
code; ``succeeded``/``failed`` when final). Those without a final outcome were still being
served when the controller stopped. For each:

- not dispatched in its current attempt (received, queued, proposed, confirmed): planned again;
  a proposed incident needs a commander's confirmation again unless it was confirmed (the
  ``confirmed`` milestone is among its outcomes);
- dispatched, and its drone still flies the incident's flight towards or over the scene: that
  drone is followed again (nothing is launched or commanded again);
- dispatched, but its drone no longer flies it (landed, flight over, returning, another flight,
  nest not reachable): closed with the reason.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from dronectl.audit import CommandRow
from dronectl.domain.dispatch import Milestone
from dronectl.domain.nest_state import NestPhase
from dronectl.operations.models import Incident

_CONFIRMED = re.compile(r"confirmed by (?P<by>.+): nest (?P<nest>\d+)")
LEAVING = frozenset({NestPhase.RETURNING, NestPhase.LANDING})
_MILESTONES = frozenset(m.value for m in Milestone)


class StoredIncidentError(ValueError):
    """A stored incident that cannot be read back (the reason says why)."""


@dataclass(frozen=True)
class StoredMilestone:
    milestone: Milestone
    at_unix_s: float
    message: str | None


@dataclass(frozen=True)
class StoredIncident:
    incident: Incident
    received_unix_s: float
    milestones: tuple[StoredMilestone, ...]  # in the order they were recorded
    flight_ids: tuple[str, ...]  # flights that carried its milestones, first used first

    @property
    def id(self) -> str:
        return self.incident.id

    @property
    def attempt(self) -> tuple[StoredMilestone, ...]:
        """The milestones of the current attempt (a non-final ``failed`` starts a new one)."""
        last_failed = max(
            (i for i, m in enumerate(self.milestones) if m.milestone is Milestone.FAILED), default=-1
        )
        return self.milestones[last_failed + 1 :]

    def reached(self, milestone: Milestone) -> bool:
        return any(m.milestone is milestone for m in self.attempt)

    @property
    def stage(self) -> str:
        return self.milestones[-1].milestone.value if self.milestones else Milestone.RECEIVED.value

    @property
    def confirmation(self) -> tuple[str, int | None] | None:
        """Who confirmed it and which nest (from the ``confirmed`` milestone), or None."""
        for m in reversed(self.milestones):
            if m.milestone is Milestone.CONFIRMED:
                found = _CONFIRMED.search(m.message or "")
                if found is None:
                    return ("a commander (before the restart)", None)
                return (found["by"], int(found["nest"]))
        return None

    @property
    def times_resumed(self) -> int:
        return sum(1 for m in self.milestones if m.milestone is Milestone.RESUMED)


def stored_incident(row: CommandRow, flight_ids: Sequence[str]) -> StoredIncident:
    """The incident as recorded; StoredIncidentError when its record cannot be read back."""
    try:
        record = {
            **row["args"],
            "id": row["command_id"],
            "actor": {"id": row["actor_id"], "role": row["actor_role"]},
        }
        incident = Incident.model_validate_json(json.dumps(record))  # as it came in: JSON
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise StoredIncidentError(f"stored incident {row['command_id']} unreadable: {problems}") from None
    milestones = []
    for outcome in row["outcomes"]:
        code = outcome["code"]
        if code is None or code not in _MILESTONES:
            continue
        milestones.append(StoredMilestone(Milestone(code), outcome["at_unix_s"], outcome["message"]))
    return StoredIncident(incident, row["at_unix_s"], tuple(milestones), tuple(flight_ids))


@dataclass(frozen=True)
class DroneNow:
    """A nest's drone as the restarted controller sees it."""

    nest_id: int
    online: bool
    flying: bool
    phase: NestPhase
    flight_id: str | None
    flight_command_id: str | None  # the command that launched its flight


class Resume(enum.Enum):
    REPLAN = "replan"  # plan it again (queued, proposed, confirmed: nothing flies for it yet)
    FOLLOW = "follow"  # its drone still flies it: follow that drone again
    CLOSE = "close"  # its drone no longer flies it: close it with the reason


@dataclass(frozen=True)
class Recovery:
    action: Resume
    reason: str
    nest_id: int | None = None
    flight_id: str | None = None


def recovery(s: StoredIncident, drones: Sequence[DroneNow]) -> Recovery:
    """What to do with ``s`` after a restart, given the drones as they are now."""
    if not s.reached(Milestone.DISPATCHED):
        return Recovery(Resume.REPLAN, f"{s.stage} before the restart: planned again")
    drone = _its_drone(s, drones)
    if drone is None:
        where = f"flight {s.flight_ids[-1]}" if s.flight_ids else "its flight"
        return Recovery(Resume.CLOSE, f"no drone flies {where} any more")
    n = drone.nest_id
    if not drone.online:
        return Recovery(Resume.CLOSE, f"nest {n} not reachable after the restart", n, drone.flight_id)
    if not drone.flying:
        return Recovery(Resume.CLOSE, f"nest {n} no longer flying ({drone.phase.value})", n, drone.flight_id)
    if drone.phase in LEAVING:
        return Recovery(Resume.CLOSE, f"nest {n} left the scene ({drone.phase.value})", n, drone.flight_id)
    where = "over the scene" if s.reached(Milestone.ON_SCENE) else "on its way to the scene"
    return Recovery(Resume.FOLLOW, f"nest {n} still {where}", n, drone.flight_id)


def _its_drone(s: StoredIncident, drones: Sequence[DroneNow]) -> DroneNow | None:
    """The drone flying the incident's latest flight, or (its flight id not recorded with the
    incident yet: launched just before the stop) the flight launched by one of its commands."""
    if s.flight_ids:
        latest = s.flight_ids[-1]
        found = next((d for d in drones if d.flight_id == latest), None)
        if found is not None:
            return found
    prefix = f"{s.id}."
    return next(
        (d for d in drones if d.flight_command_id is not None and d.flight_command_id.startswith(prefix)),
        None,
    )
