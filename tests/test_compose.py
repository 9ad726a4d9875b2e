"""docker-compose.yml, docker/compose.yaml and the shipped city config describe the same nests,
and docker/compose.yaml passes dronectl's own config loader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dronectl.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_compose_files_agree_with_the_city_config() -> None:
    spec = importlib.util.spec_from_file_location("check_compose", ROOT / "docker" / "check_compose.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.check(ROOT) == []


def test_compose_config_gives_every_nest_an_explicit_endpoint() -> None:
    config = load_config(ROOT / "docker" / "compose.yaml")
    assert len(config.nests) == 16
    urls = {config.mavlink_url(n) for n in config.nests}
    assert len(urls) == 16 and all(u.startswith("udpout://") for u in urls)
