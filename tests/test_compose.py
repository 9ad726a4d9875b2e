"""docker-compose.yml, docker/compose.yaml and the shipped city config describe the same nests,
and docker/compose.yaml passes dronectl's own config loader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from dronectl.domain.config import load_config

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


def test_the_ha_profile_runs_two_instances_on_one_postgresql() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    ha = {name for name, service in services.items() if "ha" in service.get("profiles", [])}
    assert ha == {"postgres", "dronectl-a", "dronectl-b"}
    assert "profiles" not in services["dronectl"]  # `docker compose up` as before

    def option(command: list[str], name: str) -> str:
        return command[command.index(name) + 1]

    commands = [services[name]["command"] for name in ("dronectl-a", "dronectl-b")]
    audits = {option(c, "--audit") for c in commands}
    assert len(audits) == 1 and audits.pop().startswith("postgresql://dronectl@postgres:")  # no password
    assert {option(c, "--instance-id") for c in commands} == {"dronectl-a", "dronectl-b"}
    assert len({option(c, "--audit-spool") for c in commands}) == 2  # each instance its own spool
    assert all("--no-sim" in c for c in commands)
    for name in ("dronectl-a", "dronectl-b"):
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
