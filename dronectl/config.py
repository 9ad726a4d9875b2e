"""The city configuration file: nests, MAVLink endpoints, safety limits, airspace, weather limits.

One YAML file serves the service and the simulator. It is validated with pydantic; an error
names the file, the line and the field, e.g.::

    changchun.yaml:14: nests.3.lat: Input should be less than or equal to 90

``python -m dronectl.config check FILE`` validates a file from the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dronectl.errors import DronectlError

DEFAULT_CONFIG_NAME = "changchun.yaml"

Lat = Annotated[float, Field(ge=-90.0, le=90.0)]
Lon = Annotated[float, Field(ge=-180.0, le=180.0)]


class ConfigError(DronectlError):
    """The config file cannot be used; ``str()`` lists every problem with its line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NestConfig(_Model):
    id: int = Field(ge=1, le=250, description="Nest number; its MAVLink system id unless system_id is set")
    name: str = Field(min_length=1, max_length=60)
    lat: Lat
    lon: Lon
    ground_alt_m: float = Field(ge=-500.0, le=9000.0, description="Pad altitude AMSL")
    system_id: int | None = Field(default=None, ge=1, le=250)
    mavlink_url: str | None = Field(
        default=None,
        description="How the service reaches this nest; default udpin://0.0.0.0:<client_port_base+id>",
    )

    @property
    def mav_system_id(self) -> int:
        return self.system_id if self.system_id is not None else self.id


class MavlinkConfig(_Model):
    host: str = "127.0.0.1"
    client_port_base: int = Field(default=14540, ge=1024, le=65000)
    sim_port_base: int = Field(default=18570, ge=1024, le=65000)


class SafetyConfig(_Model):
    altitude_ceiling_m: float = Field(default=120.0, gt=0.0, le=500.0)
    default_cruise_alt_m: float = Field(default=60.0, gt=0.0)
    min_battery_reserve_pct: float = Field(default=25.0, ge=5.0, le=90.0)
    separation_m: float = Field(default=150.0, ge=0.0)
    max_range_m: float = Field(default=12000.0, gt=0.0)

    @model_validator(mode="after")
    def _cruise_below_ceiling(self) -> SafetyConfig:
        if self.default_cruise_alt_m > self.altitude_ceiling_m:
            raise ValueError("default_cruise_alt_m is above altitude_ceiling_m")
        return self


Vertex = tuple[Lat, Lon]


class Polygon(_Model):
    name: str = Field(min_length=1)
    polygon: list[Vertex] = Field(min_length=3, description="[lat, lon] vertices, closed implicitly")


class WeatherLimits(_Model):
    max_wind_mps: float = Field(default=12.0, gt=0.0)
    max_gust_mps: float = Field(default=15.0, gt=0.0)
    max_precipitation_mmph: float = Field(default=4.0, ge=0.0)
    min_air_temp_c: float = -25.0
    max_air_temp_c: float = 45.0


class SimWeather(_Model):
    wind_speed_mps: float = Field(default=3.0, ge=0.0)
    wind_gust_mps: float = Field(default=5.0, ge=0.0)
    wind_from_deg: float = Field(default=270.0, ge=0.0, lt=360.0)
    air_temp_c: float = 5.0
    road_temp_c: float = 4.0
    humidity_pct: float = Field(default=60.0, ge=0.0, le=100.0)
    precipitation_mmph: float = Field(default=0.0, ge=0.0)
    precipitation: Literal["none", "rain", "snow", "sleet", "hail"] = "none"


class CityConfig(_Model):
    city: str
    timezone: str = "UTC"
    nests: list[NestConfig] = Field(min_length=1)
    mavlink: MavlinkConfig = MavlinkConfig()
    safety: SafetyConfig = SafetyConfig()
    geofence: Polygon
    no_fly_zones: list[Polygon] = []
    weather_limits: WeatherLimits = WeatherLimits()
    sim_weather: SimWeather = SimWeather()

    @field_validator("nests")
    @classmethod
    def _unique_ids(cls, nests: list[NestConfig]) -> list[NestConfig]:
        for attr in ("id", "mav_system_id", "name"):
            seen: set[object] = set()
            for nest in nests:
                value = getattr(nest, attr)
                if value in seen:
                    raise ValueError(f"two nests share {attr.replace('mav_', '')} {value!r}")
                seen.add(value)
        return nests

    def nest(self, nest_id: int) -> NestConfig:
        for nest in self.nests:
            if nest.id == nest_id:
                return nest
        raise KeyError(f"no nest {nest_id} in the config (nests: {', '.join(str(n.id) for n in self.nests)})")

    def mavlink_url(self, nest: NestConfig) -> str:
        """The MAVSDK-style URL the service uses for ``nest``."""
        return nest.mavlink_url or f"udpin://0.0.0.0:{self.mavlink.client_port_base + nest.id}"


# --- loading with line numbers ---------------------------------------------------------------


def _walk(node: yaml.Node, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], int]]:
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield from _walk(value_node, (*path, key_node.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*path, index))


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    for end in range(len(loc), -1, -1):
        key = tuple(str(part) for part in loc[:end])
        if key in lines:
            return lines[key]
    return 1


def parse_config(text: str, source: str = "<config>") -> CityConfig:
    """Validate YAML text; raise :class:`ConfigError` naming line and field of every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(source, [f"{source}{line}: not valid YAML: {problem}"]) from exc
    if node is None or not isinstance(data, dict):
        raise ConfigError(source, [f"{source}:1: the config must be a mapping (city, nests, ...)"])
    lines = {tuple(str(p) for p in path): line for path, line in _walk(node, ())}
    try:
        return CityConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{source}:{_line_for(lines, loc)}: {field}: {error['msg']}")
        raise ConfigError(source, problems) from exc


def default_config_path() -> Path:
    return Path(str(resources.files("dronectl.data").joinpath(DEFAULT_CONFIG_NAME)))


def load_config(path: str | Path | None = None) -> CityConfig:
    """Load and validate a config file; the shipped Changchun config when ``path`` is None."""
    file = Path(path) if path is not None else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [f"{file}: cannot read: {exc.strerror}"]) from exc
    return parse_config(text, str(file))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        sys.stderr.write("usage: python -m dronectl.config check FILE\n")
        return 2
    try:
        config = load_config(args[1])
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"{args[1]}: ok, {len(config.nests)} nests\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
