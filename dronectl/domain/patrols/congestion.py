"""How congested a road is, from what a drone's camera measures of its traffic (pure).

Traffic engineering's three signs of a jam, each against the thresholds of
:class:`~dronectl.domain.config.CongestionThresholds`: the mean speed against the road's free-flow speed,
the density (vehicles per lane and kilometre; about 20 is busy, 45 is a queue, jam density is
~130) and the share of vehicles standing still. The speed and the stopped share count only when
there is traffic to speak of (``min_density_veh_per_km``): one car waiting at a light is not a jam.
"""

from __future__ import annotations

import math
from enum import StrEnum

from dronectl.domain.config import CongestionConfig


class CongestionLevel(StrEnum):
    FREE = "free"
    LIGHT = "light"
    HEAVY = "heavy"
    STANDSTILL = "standstill"


def classify(
    reading_speed_mps: float | None,
    density_veh_per_km: float,
    stopped_fraction: float,
    free_flow_speed_mps: float,
    s: CongestionConfig,
) -> CongestionLevel:
    """The worst level any sign reaches. ``reading_speed_mps`` is None when it could not be
    measured (then density and stopped share decide)."""
    if not free_flow_speed_mps > 0.0:
        raise ValueError(f"free_flow_speed_mps must be positive, not {free_flow_speed_mps}")
    if density_veh_per_km < 0.0 or math.isnan(density_veh_per_km):
        raise ValueError(f"density_veh_per_km must be >= 0, not {density_veh_per_km}")
    t = s.thresholds
    if density_veh_per_km < t.min_density_veh_per_km:
        return CongestionLevel.FREE
    ratio = None if reading_speed_mps is None else max(0.0, reading_speed_mps) / free_flow_speed_mps
    if stopped_fraction >= t.standstill_stopped_fraction or (
        reading_speed_mps is not None
        and reading_speed_mps <= t.standstill_speed_mps
        and density_veh_per_km >= t.light_density_veh_per_km
    ):
        return CongestionLevel.STANDSTILL
    if (
        density_veh_per_km >= t.heavy_density_veh_per_km
        or stopped_fraction >= t.heavy_stopped_fraction
        or (ratio is not None and ratio <= t.heavy_speed_ratio)
    ):
        return CongestionLevel.HEAVY
    if density_veh_per_km >= t.light_density_veh_per_km or (
        ratio is not None and ratio <= t.light_speed_ratio
    ):
        return CongestionLevel.LIGHT
    return CongestionLevel.FREE


def describe(
    level: CongestionLevel,
    reading_speed_mps: float | None,
    density_veh_per_km: float,
    stopped_fraction: float,
    free_flow_speed_mps: float,
) -> str:
    """For the operator: ``heavy: 3.1 m/s (24 % of free flow), 52 veh/km per lane, 35 % stopped``."""
    if reading_speed_mps is None:
        speed = "speed unknown"
    else:
        pct = 100.0 * reading_speed_mps / free_flow_speed_mps
        speed = f"{reading_speed_mps:.1f} m/s ({pct:.0f} % of free flow)"
    return (
        f"{level.value}: {speed}, {density_veh_per_km:.0f} veh/km per lane, "
        f"{100.0 * stopped_fraction:.0f} % stopped"
    )
