"""The synthetic city generator (issue 15) and the MAVLink system ids of many nests."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.mavlink.ids import GCS_SYSTEM_ID
from dronectl.domain.config import (
    GROUND_STATION_SYSTEM_ID,
    ConfigError,
    main,
    parse_config,
)
from dronectl.domain.geo import GeoPoint
from dronectl.domain.synthetic_city import grid_shape, synthetic_city_yaml


@pytest.mark.parametrize("count", [1, 2, 5, 16, 64, 256, 600])
def test_generated_city_passes_every_check_at_load(count: int) -> None:
    config = parse_config(synthetic_city_yaml(count), "<generated>")
    assert [n.id for n in config.nests] == list(range(1, count + 1))
    airspace = config.airspace()
    for nest in config.nests:
        pad = GeoPoint(nest.lat, nest.lon)
        assert airspace.contains(pad), nest
        assert airspace.zone_at(pad) is None, nest


def test_grid_is_near_square() -> None:
    assert grid_shape(1) == (1, 1)
    assert grid_shape(16) == (4, 4)
    assert grid_shape(17) == (4, 5)
    assert grid_shape(256) == (16, 16)


def test_system_ids_as_today_up_to_254_then_each_link_its_own_network() -> None:
    config = parse_config(synthetic_city_yaml(600), "<generated>")
    by_id = {n.id: n for n in config.nests}
    assert all(by_id[i].mav_system_id == i and not by_id[i].own_mavlink_network for i in range(1, 245))
    assert by_id[254].mav_system_id == 254
    assert by_id[245].own_mavlink_network and by_id[245].mav_system_id != GCS_SYSTEM_ID
    assert by_id[255].own_mavlink_network
    ids = {n.mav_system_id for n in config.nests}
    assert GCS_SYSTEM_ID not in ids and ids <= set(range(1, 255))


def test_ground_station_id_is_the_adapters_one() -> None:
    assert GROUND_STATION_SYSTEM_ID == GCS_SYSTEM_ID


def test_system_id_245_and_shared_duplicates_are_refused() -> None:
    text = synthetic_city_yaml(3)
    with pytest.raises(ConfigError, match="own MAVLink system id"):
        parse_config(text.replace("- id: 2\n", "- id: 2\n  system_id: 245\n"), "<t>")
    with pytest.raises(ConfigError, match="two nests share system_id 1"):
        parse_config(text.replace("- id: 2\n", "- id: 2\n  system_id: 1\n"), "<t>")
    # beyond 254, a nest's link is its own network: its id may repeat another nest's
    many = synthetic_city_yaml(256).replace("- id: 256\n", "- id: 256\n  system_id: 1\n")
    assert parse_config(many, "<t>").nest(256).mav_system_id == 1


def test_generate_writes_a_file_check_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "city.yaml"
    assert main(["generate", "--nests", "64", "--out", str(out)]) == 0
    assert main(["check", str(out)]) == 0
    assert "ok, 64 nests" in capsys.readouterr().out
    assert main(["generate", "--nests", "0"]) == 1
