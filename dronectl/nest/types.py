"""What a nest controller knows and tells: its adapters, the latest telemetry, the flight in
progress, the events it announces, and the view of the other nests used for separation.

Plain frozen dataclasses (and one small registry); ``dronectl.nest.controller`` keeps them true
to what the hardware reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.protocols import (
    Camera,
    Dock,
    DockStatus,
    DockWeather,
    FlightController,
    FlightMode,
    Health,
    LandedState,
    LinkSecurityStatus,
    Payload,
    Position,
)
from dronectl.domain.geo import GeoPoint
from dronectl.domain.safety import OtherFlight


@dataclass(frozen=True)
class NestHardware:
    """The adapters of one nest."""

    flight: FlightController
    dock: Dock
    payload: Payload
    camera: Camera | None = None  # the video side (dronectl.video) reads it; the controller does not
    # the MAVLink link's signing and what it refused (the state shows it); None: not known
    link_security: Callable[[], LinkSecurityStatus] | None = None


@dataclass(frozen=True)
class DroneTelemetry:
    """The latest of what the drone reported; None where nothing came yet."""

    position: Position | None = None
    battery_pct: float | None = None
    armed: bool | None = None
    landed: LandedState = LandedState.UNKNOWN
    mode: FlightMode = FlightMode.UNKNOWN
    health: Health | None = None
    link_up: bool = False
    ground_speed_mps: float = 0.0


@dataclass(frozen=True)
class DockTelemetry:
    status: DockStatus | None = None
    weather: DockWeather | None = None
    link_up: bool = False


@dataclass(frozen=True)
class Flight:
    """The flight in progress."""

    flight_id: str
    target: GeoPoint | None
    alt_above_home_m: float
    started_mono_s: float
    command_id: str | None = None
    speed_mps: float | None = None  # cruise ground speed asked of the autopilot; None: its default


@dataclass(frozen=True)
class NestEvent:
    """Something worth telling the operators (published as an event, kept with the flight)."""

    nest_id: int
    kind: str  # launched, on_station, returning, landed, refused, fault, weather_no_go, link_lost, ...
    message: str
    data: dict[str, Any]


Listener = Callable[[NestEvent], None]


class OtherFlights(Protocol):
    """What a nest needs to know of the others, for separation (``fleet.FleetView``)."""

    def others(self, nest_id: int) -> list[OtherFlight]: ...
