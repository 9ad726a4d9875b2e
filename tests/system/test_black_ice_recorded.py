"""The 13 December scenario run with the flights' recorder on (as ``dronectl/app/up.py`` runs it
with a recordings directory): the run leaves what the after-action replay reads, its audit store
(the chosen nest's flight with its track and a ``video_recording`` event), the recording file
and the lookout's snapshot. The first step to replaying that run in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from dronectl.domain.evidence_timeline import recordings
from tests.system import test_black_ice_scenario as december
from tests.system.test_black_ice_scenario import (
    Scenario,
    mosquitto_port,
    nest_ids,
    scenario,
    sim_speed,
    system,
    system_config,
)

__all__ = ["mosquitto_port", "nest_ids", "scenario", "sim_speed", "system", "system_config"]


@pytest.fixture
def recordings_dir(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


async def test_the_run_leaves_a_replayable_record(scenario: Scenario, recordings_dir: Path) -> None:
    await december.test_13_december_black_ice_at_an_accident(scenario)
    [flight] = await scenario.system.fleet.audit.flights(nest_id=3)
    detail = await scenario.system.fleet.audit.flight(flight["flight_id"])
    assert detail is not None and len(detail["track"]) >= 2
    [(flight_id, path, _)] = recordings({"flights": [detail]})
    assert flight_id == flight["flight_id"]
    assert Path(path).parent == recordings_dir
    await scenario.cc.wait_until(lambda: Path(path).stat().st_size > 0, timeout_s=30.0, what="the recording")
