"""The patrols and dispatch sections of the city config: the shipped ones are valid and lie on the
simulator's avenues; every broken one is refused with its line and a reason."""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest

from dronectl.domain.config import (
    CityConfig,
    ConfigError,
    DispatchConfig,
    PatrolsConfig,
    default_config_path,
    load_config,
    parse_config,
)
from dronectl.domain.dispatch import DEFAULT_SETTINGS, DispatchSettings
from dronectl.domain.geo import GeoPoint, distance_m
from sitl.camera.city import BLOCK_LAT_DEG, BLOCK_LON_DEG, M_PER_DEG_LAT, is_avenue, m_per_deg_lon

GOOD = default_config_path().read_text(encoding="utf-8")


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "city.yaml")
    return info.value


def _line_of(text: str, needle: str, after: str | None = None) -> int:
    lines = text.splitlines()
    start = 0 if after is None else next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def _only(err: ConfigError) -> str:
    assert len(err.problems) == 1, err.problems
    return err.problems[0]


# --- the shipped file -------------------------------------------------------------------------


def test_shipped_patrols_have_black_ice_and_congestion_stretches() -> None:
    patrols = load_config().patrols
    ids = {s.id for s in patrols.stretches}
    assert 5 <= len(ids) <= 8
    assert patrols.black_ice.stretches and set(patrols.black_ice.stretches) <= ids
    assert patrols.congestion.stretches and set(patrols.congestion.stretches) <= ids
    assert {"railway-station", "peoples-square"} <= set(patrols.congestion.stretches)


def _on_avenue(lat: float, lon: float) -> bool:
    """On an E-W avenue (within 1 m of its centre line) or a N-S one, as sitl/camera/city.py draws them."""
    j, i = round(lat / BLOCK_LAT_DEG), round(lon / BLOCK_LON_DEG)
    on_ew = is_avenue(j) and abs(lat - j * BLOCK_LAT_DEG) * M_PER_DEG_LAT < 1.0
    on_ns = is_avenue(i) and abs(lon - i * BLOCK_LON_DEG) * m_per_deg_lon(lat) < 1.0
    return on_ew or on_ns


def test_shipped_stretches_lie_on_the_simulators_avenues_near_a_nest() -> None:
    config = load_config()
    homes = [GeoPoint(n.lat, n.lon) for n in config.nests]
    for stretch in config.patrols.stretches:
        points = stretch.points
        for lat, lon in points:
            assert _on_avenue(lat, lon), (stretch.id, lat, lon)
        for (lat0, lon0), (lat1, lon1) in itertools.pairwise(points):
            # each leg runs along one avenue: constant latitude on an E-W one, longitude on a N-S one
            assert (lat0 == lat1 and _on_avenue(lat0, (lon0 + lon1) / 2)) or (
                lon0 == lon1 and _on_avenue((lat0 + lat1) / 2, lon0)
            ), stretch.id
        length = sum(distance_m(GeoPoint(*a), GeoPoint(*b)) for a, b in itertools.pairwise(points))
        assert 500.0 <= length <= 2000.0, (stretch.id, length)
        nearest = min(distance_m(h, GeoPoint(*p)) for h in homes for p in points)
        assert nearest < 1000.0, stretch.id


def test_shipped_schedules_are_changchun_rush_hours_and_winter_mornings() -> None:
    config = load_config()
    assert config.timezone == "Asia/Shanghai"
    rush = {(w.cron, w.duration_min) for w in config.patrols.congestion.schedule}
    assert rush == {("0 7 * * 1-5", 120), ("0 17 * * 1-5", 120)}
    (winter,) = config.patrols.black_ice.schedule
    assert winter.cron.split()[3] == "12,1,2"


def test_the_dispatch_section_gives_todays_default_settings() -> None:
    assert load_config().dispatch.settings() == DEFAULT_SETTINGS
    assert DispatchConfig().settings() == DEFAULT_SETTINGS
    # every DispatchSettings field can be set from the config, and nothing else
    assert set(DispatchConfig.model_fields) == {f.name for f in dataclasses.fields(DispatchSettings)}


def test_a_dispatch_setting_from_the_file_reaches_the_settings() -> None:
    text = GOOD.replace("auto_launch_max_priority: 2 ", "auto_launch_max_priority: 3 ")
    assert parse_config(text).dispatch.settings().auto_launch_max_priority == 3


def test_a_config_without_patrols_or_dispatch_is_valid() -> None:
    text = GOOD.split("\ndispatch:")[0]
    config = parse_config(text)
    assert config.patrols == PatrolsConfig()
    assert config.patrols.stretches == []
    assert config.dispatch.settings() == DEFAULT_SETTINGS


# --- refusals, each with its line -------------------------------------------------------------


def test_unknown_stretch_referenced_by_black_ice() -> None:
    text = GOOD.replace(
        "stretches: [nanhu-bridge, yitong-river-bridge, yatai-overpass]",
        "stretches: [nanhu-bridge, yitong-bridge, yatai-overpass]",
    )
    problem = _only(_error(text))
    line = _line_of(text, "yitong-bridge,")
    assert problem.startswith(f"city.yaml:{line}: patrols.black_ice.stretches.1: ")
    assert "no stretch 'yitong-bridge' in patrols.stretches" in problem
    assert "known: hongqi-street, nanhu-bridge" in problem


def test_unknown_stretch_referenced_by_congestion() -> None:
    text = GOOD.replace(
        "stretches: [railway-station, peoples-square, hongqi-street]",
        "stretches: [railway-station, peoples-square, hongqi-road]",
    )
    problem = _only(_error(text))
    assert problem.startswith(f"city.yaml:{_line_of(text, 'hongqi-road')}: patrols.congestion.stretches.2: ")
    assert "no stretch 'hongqi-road'" in problem


def test_duplicate_stretch_id() -> None:
    text = GOOD.replace("- id: hongqi-street", "- id: nanhu-bridge")
    err = _error(text)
    line = _line_of(text, "- id: nanhu-bridge", after="id: peoples-square")
    assert err.problems[0] == (
        f"city.yaml:{line}: patrols.stretches.5.id: stretch id 'nanhu-bridge' already used by stretch 0"
    )
    # and the congestion watch now names a stretch that is gone
    assert len(err.problems) == 2
    assert "patrols.congestion.stretches.2: no stretch 'hongqi-street'" in err.problems[1]


def test_stretch_listed_twice() -> None:
    text = GOOD.replace("[nanhu-bridge, yitong-river-bridge, yatai-overpass]", "[nanhu-bridge, nanhu-bridge]")
    problem = _only(_error(text))
    assert "patrols.black_ice.stretches.1: stretch 'nanhu-bridge' listed twice" in problem


def test_stretch_with_one_point() -> None:
    text = GOOD.replace("        - [43.8548, 125.2920]\n", "")
    problem = _only(_error(text))
    line = _line_of(text, "[43.8548, 125.3040]")  # the list's line: where its one point is
    assert problem.startswith(f"city.yaml:{line}: patrols.stretches.0.points: ")
    assert "at least 2 items" in problem


def test_stretch_repeating_a_point() -> None:
    text = GOOD.replace("        - [43.8548, 125.3040]\n", "        - [43.8548, 125.2920]\n")
    problem = _only(_error(text))
    line = _line_of(text, "[43.8548, 125.2920]") + 1
    assert problem == f"city.yaml:{line}: patrols.stretches.0.points.1: the same point as the one before it"


def test_stretch_point_outside_the_geofence() -> None:
    text = GOOD.replace("[43.8240, 125.3520]", "[43.7600, 125.3520]")
    problem = _only(_error(text))
    line = _line_of(text, "[43.7600, 125.3520]")
    assert problem.startswith(f"city.yaml:{line}: patrols.stretches.2.points.0: ")
    assert "43.760000,125.352000 is outside the geofence 'Changchun operating area'" in problem


def test_stretch_point_inside_a_no_fly_zone() -> None:
    # a point in the provincial government compound (43.8905-43.8935 N, 125.3290-125.3340 E)
    text = GOOD.replace("[43.8856, 125.3340]", "[43.8920, 125.3300]")
    problem = _only(_error(text))
    line = _line_of(text, "[43.8920, 125.3300]")
    assert problem == (
        f"city.yaml:{line}: patrols.stretches.4.points.1: "
        "43.892000,125.330000 is inside the no-fly zone 'Provincial government compound'"
    )


def test_stretch_leg_crossing_a_no_fly_zone() -> None:
    # both ends clear, the road between them runs straight through the compound
    text = GOOD.replace(
        "        - [43.8856, 125.3160]\n        - [43.8856, 125.3340]\n",
        "        - [43.8920, 125.3200]\n        - [43.8920, 125.3400]\n",
    )
    problem = _only(_error(text))
    line = _line_of(text, "[43.8920, 125.3400]")
    assert problem == (
        f"city.yaml:{line}: patrols.stretches.4.points.1: "
        "the leg to this point crosses the no-fly zone 'Provincial government compound'"
    )


def test_stretch_beyond_every_nests_range() -> None:
    text = GOOD.replace("max_range_m: 12000.0", "max_range_m: 500.0")
    err = _error(text)
    assert any(
        p.startswith(f"city.yaml:{_line_of(text, '- id: yatai-overpass')}: patrols.stretches.2: ")
        and "beyond the 0.5 km range" in p
        for p in err.problems
    ), err.problems


def test_invalid_cron_expression() -> None:
    text = GOOD.replace('{cron: "0 17 * * 1-5"', '{cron: "0 25 * * 1-5"')
    problem = _only(_error(text))
    assert problem.startswith(
        f"city.yaml:{_line_of(text, '0 25 * * 1-5')}: patrols.congestion.schedule.1.cron: "
    )
    assert "'0 25 * * 1-5' is not a valid cron expression" in problem


def test_cron_expression_with_the_wrong_number_of_fields() -> None:
    text = GOOD.replace('{cron: "0 7 * * 1-5"', '{cron: "0 7 * *"')
    problem = _only(_error(text))
    assert "patrols.congestion.schedule.0.cron" in problem
    assert "it needs 5 fields (minute hour day-of-month month day-of-week), it has 4" in problem


def test_patrol_altitude_above_the_ceiling() -> None:
    text = GOOD.replace("  alt_m: 40.0 ", "  alt_m: 150.0 ")
    problem = _only(_error(text))
    assert problem == (
        f"city.yaml:{_line_of(text, 'alt_m: 150.0')}: patrols.alt_m: "
        "patrol altitude 150 m is above the 120 m ceiling"
    )


def test_dispatch_cruise_altitude_above_the_ceiling() -> None:
    text = GOOD.replace("  cruise_alt_m: 60.0               #", "  cruise_alt_m: 130.0              #")
    problem = _only(_error(text))
    assert problem == (
        f"city.yaml:{_line_of(text, 'cruise_alt_m: 130.0')}: dispatch.cruise_alt_m: "
        "cruise altitude 130 m is above the 120 m ceiling"
    )


def test_dispatch_setting_out_of_range() -> None:
    text = GOOD.replace("auto_launch_max_priority: 2 ", "auto_launch_max_priority: 7 ")
    problem = _only(_error(text))
    assert problem.startswith(f"city.yaml:{_line_of(text, 'auto_launch_max_priority: 7')}: ")
    assert "dispatch.auto_launch_max_priority: Input should be less than or equal to 5" in problem


def test_bad_stretch_id_and_unknown_field() -> None:
    text = GOOD.replace("- id: hongqi-street", "- id: Hongqi Street").replace(
        "    priority: 4\n", "    priority: 4\n    prority: 4\n"
    )
    err = _error(text)
    assert len(err.problems) == 2, err.problems
    assert any(
        p.startswith(
            f"city.yaml:{_line_of(text, 'id: Hongqi Street')}: patrols.stretches.5.id: String should match"
        )
        for p in err.problems
    )
    assert any(
        p.startswith(f"city.yaml:{_line_of(text, 'prority')}: patrols.black_ice.prority: Extra inputs")
        for p in err.problems
    )


def test_congestion_thresholds_out_of_order() -> None:
    text = GOOD.replace("heavy_density_veh_per_km: 45.0", "heavy_density_veh_per_km: 15.0")
    problem = _only(_error(text))
    assert problem == (
        f"city.yaml:{_line_of(text, 'heavy_density_veh_per_km: 15.0')}: "
        "patrols.congestion.thresholds.heavy_density_veh_per_km: must be above light_density_veh_per_km"
    )


def test_unknown_timezone() -> None:
    text = GOOD.replace("timezone: Asia/Shanghai", "timezone: Asia/Changchun")
    problem = _only(_error(text))
    assert problem.startswith(f"city.yaml:{_line_of(text, 'Asia/Changchun')}: timezone: ")
    assert "unknown timezone 'Asia/Changchun'" in problem


def test_several_problems_are_all_listed_each_at_its_line() -> None:
    text = GOOD.replace("[43.8240, 125.3520]", "[43.7600, 125.3520]").replace(
        "  alt_m: 40.0 ", "  alt_m: 150.0 "
    )
    err = _error(text)
    assert len(err.problems) == 2
    lines = sorted(int(re.match(r"city\.yaml:(\d+):", p).group(1)) for p in err.problems)  # type: ignore[union-attr]
    assert lines == sorted([_line_of(text, "[43.7600, 125.3520]"), _line_of(text, "alt_m: 150.0")])


def test_model_validate_outside_the_loader_still_refuses() -> None:
    data = load_config().model_dump()
    data["patrols"]["alt_m"] = 500.0
    with pytest.raises(ValueError, match=r"patrols\.alt_m: patrol altitude 500 m is above the 120 m ceiling"):
        CityConfig.model_validate(data)
