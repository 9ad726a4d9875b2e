"""Check that docker-compose.yml, docker/compose.yaml and the shipped city config agree.

    python3 docker/check_compose.py [REPO_ROOT]

Needs only PyYAML (Debian's docker-compose package brings it), so .ci/compose-check can run it
before any virtualenv exists. When ``dronectl`` is importable it also validates docker/compose.yaml
with the service's own config loader. Exit status 0 when all agree; every mismatch is listed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

NEST_COUNT = 16
SUBNET_PREFIX = "10.201.0."
API_LINK_PORT_BASE = 14580  # PX4 px4-rc.mavlink: API/offboard link binds 14580 + instance
COORD_TOLERANCE = 1e-6


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _px4_problems(compose: dict[str, Any], nests: dict[int, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    services: dict[str, Any] = compose.get("services", {})
    px4 = sorted(name for name in services if re.fullmatch(r"px4-\d\d", name))
    if len(px4) != NEST_COUNT:
        problems.append(f"docker-compose.yml: {len(px4)} px4-NN services, expected {NEST_COUNT}")
    for name in px4:
        nest_id = int(name[4:])
        service = services[name]
        where = f"docker-compose.yml: {name}"
        nest = nests.get(nest_id)
        if nest is None:
            problems.append(f"{where}: no nest {nest_id} in the city config")
            continue
        command = [str(part) for part in service.get("command", [])]
        if "-i" not in command or command.index("-i") + 1 >= len(command):
            problems.append(f"{where}: command has no '-i INSTANCE'")
        elif command[command.index("-i") + 1] != str(nest_id - 1):
            problems.append(f"{where}: instance {command[command.index('-i') + 1]}, expected {nest_id - 1}")
        env = service.get("environment", {})
        if not isinstance(env, dict):
            problems.append(f"{where}: environment must be a mapping")
            continue
        if env.get("PX4_SIM_MODEL") != "sihsim_quadx":
            problems.append(f"{where}: PX4_SIM_MODEL {env.get('PX4_SIM_MODEL')!r} is not 'sihsim_quadx'")
        for var, key in (("PX4_HOME_LAT", "lat"), ("PX4_HOME_LON", "lon"), ("PX4_HOME_ALT", "ground_alt_m")):
            try:
                value = float(env[var])
            except (KeyError, TypeError, ValueError):
                problems.append(f"{where}: {var} missing or not a number")
                continue
            if abs(value - float(nest[key])) > COORD_TOLERANCE:
                problems.append(f"{where}: {var}={value} but nest {nest_id} {key} is {nest[key]}")
        address = service.get("networks", {}).get("nests", {}).get("ipv4_address")
        if address != f"{SUBNET_PREFIX}{100 + nest_id}":
            problems.append(f"{where}: address {address}, expected {SUBNET_PREFIX}{100 + nest_id}")
    return problems


def _config_problems(compose_cfg: dict[str, Any], city_cfg: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    nests = compose_cfg.get("nests", [])
    stripped = []
    for nest in nests:
        nest_id = int(nest["id"])
        expected = f"udpout://{SUBNET_PREFIX}{100 + nest_id}:{API_LINK_PORT_BASE + nest_id - 1}"
        if nest.get("mavlink_url") != expected:
            problems.append(
                f"docker/compose.yaml: nest {nest_id} mavlink_url {nest.get('mavlink_url')!r}, "
                f"expected {expected!r}"
            )
        stripped.append({k: v for k, v in nest.items() if k != "mavlink_url"})
    if stripped != city_cfg.get("nests"):
        problems.append(
            "docker/compose.yaml: nests differ from dronectl/data/changchun.yaml (other than mavlink_url)"
        )
    for key in sorted(set(compose_cfg) | set(city_cfg)):
        if key != "nests" and compose_cfg.get(key) != city_cfg.get(key):
            problems.append(f"docker/compose.yaml: section {key!r} differs from dronectl/data/changchun.yaml")
    return problems


def _loader_problems(path: Path) -> list[str]:
    try:
        from dronectl.domain.config import ConfigError, load_config
    except ImportError:
        return []  # not installed here (CI runs this before the virtualenv); the YAML checks still ran
    try:
        load_config(path)
    except ConfigError as exc:
        return [str(exc)]
    return []


def check(root: Path) -> list[str]:
    city_cfg = _load(root / "dronectl" / "data" / "changchun.yaml")
    compose_cfg = _load(root / "docker" / "compose.yaml")
    compose = _load(root / "docker-compose.yml")
    nests = {int(n["id"]): n for n in city_cfg["nests"]}
    return (
        _px4_problems(compose, nests)
        + _config_problems(compose_cfg, city_cfg)
        + _loader_problems(root / "docker" / "compose.yaml")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[1]
    problems = check(root)
    for problem in problems:
        sys.stderr.write(problem + "\n")
    if not problems:
        sys.stdout.write("docker-compose.yml, docker/compose.yaml and changchun.yaml agree (16 nests)\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
