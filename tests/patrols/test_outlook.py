"""What the automations will do on their own, at pinned instants in Changchun (shipped config)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dronectl.domain.config import BlackIceConfig, CongestionConfig, PatrolsConfig, load_config
from dronectl.domain.patrols.outlook import BLACK_ICE, CONGESTION, outlook, summary

CN = ZoneInfo("Asia/Shanghai")
PATROLS = load_config().patrols


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(CN)


def by_kind(now: datetime, config: PatrolsConfig = PATROLS) -> dict[str, dict[str, object]]:
    return {o.kind: o.as_json() for o in outlook(config, now)}


def test_sunday_afternoon_nothing_until_monday_morning() -> None:
    items = by_kind(at("2026-12-06T14:00:00+08:00"))
    cg, bi = items[CONGESTION], items[BLACK_ICE]
    assert cg["enabled"] and not cg["active"] and cg["next"] == "2026-12-07T07:00:00+08:00"
    assert cg["stretches"] == ["railway-station", "peoples-square", "hongqi-street"]
    assert bi["enabled"] and not bi["active"] and bi["next"] == "2026-12-07T05:00:00+08:00"
    assert bi["window"] == {"start": "2026-12-07T05:00:00+08:00", "end": "2026-12-07T07:30:00+08:00"}
    assert "weather station reports ice risk" in str(bi["weather_trigger"])
    assert "next Mon 2026-12-07 07:00-09:00" in str(cg["text"])


def test_weekday_rush_hour_is_now_until_nine() -> None:
    now = at("2026-12-03T08:15:00+08:00")  # a Thursday
    items = outlook(PATROLS, now)
    cg = items[0].as_json()
    assert cg["kind"] == CONGESTION and cg["active"] and cg["next"] == now.isoformat()
    assert cg["until"] == "2026-12-03T09:00:00+08:00"
    assert "congestion patrols over railway-station, peoples-square, hongqi-street: now, until 09:00" in (
        summary(items)
    )
    # the black-ice window (05:00-07:30) is over for today: tomorrow's
    assert items[1].as_json()["next"] == "2026-12-04T05:00:00+08:00"


def test_winter_morning_black_ice_now_and_congestion_not_on_sunday() -> None:
    items = by_kind(at("2026-12-13T06:00:00+08:00"))  # a Sunday
    assert items[BLACK_ICE]["active"] and items[BLACK_ICE]["until"] == "2026-12-13T07:30:00+08:00"
    assert items[CONGESTION]["next"] == "2026-12-14T07:00:00+08:00"


def test_summer_has_no_black_ice_schedule_until_december_but_the_weather_trigger() -> None:
    bi = by_kind(at("2026-07-01T06:00:00+08:00"))[BLACK_ICE]
    assert not bi["active"] and bi["next"] == "2026-12-01T05:00:00+08:00"
    assert bi["weather_trigger"]


def test_off_without_stretches_or_schedule() -> None:
    config = PatrolsConfig(
        stretches=PATROLS.stretches,
        black_ice=BlackIceConfig(stretches=[]),
        congestion=CongestionConfig(stretches=["railway-station"], schedule=[]),
    )
    items = outlook(config, at("2026-12-03T08:15:00+08:00"))
    assert [(o.kind, o.enabled, o.as_json()["next"]) for o in items] == [
        (CONGESTION, False, None),
        (BLACK_ICE, False, None),
    ]
    assert summary(items) == (
        "automations: congestion patrols: off (no schedule); "
        "black-ice patrols: off (no road stretch to watch)"
    )


def test_black_ice_on_the_weather_alone() -> None:
    config = PatrolsConfig(
        stretches=PATROLS.stretches, black_ice=BlackIceConfig(stretches=["nanhu-bridge"], schedule=[])
    )
    bi = by_kind(at("2026-12-03T08:15:00+08:00"), config)[BLACK_ICE]
    assert bi["enabled"] and bi["next"] is None and bi["window"] is None
    assert str(bi["text"]).startswith("black-ice patrols over nanhu-bridge: whenever a nest's weather")
