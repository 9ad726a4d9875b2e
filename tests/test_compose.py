"""docker-compose.yml, docker/compose.yaml and the shipped city config describe the same nests,
and docker/compose.yaml passes dronectl's own config loader."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from dronectl.domain.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _checker() -> Any:
    spec = importlib.util.spec_from_file_location("check_compose", ROOT / "docker" / "check_compose.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return compose


def test_compose_files_agree_with_the_city_config() -> None:
    assert _checker().check(ROOT) == []


def test_the_compose_file_would_fly() -> None:
    """Issue 18: dronectl with no simulator of its own, the docks from the docks-only simulator,
    the audit store and recordings on named volumes, espeak-ng in the image."""
    compose = _compose()
    services = compose["services"]
    command = services["dronectl"]["command"]
    assert command[:3] == ["dronectl", "up", "--no-sim"]
    assert services["docks"]["command"][:4] == ["python", "-m", "sitl", "--docks-only"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in services["dronectl"]["volumes"]}
    assert volumes["/var/lib/dronectl-state"] in compose["volumes"]
    assert volumes["/var/lib/dronectl-recordings"] in compose["volumes"]
    audit = command[command.index("--audit") + 1]
    recordings = command[command.index("--recordings") + 1]
    assert audit.startswith("/var/lib/dronectl-state/") and recordings.startswith(
        "/var/lib/dronectl-recordings/"
    )
    assert not any(part.startswith("/tmp") for part in command)
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"apt-get install[^\n]*espeak-ng", dockerfile)


def test_the_check_names_what_would_not_fly() -> None:
    checker = _checker()
    compose = _compose()
    compose["services"]["dronectl"]["command"].remove("--no-sim")
    command = compose["services"]["dronectl"]["command"]
    command[command.index("--audit") + 1] = "/tmp/audit.sqlite3"
    compose["services"]["docks"]["command"].remove("--docks-only")
    problems = checker._service_problems(compose)
    assert any("--no-sim" in p for p in problems), problems
    assert any("--audit /tmp/audit.sqlite3 is on no named volume" in p for p in problems), problems
    assert any("--docks-only" in p for p in problems), problems
    del compose["services"]["docks"]
    assert any("no docks service" in p for p in checker._service_problems(compose))
    assert checker._dockerfile_problems("FROM python:3.11-slim\nRUN apt-get install -y tmux\n") == [
        "Dockerfile: espeak-ng is not installed (the loudspeaker's text to speech)"
    ]
    assert (
        checker._dockerfile_problems("RUN apt-get update \\\n  && apt-get install -y \\\n  espeak-ng\n") == []
    )


def test_compose_config_reaches_every_dock_at_the_docks_service() -> None:
    config = load_config(ROOT / "docker" / "compose.yaml")
    docks = {config.dock_url(n) for n in config.nests}
    assert docks == {f"udpout://10.201.0.7:{18570 + n.id}" for n in config.nests}


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
