"""The coverage grid agrees with the dispatcher's own model, and the CLI writes the PNG and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import cv2
import pytest

from dronectl.domain.config import load_config
from dronectl.domain.dispatch import Candidate, DispatchSettings, SceneRequest, plan
from dronectl.domain.dispatch.coverage import coverage_grid
from dronectl.domain.energy import Wind
from dronectl.domain.geo import GeoPoint
from dronectl.transports.web.coverage_image import main
from tests.dispatch.fleet_fixtures import CONFIG, POLICY, ready

S = DispatchSettings()


@pytest.mark.parametrize("wind", [Wind(0.0, 0.0), Wind(8.0, 290.0)])
def test_grid_cells_match_the_planner_on_every_ready_nest(wind: Wind) -> None:
    grid = coverage_grid(CONFIG, wind=wind, cell_m=250.0)
    weather = ready(1).weather
    assert weather is not None
    reading = replace(
        weather, wind_speed_mps=wind.speed_mps, wind_gust_mps=wind.speed_mps, wind_from_deg=wind.from_deg
    )
    checked = 0
    for row in range(3, len(grid.lats), 9):
        for col in range(3, len(grid.lons), 9):
            scene = GeoPoint(float(grid.lats[row]), float(grid.lons[col]))
            candidates = [Candidate(ready(n.id, battery_pct=100.0, weather=reading)) for n in CONFIG.nests]
            p = plan(SceneRequest("c", scene, 1), candidates, POLICY, S)
            cell = float(grid.time_s[row, col])
            if p.chosen is None:
                assert math.isnan(cell), (scene, cell)
            else:
                assert cell == pytest.approx(p.chosen.time_to_scene_s, rel=0.01, abs=1.0), scene
                if grid.nest[row, col] != p.chosen.nest_id:  # a near tie between two nests
                    other = p.option(int(grid.nest[row, col]))
                    assert other is not None and other.time_to_scene_s == pytest.approx(cell, rel=0.01)
                checked += 1
    assert checked > 50


def test_no_fly_zones_and_the_outside_are_never_covered() -> None:
    grid = coverage_grid(CONFIG, cell_m=250.0)
    airfield = CONFIG.no_fly_zones[0].polygon
    lat = sum(p[0] for p in airfield) / len(airfield)
    lon = sum(p[1] for p in airfield) / len(airfield)
    assert math.isnan(grid.time_at(lat, lon))
    nest7 = CONFIG.nest(7)
    assert grid.time_at(nest7.lat, nest7.lon) < 70.0  # readiness and a few metres


def test_cli_writes_the_png_and_the_json(tmp_path: Path) -> None:
    out = tmp_path / "img" / "coverage.png"
    assert main(["--out", str(out), "--cell-m", "400"]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["rows"] == len(data["time_to_scene_s"]) and data["cols"] == len(data["time_to_scene_s"][0])
    assert len(data["nests"]) == len(load_config().nests) == 16
    assert 0 < data["stats"]["within_target_pct"] <= data["stats"]["reached_pct"] <= 100
