"""What the console knows of the fleet: built only from what the API publishes. Pure; no I/O.

The retained ``state`` of each nest is the backbone (phase, battery, position, link, who holds
control); ``telemetry`` refreshes the moving values between state changes; ``events`` scroll;
``incidents`` give the console targets for ``launch N to incident ID``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ValidationError

from dronectl.operations.models import ControllerStatus, Event, Incident, NestState, Telemetry
from dronectl.operations.topics import Topics, parse_nest_token

TELEMETRY_STALE_S = 15.0  # docked nests send telemetry every 5 s; older than this is not shown

Kind = Literal["status", "state", "telemetry", "events", "incidents"]


@dataclass(frozen=True)
class Feed:
    """What a topic carries (None from classify: not ours)."""

    kind: Kind
    nest_id: int | None = None


def classify(topics: Topics, topic: str) -> Feed | None:
    root = topics.root + "/"
    if not topic.startswith(root):
        return None
    rest = topic[len(root) :].split("/")
    if rest == ["status"]:
        return Feed("status")
    if rest == ["events"]:
        return Feed("events")
    if len(rest) == 2 and rest[0] == "incidents":  # {root}/incidents/{user}
        return Feed("incidents")
    if len(rest) == 3 and rest[0] == "nests" and rest[2] in ("state", "telemetry"):
        nest_id = parse_nest_token(rest[1])
        if nest_id is None:
            return None
        return Feed("state" if rest[2] == "state" else "telemetry", nest_id)
    return None


@dataclass
class NestView:
    nest_id: int
    state: NestState | None = None
    telemetry: Telemetry | None = None


@dataclass(frozen=True)
class NestRow:
    """One nest as the panel shows it."""

    nest_id: int
    name: str
    phase: str
    battery_pct: float | None
    alt_m: float | None
    speed_mps: float | None
    link: str  # "up", "lost", "?" or "unsg" (the MAVLink link is not signed)
    holder: str | None  # actor id holding manual control
    holder_role: str | None
    airborne: bool


_AIRBORNE = {"launching", "en_route", "on_station", "returning", "landing"}


class FleetModel:
    def __init__(self, topics: Topics, max_events: int = 500) -> None:
        self.topics = topics
        self.status: ControllerStatus | None = None
        self.nests: dict[int, NestView] = {}
        self.events: deque[Event] = deque(maxlen=max_events)
        self.incidents: dict[str, Incident] = {}
        self.ignored = 0  # payloads that did not validate (counted, never acted on)

    def apply(self, topic: str, payload: bytes) -> Feed | None:
        """Take in one message; returns what it was, or None when ignored."""
        feed = classify(self.topics, topic)
        if feed is None or not payload:  # empty payload: a retained message being cleared
            return None
        try:
            if feed.kind == "status":
                self.status = ControllerStatus.model_validate_json(payload)
            elif feed.kind == "state":
                state = NestState.model_validate_json(payload)
                if state.nest_id != feed.nest_id:
                    raise ValueError("nest id of topic and payload differ")
                self._view(state.nest_id).state = state
            elif feed.kind == "telemetry":
                sample = Telemetry.model_validate_json(payload)
                view = self._view(sample.nest_id)
                if view.telemetry is None or sample.at >= view.telemetry.at:
                    view.telemetry = sample
            elif feed.kind == "events":
                self.events.append(Event.model_validate_json(payload))
            else:
                incident = Incident.model_validate_json(payload)
                self.incidents[incident.id] = incident
        except (ValidationError, ValueError):
            self.ignored += 1
            return None
        return feed

    def _view(self, nest_id: int) -> NestView:
        return self.nests.setdefault(nest_id, NestView(nest_id))

    # --- reading --------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.status is not None and self.status.state == "online"

    def nest_ids(self) -> list[int]:
        """The nests the service manages (its status), and any whose state we have seen."""
        ids = set(self.status.nests) if self.status is not None else set()
        ids.update(n for n, v in self.nests.items() if v.state is not None)
        return sorted(ids)

    def state(self, nest_id: int) -> NestState | None:
        view = self.nests.get(nest_id)
        return view.state if view is not None else None

    def holder(self, nest_id: int) -> str | None:
        state = self.state(nest_id)
        return state.control.id if state is not None and state.control is not None else None

    def fresh_telemetry(self, nest_id: int, now: datetime) -> Telemetry | None:
        view = self.nests.get(nest_id)
        if view is None or view.telemetry is None:
            return None
        if (now - view.telemetry.at).total_seconds() > TELEMETRY_STALE_S:
            return None
        return view.telemetry

    def row(self, nest_id: int, now: datetime) -> NestRow:
        state = self.state(nest_id)
        sample = self.fresh_telemetry(nest_id, now)
        if state is None:
            return NestRow(nest_id, f"nest {nest_id}", "?", None, None, None, "?", None, None, False)
        position = state.drone.position
        alt_m = position.alt_m if position is not None else None
        battery = state.drone.battery_pct
        speed = None
        if sample is not None and sample.at >= state.at:
            alt_m, battery = sample.position.alt_m, sample.battery_pct
        if sample is not None:
            speed = sample.ground_speed_mps
        airborne = state.phase.value in _AIRBORNE
        if not airborne and speed is not None and speed < 0.5:
            speed = 0.0
        return NestRow(
            nest_id=nest_id,
            name=state.name,
            phase=state.phase.value,
            battery_pct=battery,
            alt_m=alt_m,
            speed_mps=speed,
            # an unsigned MAVLink link (issue 13) shows plainly, in the panel's alarm style
            link="unsg" if state.link is not None and not state.link.signed else state.drone.link,
            holder=state.control.id if state.control is not None else None,
            holder_role=state.control.role.value if state.control is not None else None,
            airborne=airborne,
        )

    def rows(self, now: datetime) -> list[NestRow]:
        return [self.row(nest_id, now) for nest_id in self.nest_ids()]


def to_json(model: BaseModel | None) -> object:
    """A model as JSON-ready data (for --json output)."""
    return None if model is None else model.model_dump(mode="json")
