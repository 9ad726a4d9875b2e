"""Congestion classes from speed, density and the stopped share, against the configured thresholds."""

from __future__ import annotations

import pytest

from dronectl.domain.config import CongestionConfig, CongestionThresholds
from dronectl.domain.patrols.congestion import CongestionLevel, classify, describe

CFG = CongestionConfig()  # light <= 75 % / heavy <= 40 % of free flow; 20 / 45 veh/km; 30 / 60 % stopped
FREE_FLOW = 13.0


def level(speed: float | None, density: float, stopped: float = 0.0) -> CongestionLevel:
    return classify(speed, density, stopped, FREE_FLOW, CFG)


def test_values_are_lowercase_words() -> None:
    assert [lv.value for lv in CongestionLevel] == ["free", "light", "heavy", "standstill"]


def test_flowing_traffic_is_free() -> None:
    assert level(12.5, 12.0) is CongestionLevel.FREE


def test_an_empty_road_or_a_lone_slow_car_is_free() -> None:
    assert level(None, 0.0) is CongestionLevel.FREE
    assert level(0.0, 4.0, stopped=1.0) is CongestionLevel.FREE  # one car waiting at a light


def test_light_from_speed_or_density() -> None:
    assert level(9.0, 12.0) is CongestionLevel.LIGHT  # 69 % of free flow
    assert level(12.0, 25.0) is CongestionLevel.LIGHT  # busy but moving
    assert level(0.75 * FREE_FLOW, 12.0) is CongestionLevel.LIGHT  # inclusive


def test_heavy_from_speed_density_or_stopped_share() -> None:
    assert level(4.5, 30.0) is CongestionLevel.HEAVY  # 35 % of free flow
    assert level(9.0, 50.0) is CongestionLevel.HEAVY  # a queue that still moves
    assert level(8.0, 30.0, stopped=0.35) is CongestionLevel.HEAVY  # stop and go


def test_standstill() -> None:
    assert level(1.0, 60.0, stopped=0.4) is CongestionLevel.STANDSTILL  # crawling in a dense queue
    assert level(None, 80.0, stopped=0.7) is CongestionLevel.STANDSTILL  # speed unknown, most stand
    assert level(1.0, 15.0) is CongestionLevel.HEAVY  # slow but sparse: not a standstill


def test_without_a_speed_density_and_stopped_share_decide() -> None:
    assert level(None, 12.0) is CongestionLevel.FREE
    assert level(None, 30.0) is CongestionLevel.LIGHT
    assert level(None, 50.0) is CongestionLevel.HEAVY


def test_thresholds_come_from_the_config() -> None:
    strict = CongestionConfig(thresholds=CongestionThresholds(light_speed_ratio=0.95, heavy_speed_ratio=0.9))
    assert classify(12.0, 12.0, 0.0, FREE_FLOW, strict) is CongestionLevel.LIGHT
    assert classify(11.0, 12.0, 0.0, FREE_FLOW, strict) is CongestionLevel.HEAVY
    assert classify(12.0, 12.0, 0.0, FREE_FLOW, CFG) is CongestionLevel.FREE
    assert classify(12.0, 12.0, 0.0, 20.0, CFG) is CongestionLevel.LIGHT  # 60 % of a faster road


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="free_flow_speed_mps"):
        classify(5.0, 10.0, 0.0, 0.0, CFG)
    with pytest.raises(ValueError, match="density"):
        classify(5.0, -1.0, 0.0, FREE_FLOW, CFG)


def test_describe_for_the_operator() -> None:
    text = describe(CongestionLevel.HEAVY, 3.12, 52.0, 0.35, FREE_FLOW)
    assert text == "heavy: 3.1 m/s (24 % of free flow), 52 veh/km per lane, 35 % stopped"
    assert describe(CongestionLevel.LIGHT, None, 25.0, 0.0, FREE_FLOW).startswith("light: speed unknown")
