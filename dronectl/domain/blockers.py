"""Why a launch, go-to or orbit cannot be done: one :class:`Blocker` per reason, in words.

The safety checks (``safety``) return them; ``errors.CommandRefused`` carries them to the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class BlockerCode(Enum):
    LINK_LOST = "link_lost"
    NEST_OFFLINE = "nest_offline"
    NEST_BUSY = "nest_busy"
    NEST_NOT_READY = "nest_not_ready"
    NEST_FAULT = "nest_fault"
    NEST_MAINTENANCE = "nest_maintenance"
    DEVICE_FAULT = "device_fault"
    NOT_AIRBORNE = "not_airborne"
    WEATHER_UNKNOWN = "weather_unknown"
    WIND = "wind"
    GUST = "gust"
    PRECIPITATION = "precipitation"
    TOO_COLD = "too_cold"
    TOO_HOT = "too_hot"
    BATTERY_UNKNOWN = "battery_unknown"
    BATTERY_SHORT = "battery_short"
    WIND_TOO_STRONG_FOR_ROUTE = "wind_too_strong_for_route"
    OUTSIDE_GEOFENCE = "outside_geofence"
    IN_NO_FLY_ZONE = "in_no_fly_zone"
    PATH_LEAVES_GEOFENCE = "path_leaves_geofence"
    PATH_CROSSES_NO_FLY = "path_crosses_no_fly"
    ALTITUDE_CEILING = "altitude_ceiling"
    ALTITUDE_TOO_LOW = "altitude_too_low"
    OUT_OF_RANGE = "out_of_range"
    SEPARATION = "separation"
    INVALID_REQUEST = "invalid_request"


@dataclass(frozen=True)
class Blocker:
    code: BlockerCode
    message: str

    def __str__(self) -> str:
        return self.message
