"""Shared simulated-world state of one nest: its site, weather, faults, and the two views
its components have of each other (the drone sees its dock; the dock sees its drone).

Everything here is plain data and arithmetic, no I/O and no ``await``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol

from sitl.component import Recorder

# WGS84
_A_M = 6_378_137.0
_E2 = 6.694_379_990_14e-3


@dataclass(frozen=True)
class GeoPoint:
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float


class LocalFrame:
    """Local tangent plane (north, east, down metres) around a nest's pad.

    The tick of 16 simulated drones converts positions hundreds of times a second, so this
    uses the WGS84 radii of curvature at the origin rather than a full geodesic solution: within
    the 20 km a nest's drone can fly it agrees with geographiclib to better than 0.5 % of the
    distance, and the simulator always converts both ways with the same frame.
    """

    def __init__(self, origin: GeoPoint) -> None:
        self.origin = origin
        lat = math.radians(origin.lat_deg)
        s = math.sin(lat)
        w = math.sqrt(1.0 - _E2 * s * s)
        self._m_per_rad_lat = _A_M * (1.0 - _E2) / (w**3)
        self._m_per_rad_lon = _A_M / w * math.cos(lat)

    def to_ned(self, lat_deg: float, lon_deg: float, alt_amsl_m: float) -> tuple[float, float, float]:
        north = math.radians(lat_deg - self.origin.lat_deg) * self._m_per_rad_lat
        east = math.radians(lon_deg - self.origin.lon_deg) * self._m_per_rad_lon
        return north, east, self.origin.alt_amsl_m - alt_amsl_m

    def to_geo(self, north_m: float, east_m: float, down_m: float) -> GeoPoint:
        return GeoPoint(
            self.origin.lat_deg + math.degrees(north_m / self._m_per_rad_lat),
            self.origin.lon_deg + math.degrees(east_m / self._m_per_rad_lon),
            self.origin.alt_amsl_m - down_m,
        )


class Precipitation(enum.IntEnum):
    """Same values as the dialect's PRECIPITATION_TYPE."""

    NONE = 0
    RAIN = 1
    SNOW = 2
    SLEET = 3
    HAIL = 4


@dataclass
class Weather:
    """What the nest's weather station measures (and what the drone flies in)."""

    wind_speed_mps: float = 3.0
    wind_gust_mps: float = 5.0
    wind_from_deg: float = 270.0  # direction the wind comes from
    air_temp_c: float = 5.0
    road_temp_c: float = 4.0
    humidity_pct: float = 60.0
    precipitation_mmph: float = 0.0
    precipitation: Precipitation = Precipitation.NONE

    def wind_ned_mps(self, extra_gust_mps: float = 0.0) -> tuple[float, float]:
        """Wind velocity (where the air moves to) in north/east metres per second."""
        speed = self.wind_speed_mps + extra_gust_mps
        to_rad = math.radians(self.wind_from_deg + 180.0)
        return speed * math.cos(to_rad), speed * math.sin(to_rad)


class FaultKind(enum.IntEnum):
    """Faults a test or the command line can inject into a running nest.

    The values are param1 of the dialect's MAV_CMD_DRONECTL_SIM_FAULT.
    """

    CLEAR = 0  # clear every fault
    LINK_LOSS = 1  # value unused; duration_s seconds of silence both ways
    PACKET_LOSS = 2  # value: percent of datagrams dropped, both ways
    GPS_LOSS = 3  # duration_s without a fix
    BATTERY_FAILURE = 4  # battery reports a failure and the drone must land
    BATTERY_DRAIN = 5  # value: drain multiplier (e.g. 10)
    COVER_JAM = 6  # the dock cover stops where it is
    WIND_GUST = 7  # value: extra m/s of wind for duration_s
    WEATHER = 8  # set through SimNest.set_weather (not from MAVLink)


@dataclass
class Faults:
    """Active faults of one nest. Times are simulated seconds."""

    link_down_until_s: float = 0.0
    packet_loss_pct: float = 0.0
    gps_lost_until_s: float = 0.0
    battery_failed: bool = False
    battery_drain_factor: float = 1.0
    cover_jammed: bool = False
    gust_mps: float = 0.0
    gust_until_s: float = 0.0

    def link_down(self, now_s: float) -> bool:
        return now_s < self.link_down_until_s

    def gps_lost(self, now_s: float) -> bool:
        return now_s < self.gps_lost_until_s

    def extra_gust_mps(self, now_s: float) -> float:
        return self.gust_mps if now_s < self.gust_until_s else 0.0

    def inject(self, kind: FaultKind, now_s: float, value: float = 0.0, duration_s: float = 0.0) -> None:
        """Apply one fault; ``duration_s`` 0 means until cleared (for timed kinds: 1 hour)."""
        until = now_s + (duration_s if duration_s > 0 else 3600.0)
        if kind is FaultKind.CLEAR:
            self.__init__()  # type: ignore[misc]  # reset every field to its default
        elif kind is FaultKind.LINK_LOSS:
            self.link_down_until_s = until
        elif kind is FaultKind.PACKET_LOSS:
            self.packet_loss_pct = max(0.0, min(100.0, value))
        elif kind is FaultKind.GPS_LOSS:
            self.gps_lost_until_s = until
        elif kind is FaultKind.BATTERY_FAILURE:
            self.battery_failed = True
        elif kind is FaultKind.BATTERY_DRAIN:
            self.battery_drain_factor = max(1.0, value)
        elif kind is FaultKind.COVER_JAM:
            self.cover_jammed = True
        elif kind is FaultKind.WIND_GUST:
            self.gust_mps = max(0.0, value)
            self.gust_until_s = until
        else:
            raise ValueError(f"fault {kind.name} cannot be injected this way")


class DockView(Protocol):
    """What the drone's autopilot can sense of its dock."""

    def cover_open(self) -> bool:
        """True only when the cover is fully open (a drone can climb out)."""

    def charging(self) -> bool:
        """True while the charger feeds the drone's battery."""


class DroneView(Protocol):
    """What the dock can sense of its drone."""

    def on_pad(self) -> bool:
        """Drone landed on the dock's pad (armed or not: see ``armed``)."""

    def airborne(self) -> bool: ...

    def armed(self) -> bool: ...

    def position_ned_m(self) -> tuple[float, float, float]:
        """North, east, down from the pad."""

    def battery_pct(self) -> float: ...


@dataclass
class NestContext:
    """Everything a nest's components share. Built by ``sitl.nest.SimNest``."""

    nest_id: int
    system_id: int
    name: str
    home: GeoPoint
    frame: LocalFrame
    weather: Weather
    faults: Faults
    recorder: Recorder
