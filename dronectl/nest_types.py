"""What a nest controller knows and tells: its adapters, the latest telemetry, the flight in
progress, the events it announces, and the view of the other nests used for separation.

Plain frozen dataclasses (and one small registry); ``dronectl.nest_controller`` keeps them true
to what the hardware reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.protocols import (
    Camera,
    Dock,
    DockStatus,
    DockWeather,
    FlightController,
    FlightMode,
    Health,
    LandedState,
    Payload,
    Position,
)
from dronectl.geo import GeoPoint
from dronectl.safety import OtherFlight

if TYPE_CHECKING:
    from dronectl.nest_controller import NestController


@dataclass(frozen=True)
class NestHardware:
    """The adapters of one nest."""

    flight: FlightController
    dock: Dock
    payload: Payload
    camera: Camera | None = None  # the video side (dronectl.video) reads it; the controller does not


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


class FleetView:
    """What a nest needs to know of the others (for separation)."""

    def __init__(self) -> None:
        self._controllers: dict[int, NestController] = {}

    def add(self, controller: NestController) -> None:
        self._controllers[controller.nest_id] = controller

    def others(self, nest_id: int) -> list[OtherFlight]:
        out = []
        for other in self._controllers.values():
            if other.nest_id == nest_id or not other.state.flying:
                continue
            pos = other.drone.position
            where = GeoPoint(pos.lat_deg, pos.lon_deg) if pos is not None else other.home
            target = other.flight.target if other.flight is not None else None
            out.append(OtherFlight(other.nest_id, where, target))
        return out

    def controllers(self) -> list[NestController]:
        return list(self._controllers.values())
