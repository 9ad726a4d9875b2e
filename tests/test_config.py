"""The city config: the shipped file is valid, and every broken file says where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from dronectl.domain.config import ConfigError, default_config_path, load_config, main, parse_config

GOOD = default_config_path().read_text(encoding="utf-8")


def test_shipped_config_has_16_nests_in_changchun() -> None:
    config = load_config()
    assert config.city == "Changchun"
    assert len(config.nests) == 16
    assert len({n.mav_system_id for n in config.nests}) == 16
    for nest in config.nests:
        assert 43.7 < nest.lat < 44.1 and 125.1 < nest.lon < 125.6, nest.name
    assert config.mavlink_url(config.nest(7)) == "udpin://127.0.0.1:14547"  # bound to loopback


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "city.yaml")
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_out_of_range_latitude_points_at_its_line_and_field() -> None:
    text = GOOD.replace("lat: 43.85420", "lat: 93.85420")
    err = _error(text)
    assert err.problems == [
        f"city.yaml:{_line_of(text, '93.85420')}: nests.2.lat: Input should be less than or equal to 90"
    ]


def test_unknown_field_is_refused() -> None:
    text = GOOD.replace("  separation_m: 150.0", "  separation_m: 150.0\n  seperation_m: 10")
    err = _error(text)
    assert len(err.problems) == 1
    assert err.problems[0].startswith(f"city.yaml:{_line_of(text, 'seperation_m')}: safety.seperation_m:")
    assert "Extra inputs are not permitted" in err.problems[0]


def test_duplicate_nest_ids_are_refused() -> None:
    err = _error(GOOD.replace("{id: 5,", "{id: 4,"))
    assert any("two nests share id 4" in p for p in err.problems)


def test_every_problem_is_listed() -> None:
    text = GOOD.replace("lat: 43.85420", "lat: 93.85420").replace("max_wind_mps: 12.0", "max_wind_mps: -1")
    err = _error(text)
    assert len(err.problems) == 2
    assert any("weather_limits.max_wind_mps" in p for p in err.problems)


def test_broken_yaml_names_the_line() -> None:
    err = _error("city: Changchun\nnests: [\n  {id: 1\n")
    assert err.problems[0].startswith("city.yaml:")
    assert "not valid YAML" in err.problems[0]


def test_not_a_mapping() -> None:
    assert "must be a mapping" in _error("- 1\n- 2\n").problems[0]


def test_cruise_above_ceiling_is_refused() -> None:
    err = _error(GOOD.replace("default_cruise_alt_m: 60.0", "default_cruise_alt_m: 200.0"))
    assert any("default_cruise_alt_m is above altitude_ceiling_m" in p for p in err.problems)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("ground_alt_m: 208.0", "ground_alt_m: high"))
    assert main(["check", str(bad)]) == 1
    assert "nests.1.ground_alt_m" in capsys.readouterr().err
    assert main(["check", str(default_config_path())]) == 0
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_nest_may_have_its_dock_and_payload_at_an_endpoint_of_their_own() -> None:
    """Real PX4 has no dock component: the dock and payload are reached at ``dock_url`` (the docks
    simulator in docker-compose); without it they share the autopilot's endpoint, as always."""
    nanhu = "ground_alt_m: 221.0"
    assert parse_config(GOOD, "city.yaml").dock_url(load_config().nest(3)) is None
    apart = GOOD.replace(
        nanhu, f'{nanhu}, mavlink_url: "udpout://10.0.0.3:14582", dock_url: "udpout://10.0.0.9:18573"', 1
    )
    config = parse_config(apart, "city.yaml")
    assert config.dock_url(config.nest(3)) == "udpout://10.0.0.9:18573"
    assert config.mavlink_url(config.nest(3)) == "udpout://10.0.0.3:14582"

    bad = GOOD.replace(nanhu, f'{nanhu}, dock_url: "tcp://10.0.0.9:18573"', 1)
    [problem] = _error(bad).problems
    assert f"city.yaml:{_line_of(bad, 'tcp://')}: nests.2.dock_url" in problem and "udpin://" in problem
    same = GOOD.replace(
        nanhu, f'{nanhu}, mavlink_url: "udpout://10.0.0.3:1", dock_url: "udpout://10.0.0.3:1"', 1
    )
    [problem] = _error(same).problems
    assert "dock_url is the autopilot's mavlink_url" in problem
