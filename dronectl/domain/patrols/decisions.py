"""The patrol service's decisions, pure: which patrols are wanted now, which missions to start or
stop, how long a drone can stay, where a relief should come to.

No await, no clock of their own; the service (``dronectl.automations.patrols.service``) feeds them what it
sees (weather of each nest, the time, the missions) and carries out the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dronectl.domain.config import PatrolsConfig, RoadStretchConfig
from dronectl.domain.geo import GeoPoint, distance_m
from dronectl.domain.patrols.missions import Mission, MissionKind
from dronectl.domain.patrols.schedule import active_window
from dronectl.domain.patrols.triggers import RoadWeather, ice_risk

WantedKey = tuple[MissionKind, str]  # (kind, stretch id)


@dataclass(frozen=True)
class Station:
    """A nest's weather station, as the trigger sees it."""

    nest_id: int
    position: GeoPoint
    weather: RoadWeather | None  # None: not known (no link yet)


def stretch_points(stretch: RoadStretchConfig) -> tuple[GeoPoint, ...]:
    return tuple(GeoPoint(lat, lon) for lat, lon in stretch.points)


def midpoint(points: Sequence[GeoPoint]) -> GeoPoint:
    """The point halfway between the stretch's ends (good enough for a station's distance)."""
    a, b = points[0], points[-1]
    return GeoPoint((a.lat_deg + b.lat_deg) / 2, (a.lon_deg + b.lon_deg) / 2)


def nearest_station(stretch: RoadStretchConfig, stations: Sequence[Station]) -> Station | None:
    """The nearest station that reports weather: it stands for the stretch's road."""
    known = [s for s in stations if s.weather is not None]
    if not known:
        return None
    centre = midpoint(stretch_points(stretch))
    return min(known, key=lambda s: (distance_m(s.position, centre), s.nest_id))


def _window_text(kind: str, start: datetime, end: datetime) -> str:
    return f"{kind} schedule {start:%H:%M}-{end:%H:%M}"


def wanted(config: PatrolsConfig, stations: Sequence[Station], now_local: datetime) -> dict[WantedKey, str]:
    """Every patrol a trigger wants now, with the trigger in words.

    Black ice: a stretch is wanted while the nearest weather station says ice risk, or while a
    black-ice schedule window is open. Congestion: every hot spot while a window is open."""
    out: dict[WantedKey, str] = {}
    bi = config.black_ice
    window = active_window(bi.schedule, now_local)
    for stretch_id in bi.stretches:
        stretch = config.stretch(stretch_id)
        station = nearest_station(stretch, stations)
        if station is not None and station.weather is not None:
            risk = ice_risk(station.weather, bi)
            if risk.at_risk:
                out[(MissionKind.BLACK_ICE, stretch_id)] = (
                    f"ice risk at nest {station.nest_id}'s station: " + "; ".join(risk.reasons)
                )
                continue
        if window is not None:
            out[(MissionKind.BLACK_ICE, stretch_id)] = _window_text("black-ice", window.start, window.end)
    cw = active_window(config.congestion.schedule, now_local)
    if cw is not None:
        for stretch_id in config.congestion.stretches:
            out[(MissionKind.CONGESTION, stretch_id)] = _window_text("congestion", cw.start, cw.end)
    return out


@dataclass(frozen=True)
class Reconciled:
    start: tuple[tuple[MissionKind, str, str], ...]  # (kind, stretch, trigger) with no mission yet
    stop: tuple[tuple[str, str], ...]  # (mission id, why) of automatic missions no longer wanted


def reconcile(active: Sequence[Mission], want: Mapping[WantedKey, str]) -> Reconciled:
    """Start what is wanted and not covered; stop automatic missions whose trigger is over.
    A mission a person started is left alone (a person stops it)."""
    covered = {(m.kind, m.stretch_id) for m in active if m.active}
    start = tuple(
        (kind, stretch, why) for (kind, stretch), why in want.items() if (kind, stretch) not in covered
    )
    stop = tuple(
        (m.id, f"{'ice risk' if m.kind is MissionKind.BLACK_ICE else 'congestion window'} over")
        for m in active
        if m.active and not m.manual and (m.kind, m.stretch_id) not in want
    )
    return Reconciled(start, stop)


def relief_target(
    waypoints: Sequence[GeoPoint], avoid: Sequence[GeoPoint], separation_m: float
) -> GeoPoint | None:
    """Where a relief should come to: the waypoint nearest the patrolling drone (``avoid[0]``) that
    keeps the separation from every point of ``avoid`` (the drone, its target: the safety policy
    refuses a target closer to another flight); None when none does."""
    if not avoid:
        raise ValueError("avoid names at least the patrolling drone's position")
    far = [p for p in waypoints if all(distance_m(p, a) >= separation_m * 1.2 for a in avoid)]
    if not far:
        return None
    return min(far, key=lambda p: distance_m(p, avoid[0]))
