"""When a road is at risk of black ice, from a nest's weather station (pure).

Black ice is a thin clear film of ice: it forms when the road *surface* is at or below freezing
and there is water to freeze on it, either falling (rain, sleet, snow melting on salted asphalt)
or condensing from humid air (fog, hoar frost). So the rule is::

    road_temp_c <= road_temp_max_c  AND  (precipitation  OR  humidity_pct >= humidity_min_pct)

with precipitation counting only when ``precipitation_triggers`` is set. The reasons are written
for an operator: "road surface -3.0 °C at or below 0.5 °C; snow 1.2 mm/h".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dronectl.domain.config import BlackIceConfig

DRY = "none"


@dataclass(frozen=True)
class RoadWeather:
    road_temp_c: float
    air_temp_c: float
    humidity_pct: float
    precipitation_mmph: float
    precipitation: str  # "none", "rain", "snow", "sleet", "hail", "freezing rain", ...

    @property
    def wet(self) -> bool:
        """Something is falling: a kind other than "none", or a measured rate."""
        return self.precipitation_mmph > 0.0 or self.precipitation.strip().lower() not in (DRY, "")


class _DockWeatherLike(Protocol):
    @property
    def road_temperature_c(self) -> float: ...
    @property
    def air_temperature_c(self) -> float: ...
    @property
    def humidity_pct(self) -> float: ...
    @property
    def precipitation_mmph(self) -> float: ...
    @property
    def precipitation(self) -> object: ...


def road_weather(dock: _DockWeatherLike) -> RoadWeather:
    """A dock's weather station reading (``adapters.protocols.DockWeather``) as road weather."""
    kind = dock.precipitation
    return RoadWeather(
        road_temp_c=dock.road_temperature_c,
        air_temp_c=dock.air_temperature_c,
        humidity_pct=dock.humidity_pct,
        precipitation_mmph=dock.precipitation_mmph,
        precipitation=str(getattr(kind, "value", kind)),
    )


@dataclass(frozen=True)
class IceRisk:
    at_risk: bool
    reasons: tuple[str, ...]

    def describe(self) -> str:
        verdict = "black ice risk" if self.at_risk else "no black ice risk"
        return f"{verdict}: " + "; ".join(self.reasons)


def _precipitation_words(w: RoadWeather) -> str:
    kind = w.precipitation.strip().lower()
    kind = "precipitation" if kind in (DRY, "") else kind
    return f"{kind} {w.precipitation_mmph:.1f} mm/h" if w.precipitation_mmph > 0.0 else kind


def ice_risk(w: RoadWeather, s: BlackIceConfig) -> IceRisk:
    """At risk when the road surface is cold enough and there is water to freeze; the reasons
    say which readings decided, against which thresholds."""
    limit = f"{s.road_temp_max_c:.1f} °C"
    if w.road_temp_c > s.road_temp_max_c:
        return IceRisk(False, (f"road surface {w.road_temp_c:.1f} °C above {limit}",))
    cold = f"road surface {w.road_temp_c:.1f} °C at or below {limit}"
    water: list[str] = []
    if w.wet and s.precipitation_triggers:
        water.append(_precipitation_words(w))
    if w.humidity_pct >= s.humidity_min_pct:
        water.append(f"humidity {w.humidity_pct:.0f} % at or above {s.humidity_min_pct:.0f} %")
    if water:
        return IceRisk(True, (cold, *water))
    dry = f"humidity {w.humidity_pct:.0f} % below {s.humidity_min_pct:.0f} %"
    if w.wet:  # falling, but the config does not count precipitation
        dry += f" ({_precipitation_words(w)} not counted: precipitation_triggers is off)"
    else:
        dry = f"dry: no precipitation, {dry}"
    return IceRisk(False, (cold, dry))
