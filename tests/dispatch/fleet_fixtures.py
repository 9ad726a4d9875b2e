"""Snapshots of the default city's nests in chosen conditions, for the dispatch unit tests."""

from __future__ import annotations

from dataclasses import replace

from dronectl.domain.config import load_config
from dronectl.domain.geo import GeoPoint
from dronectl.domain.nest_state import CoverState, FlightMode, NestPhase, NestState, Observations
from dronectl.domain.safety import NestSnapshot, SafetyPolicy, WeatherReading

CONFIG = load_config()
POLICY = SafetyPolicy.from_config(CONFIG)
CALM = WeatherReading(3.0, 5.0, 290.0, 0.0, -2.0)
READY_OBS = Observations(
    link_up=True,
    armed=False,
    in_air=False,
    ready_to_arm=True,
    cover=CoverState.CLOSED,
    drone_in_dock=True,
    charging=False,
)
AIRBORNE_OBS = replace(
    READY_OBS, armed=True, in_air=True, mode=FlightMode.HOLD, cover=CoverState.OPEN, drone_in_dock=False
)


def home(nest_id: int) -> GeoPoint:
    n = CONFIG.nest(nest_id)
    return GeoPoint(n.lat, n.lon)


def ready(nest_id: int, **changes: object) -> NestSnapshot:
    n = CONFIG.nest(nest_id)
    snap = NestSnapshot(nest_id, n.name, home(nest_id), NestState(NestPhase.READY, READY_OBS), 95.0, CALM)
    return replace(snap, **changes)  # type: ignore[arg-type]


def airborne(nest_id: int, phase: NestPhase = NestPhase.ON_STATION, **changes: object) -> NestSnapshot:
    return ready(nest_id, state=NestState(phase, AIRBORNE_OBS), **changes)


def in_maintenance(nest_id: int) -> NestSnapshot:
    return ready(nest_id, state=NestState(NestPhase.MAINTENANCE, READY_OBS, maintenance=True))


def in_fault(nest_id: int) -> NestSnapshot:
    return ready(nest_id, state=NestState(NestPhase.FAULT, READY_OBS, fault="cover jammed"))
