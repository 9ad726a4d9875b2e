"""Black-ice risk from the weather station: cold road surface and water on it."""

from __future__ import annotations

import pytest

from adapters.protocols import DockWeather, Precipitation
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.patrols.triggers import RoadWeather, ice_risk, road_weather

ICE = BlackIceConfig()  # road at or below 0.5 °C, humidity 85 %, precipitation counts


def weather(
    road_c: float = -3.0, humidity: float = 60.0, rate: float = 0.0, kind: str = "none"
) -> RoadWeather:
    return RoadWeather(
        road_temp_c=road_c,
        air_temp_c=-2.0,
        humidity_pct=humidity,
        precipitation_mmph=rate,
        precipitation=kind,
    )


def test_snow_on_a_frozen_road_is_a_risk_in_words() -> None:
    risk = ice_risk(weather(-3.0, rate=1.2, kind="snow"), ICE)
    assert risk.at_risk
    assert risk.reasons == ("road surface -3.0 °C at or below 0.5 °C", "snow 1.2 mm/h")
    assert risk.describe() == "black ice risk: road surface -3.0 °C at or below 0.5 °C; snow 1.2 mm/h"


def test_humid_air_on_a_frozen_road_is_a_risk() -> None:
    risk = ice_risk(weather(-1.0, humidity=92.0), ICE)
    assert risk.at_risk
    assert risk.reasons == ("road surface -1.0 °C at or below 0.5 °C", "humidity 92 % at or above 85 %")


def test_both_water_sources_are_named() -> None:
    risk = ice_risk(weather(0.0, humidity=95.0, rate=0.4, kind="freezing rain"), ICE)
    assert risk.reasons[1:] == ("freezing rain 0.4 mm/h", "humidity 95 % at or above 85 %")


def test_threshold_is_inclusive() -> None:
    assert ice_risk(weather(0.5, humidity=85.0), ICE).at_risk
    assert not ice_risk(weather(0.51, humidity=100.0, rate=3.0, kind="rain"), ICE).at_risk


def test_a_warm_road_is_no_risk_whatever_falls() -> None:
    risk = ice_risk(weather(2.0, humidity=99.0, rate=5.0, kind="rain"), ICE)
    assert not risk.at_risk
    assert risk.reasons == ("road surface 2.0 °C above 0.5 °C",)


def test_a_frozen_but_dry_road_is_no_risk() -> None:
    risk = ice_risk(weather(-8.0, humidity=60.0), ICE)
    assert not risk.at_risk
    assert risk.reasons == (
        "road surface -8.0 °C at or below 0.5 °C",
        "dry: no precipitation, humidity 60 % below 85 %",
    )


def test_precipitation_does_not_count_when_switched_off() -> None:
    config = BlackIceConfig(precipitation_triggers=False)
    risk = ice_risk(weather(-2.0, humidity=70.0, rate=2.0, kind="snow"), config)
    assert not risk.at_risk
    assert "snow 2.0 mm/h not counted: precipitation_triggers is off" in risk.reasons[1]
    assert ice_risk(weather(-2.0, humidity=90.0, rate=2.0, kind="snow"), config).at_risk


def test_a_kind_without_a_rate_still_counts_and_a_rate_without_a_kind_too() -> None:
    assert ice_risk(weather(-2.0, kind="sleet"), ICE).reasons[1] == "sleet"
    assert ice_risk(weather(-2.0, rate=0.3), ICE).reasons[1] == "precipitation 0.3 mm/h"


@pytest.mark.parametrize(("road_c", "expected"), [(-4.0, True), (1.0, False)])
def test_thresholds_come_from_the_config(road_c: float, expected: bool) -> None:
    warm_limit = BlackIceConfig(road_temp_max_c=-3.0, humidity_min_pct=50.0)
    assert ice_risk(weather(road_c, humidity=60.0), warm_limit).at_risk is expected


def test_from_the_dock_weather_station() -> None:
    dock = DockWeather(
        wind_speed_mps=3.0,
        wind_gust_mps=5.0,
        wind_from_deg=290.0,
        air_temperature_c=-4.0,
        road_temperature_c=-6.5,
        humidity_pct=70.0,
        precipitation_mmph=0.8,
        precipitation=Precipitation.SNOW,
    )
    w = road_weather(dock)
    assert w == RoadWeather(-6.5, -4.0, 70.0, 0.8, "snow")
    assert ice_risk(w, ICE).reasons == ("road surface -6.5 °C at or below 0.5 °C", "snow 0.8 mm/h")
