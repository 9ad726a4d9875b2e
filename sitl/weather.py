"""The dock's weather station: what it reads, around the nest's set weather.

``sitl.environment.Weather`` holds the base values a test or the command line sets; a real
station never reads a constant, so :class:`WeatherStation` adds a slow drift (minutes) and a
little sensor noise (seconds) around them. Both are smooth value noise computed from the seed
and the simulated time alone, so the same seed gives the same readings at the same times no
matter how often or in which order the station is read. Injected gusts
(``Faults.extra_gust_mps``) add to the wind the station measures, as they do to the wind the
drone flies in.

No I/O, no ``await``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sitl.environment import Precipitation, Weather

DRIFT_PERIOD_S = 600.0  # weather changes over ten minutes or so
NOISE_PERIOD_S = 4.0  # anemometer turbulence / sensor noise


@dataclass(frozen=True)
class WeatherReading:
    """One reading of the station (the fields of DOCK_WEATHER)."""

    wind_speed_mps: float
    wind_gust_mps: float
    wind_from_deg: float
    air_temp_c: float
    road_temp_c: float
    humidity_pct: float
    precipitation_mmph: float
    precipitation: Precipitation


def smooth_noise(seed: int, channel: str, t: float, period_s: float) -> float:
    """Deterministic smooth noise in [-1, 1]: random knots every ``period_s``, cosine-interpolated."""
    k = math.floor(t / period_s)
    frac = t / period_s - k
    a = random.Random(f"{seed}:{channel}:{k}").uniform(-1.0, 1.0)
    b = random.Random(f"{seed}:{channel}:{k + 1}").uniform(-1.0, 1.0)
    w = (1.0 - math.cos(math.pi * frac)) / 2.0
    return a + (b - a) * w


class WeatherStation:
    """Reads ``base`` weather with drift and noise that depend only on ``seed`` and time."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def _drift(self, channel: str, t: float) -> float:
        return smooth_noise(self.seed, channel, t, DRIFT_PERIOD_S)

    def _noise(self, channel: str, t: float) -> float:
        return smooth_noise(self.seed, channel, t, NOISE_PERIOD_S)

    def read(self, base: Weather, now_s: float, extra_gust_mps: float = 0.0) -> WeatherReading:
        # Wind: +-8 % slow drift, +-0.3 m/s turbulence; gusts never below the mean wind.
        wind = base.wind_speed_mps * (1.0 + 0.08 * self._drift("wind", now_s))
        wind = max(0.0, wind + 0.3 * self._noise("wind", now_s)) if base.wind_speed_mps > 0 else 0.0
        gust_base = base.wind_gust_mps * (1.0 + 0.05 * self._drift("gust", now_s))
        gust = max(wind, gust_base + 0.3 * abs(self._noise("gust", now_s)))
        wind += extra_gust_mps
        gust += extra_gust_mps
        direction = base.wind_from_deg + 8.0 * self._drift("dir", now_s) + 3.0 * self._noise("dir", now_s)
        air = base.air_temp_c + 0.4 * self._drift("air", now_s) + 0.05 * self._noise("air", now_s)
        road = base.road_temp_c + 0.3 * self._drift("road", now_s) + 0.05 * self._noise("road", now_s)
        humidity = base.humidity_pct + 2.0 * self._drift("hum", now_s) + 0.3 * self._noise("hum", now_s)
        rate = base.precipitation_mmph * (1.0 + 0.1 * self._noise("rain", now_s))
        return WeatherReading(
            wind_speed_mps=wind,
            wind_gust_mps=gust,
            wind_from_deg=direction % 360.0,
            air_temp_c=air,
            road_temp_c=road,
            humidity_pct=min(100.0, max(0.0, humidity)),
            precipitation_mmph=max(0.0, rate),
            precipitation=base.precipitation,
        )
