"""Check that docker-compose.yml, docker/compose.yaml and the shipped city config agree, and
that the compose file would fly: dronectl with --no-sim, the docks simulator for the docks, the
audit store and recordings on named volumes, espeak-ng in the image.

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
DOCKS_ADDRESS = f"{SUBNET_PREFIX}7"  # the docks service (python -m sitl --docks-only)
DOCK_PORT_BASE = 18570  # it serves nest N's dock and payload on 18570+N (mavlink.sim_port_base)
CONFIG_IN_IMAGE = "/etc/dronectl/compose.yaml"  # docker/compose.yaml, as the Dockerfile installs it
GCS_LINK_PORT_BASE = 18570  # PX4 px4-rc.mavlink: GCS link binds 18570 + instance (the dock watches it)


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
        expected_dock = f"udpout://{DOCKS_ADDRESS}:{DOCK_PORT_BASE + nest_id}"
        if nest.get("dock_url") != expected_dock:
            problems.append(
                f"docker/compose.yaml: nest {nest_id} dock_url {nest.get('dock_url')!r}, "
                f"expected {expected_dock!r} (the docks service)"
            )
        stripped.append({k: v for k, v in nest.items() if k not in ("mavlink_url", "dock_url")})
    if stripped != city_cfg.get("nests"):
        problems.append(
            "docker/compose.yaml: nests differ from dronectl/data/changchun.yaml "
            "(other than mavlink_url and dock_url)"
        )
    for key in sorted(set(compose_cfg) | set(city_cfg)):
        if key != "nests" and compose_cfg.get(key) != city_cfg.get(key):
            problems.append(f"docker/compose.yaml: section {key!r} differs from dronectl/data/changchun.yaml")
    return problems


def _option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command[:-1] else None


def _mounted_volume(service: dict[str, Any], path: str, named: set[str]) -> str | None:
    """The named volume ``path`` lies on in ``service``, or None (a bind mount, or nothing)."""
    best: tuple[int, str] | None = None
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        under = path == target or path.startswith(target.rstrip("/") + "/")
        if source in named and under and (best is None or len(target) > best[0]):
            best = (len(target), source)
    return best[1] if best else None


def _service_problems(compose: dict[str, Any]) -> list[str]:
    """The dronectl service flies the PX4 containers and the docks service: --no-sim, its audit
    store and recordings on named volumes; the docks service runs the docks-only simulator."""
    problems: list[str] = []
    services: dict[str, Any] = compose.get("services", {})
    named = set(compose.get("volumes") or {})
    dronectl = services.get("dronectl") or {}
    command = [str(part) for part in dronectl.get("command", [])]
    where = "docker-compose.yml: dronectl"
    if command[:2] != ["dronectl", "up"] or "--no-sim" not in command:
        problems.append(f"{where}: command must be `dronectl up --no-sim ...` (no simulator of its own)")
    if _option(command, "--config") != CONFIG_IN_IMAGE:
        problems.append(f"{where}: --config must be {CONFIG_IN_IMAGE}")
    for option in ("--audit", "--recordings", "--snapshots", "--mavlink-keys"):
        value = _option(command, option)
        if value is None or not value.startswith("/"):
            problems.append(f"{where}: {option} must be an absolute path (on a volume)")
        elif _mounted_volume(dronectl, value, named) is None:
            problems.append(f"{where}: {option} {value} is on no named volume: lost with the container")
    if "docks" not in (dronectl.get("depends_on") or {}):
        problems.append(f"{where}: does not depend on the docks service")
    docks = services.get("docks")
    if docks is None:
        return [*problems, "docker-compose.yml: no docks service (real PX4 has no dock, speaker or light)"]
    command = [str(part) for part in docks.get("command", [])]
    where = "docker-compose.yml: docks"
    if command[:3] != ["python", "-m", "sitl"] or "--docks-only" not in command:
        problems.append(f"{where}: command must be `python -m sitl --docks-only ...`")
    if _option(command, "--config") != CONFIG_IN_IMAGE:
        problems.append(f"{where}: --config must be {CONFIG_IN_IMAGE}")
    if _option(command, "--watch-port-base") != str(GCS_LINK_PORT_BASE - 1):
        problems.append(
            f"{where}: --watch-port-base must be {GCS_LINK_PORT_BASE - 1} (PX4's GCS link, nest N)"
        )
    if _option(command, "--host") != "0.0.0.0":
        problems.append(f"{where}: --host must be 0.0.0.0 (dronectl reaches it from another container)")
    address = (docks.get("networks") or {}).get("nests", {}).get("ipv4_address")
    if address != DOCKS_ADDRESS:
        problems.append(f"{where}: address {address}, expected {DOCKS_ADDRESS}")
    return problems


def _dockerfile_problems(text: str) -> list[str]:
    """The image has what `dronectl up` needs of the system: espeak-ng for the loudspeaker."""
    logical = re.sub(r"\\\n", " ", text)  # continued lines joined
    installs = [line for line in logical.splitlines() if re.search(r"apt-get install\b", line)]
    if not any(re.search(r"\bespeak-ng\b", line) for line in installs):
        return ["Dockerfile: espeak-ng is not installed (the loudspeaker's text to speech)"]
    return []


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
        + _service_problems(compose)
        + _dockerfile_problems((root / "Dockerfile").read_text(encoding="utf-8"))
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
