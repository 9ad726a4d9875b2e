"""When the incident dispatcher has the lookout watch a scene for black ice."""

from __future__ import annotations

from adapters.protocols import DockWeather, Precipitation
from dronectl.automations.incidents.dispatcher import ice_watch_reason
from dronectl.domain.config import BlackIceConfig

CONFIG = BlackIceConfig()


def weather(
    road_c: float, mmph: float = 0.0, kind: Precipitation = Precipitation.NONE, hum: float = 60.0
) -> DockWeather:
    return DockWeather(3.0, 5.0, 270.0, road_c + 2.0, road_c, hum, mmph, kind)


def test_an_accident_in_snow_and_frost_is_watched_with_the_reasons() -> None:
    why = ice_watch_reason("accident", weather(-6.0, 1.5, Precipitation.SNOW), CONFIG)
    assert why is not None
    assert why.startswith("accident in freezing weather: black ice risk")
    assert "road surface -6.0 °C" in why and "snow 1.5 mm/h" in why


def test_an_accident_on_a_warm_or_dry_road_is_not() -> None:
    assert ice_watch_reason("accident", weather(4.0, 2.0, Precipitation.RAIN), CONFIG) is None
    assert ice_watch_reason("traffic_accident", weather(-3.0, hum=50.0), CONFIG) is None
    assert ice_watch_reason("accident", None, CONFIG) is None  # no weather station reading


def test_reported_ice_is_watched_whatever_the_weather_other_kinds_never() -> None:
    assert ice_watch_reason("black_ice", weather(4.0), CONFIG) == "black_ice reported"
    assert ice_watch_reason("black_ice", None, CONFIG) == "black_ice reported"
    assert ice_watch_reason("burglary", weather(-6.0, 1.5, Precipitation.SNOW), CONFIG) is None
