"""The city configuration file: nests, MAVLink endpoints, safety limits, airspace, weather limits,
incident dispatch settings, road patrols (stretches, black-ice and congestion watches) and the
page's base map.

One YAML file serves the service and the simulator. It is validated with pydantic; an error
names the file, the line and the field, e.g.::

    changchun.yaml:14: nests.3.lat: Input should be less than or equal to 90

``python -m dronectl.domain.config check FILE`` validates a file from the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dronectl.domain.dispatch_settings import DEFAULT_SETTINGS as _D
from dronectl.domain.dispatch_settings import DispatchSettings
from dronectl.domain.errors import DronectlError
from dronectl.domain.geo import Airspace, GeoPoint, ViolationKind, distance_m
from dronectl.domain.limits import MAX_NEST_ID
from dronectl.domain.synthetic_city import DEFAULT_SPACING_M, synthetic_city_yaml

DEFAULT_CONFIG_NAME = "changchun.yaml"

Lat = Annotated[float, Field(ge=-90.0, le=90.0)]
Lon = Annotated[float, Field(ge=-180.0, le=180.0)]


class ConfigError(DronectlError):
    """The config file cannot be used; ``str()`` lists every problem with its line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


Loc = tuple[str | int, ...]


class LocatedProblems(ValueError):
    """Problems a validator found deeper inside the model it validates, each with its location
    relative to that model, so the loader can point at the exact YAML line (pydantic alone would
    only name the model the validator sits on)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# MAVLink system ids. The service's own (``adapters.mavlink.ids.GCS_SYSTEM_ID``) is no nest's.
GROUND_STATION_SYSTEM_ID = 245
SHARED_NETWORK_MAX_ID = 254  # nests 1..254 (but 245) are their own system id on one network


def default_system_id(nest_id: int) -> int:
    """Nest N is MAVLink system N on the shared network (as always) up to 254; nest 245 and every
    nest beyond 254 is its own MAVLink network, and its system id cycles over 1..244 (so ids repeat
    across endpoints, and a few MAVSDK instances serve thousands of nests)."""
    if nest_id <= SHARED_NETWORK_MAX_ID and nest_id != GROUND_STATION_SYSTEM_ID:
        return nest_id
    return (nest_id - 1) % (GROUND_STATION_SYSTEM_ID - 1) + 1


class NestConfig(_Model):
    id: int = Field(
        ge=1, le=MAX_NEST_ID, description="Nest number; its MAVLink system id up to 254 unless system_id says"
    )
    name: str = Field(min_length=1, max_length=60)
    lat: Lat
    lon: Lon
    ground_alt_m: float = Field(ge=-500.0, le=9000.0, description="Pad altitude AMSL")
    system_id: int | None = Field(
        default=None,
        ge=1,
        le=SHARED_NETWORK_MAX_ID,
        description="MAVLink system id of the nest's components; default: the nest's id up to 254 "
        "(unique on the shared network), beyond it its link is its own network and ids may repeat",
    )
    mavlink_url: str | None = Field(
        default=None,
        description="How the service reaches this nest; default udpin://<mavlink.host>:<client_port_base+id>",
    )
    dock_url: str | None = Field(
        default=None,
        description=(
            "Where the nest's dock (cover, charger, weather station) and payload (speaker, light) "
            "components are reached when they are not on the autopilot's endpoint, e.g. a real PX4 "
            "at mavlink_url and the docks simulator (python -m sitl --docks-only) here; "
            "udpin://HOST:PORT or udpout://HOST:PORT. Default: the same endpoint as mavlink_url"
        ),
    )
    mavlink_signing: Literal["required", "when_provisioned", "off"] | None = Field(
        default=None,
        description=(
            "MAVLink 2 signing on this nest's link: required (the default once the nest has a key), "
            "when_provisioned (the default without one: unsigned until provisioned), or off"
        ),
    )

    @field_validator("dock_url")
    @classmethod
    def _mavlink_endpoint(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("udpin", "udpout") or not parts.hostname or port is None:
            raise ValueError(f"{url!r} is not udpin://HOST:PORT or udpout://HOST:PORT")
        return url

    @model_validator(mode="after")
    def _dock_apart(self) -> NestConfig:
        if self.dock_url is not None and self.dock_url == self.mavlink_url:
            raise ValueError("dock_url is the autopilot's mavlink_url: leave it out when they share one")
        return self

    @field_validator("system_id")
    @classmethod
    def _not_ours(cls, system_id: int | None) -> int | None:
        if system_id == GROUND_STATION_SYSTEM_ID:
            raise ValueError(f"{GROUND_STATION_SYSTEM_ID} is the service's own MAVLink system id")
        return system_id

    @property
    def mav_system_id(self) -> int:
        return self.system_id if self.system_id is not None else default_system_id(self.id)

    @property
    def own_mavlink_network(self) -> bool:
        """Whether the nest's link is a MAVLink network of its own (its system id may repeat
        another nest's): nest 245 (the service's own id) and every nest beyond 254."""
        return self.id > SHARED_NETWORK_MAX_ID or self.id == GROUND_STATION_SYSTEM_ID


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


# --- dispatch ---------------------------------------------------------------------------------


class DispatchConfig(_Model):
    """The incident dispatch settings (``dronectl.domain.dispatch_settings.DispatchSettings``); the
    defaults are ``DEFAULT_SETTINGS``. See that class for what each one means."""

    auto_launch_max_priority: int = Field(default=_D.auto_launch_max_priority, ge=0, le=5)
    cruise_alt_m: float = Field(default=_D.cruise_alt_m, gt=0.0)
    cruise_speed_mps: float | None = Field(default=_D.cruise_speed_mps, gt=0.0, le=30.0)
    orbit_radius_m: float = Field(default=_D.orbit_radius_m, gt=0.0, le=500.0)
    orbit_speed_mps: float = Field(default=_D.orbit_speed_mps, gt=0.0, le=20.0)
    on_scene_s: float = Field(default=_D.on_scene_s, gt=0.0)
    preflight_s: float = Field(default=_D.preflight_s, ge=0.0)
    cover_open_s: float = Field(default=_D.cover_open_s, ge=0.0)
    arm_s: float = Field(default=_D.arm_s, ge=0.0)
    takeoff_s: float = Field(default=_D.takeoff_s, ge=0.0)
    takeoff_climb_mps: float = Field(default=_D.takeoff_climb_mps, gt=0.0)
    climbed_fraction: float = Field(default=_D.climbed_fraction, gt=0.0, le=1.0)
    leg_overhead_s: float = Field(default=_D.leg_overhead_s, ge=0.0)
    retask_s: float = Field(default=_D.retask_s, ge=0.0)
    idle_priority: int = Field(default=_D.idle_priority, ge=1, le=9)
    dispatch_target_s: float = Field(default=_D.dispatch_target_s, gt=0.0)
    moving_target_s: float = Field(default=_D.moving_target_s, gt=0.0)
    on_scene_target_s: float = Field(default=_D.on_scene_target_s, gt=0.0)
    replan_period_s: float = Field(default=_D.replan_period_s, gt=0.0)

    def settings(self) -> DispatchSettings:
        return DispatchSettings(**self.model_dump())


# --- patrols ----------------------------------------------------------------------------------

StretchId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


class RoadStretchConfig(_Model):
    """A named piece of road a drone patrols along, as a polyline of [lat, lon] points."""

    id: StretchId
    name: str = Field(min_length=1, max_length=80)
    points: list[Vertex] = Field(min_length=2, description="[lat, lon] along the road, in order")
    free_flow_speed_mps: float = Field(
        default=13.0, gt=0.0, le=40.0, description="Traffic speed on the stretch when it flows freely"
    )

    @field_validator("points")
    @classmethod
    def _distinct_points(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        problems: list[tuple[Loc, str]] = [
            ((i,), "the same point as the one before it")
            for i in range(1, len(points))
            if points[i] == points[i - 1]
        ]
        if problems:
            raise LocatedProblems(problems)
        return points


class CronWindowConfig(_Model):
    """A recurring time window: it opens at each time of the five-field cron expression (minute
    hour day-of-month month day-of-week, in the city's timezone) and lasts ``duration_min``."""

    cron: str
    duration_min: int = Field(ge=1, le=24 * 60)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        fields = cron.split()
        if len(fields) != 5:
            raise ValueError(
                f"{cron!r} is not a cron expression: it needs 5 fields "
                f"(minute hour day-of-month month day-of-week), it has {len(fields)}"
            )
        if not croniter.is_valid(cron):
            raise ValueError(f"{cron!r} is not a valid cron expression")
        return cron


class BlackIceConfig(_Model):
    """When a road stretch is at risk of black ice and what a drone that finds ice says."""

    road_temp_max_c: float = Field(default=0.5, ge=-30.0, le=10.0)
    humidity_min_pct: float = Field(default=85.0, ge=0.0, le=100.0)
    precipitation_triggers: bool = True  # rain, snow, sleet on a cold road are a risk, whatever the humidity
    stretches: list[StretchId] = []
    schedule: list[CronWindowConfig] = []
    warning_zh: str = Field(default="前方路面结冰，请减速慢行", min_length=1)
    warning_en: str = Field(default="Black ice ahead, slow down", min_length=1)
    priority: int = Field(default=4, ge=1, le=5)


class CongestionThresholds(_Model):
    """How traffic seen from the air is classed (densities per lane and kilometre)."""

    min_density_veh_per_km: float = Field(default=8.0, ge=0.0)  # below it, a slow car is not a jam
    light_speed_ratio: float = Field(default=0.75, gt=0.0, le=1.0)  # of the free-flow speed
    heavy_speed_ratio: float = Field(default=0.4, gt=0.0, le=1.0)
    standstill_speed_mps: float = Field(default=1.5, ge=0.0)
    light_density_veh_per_km: float = Field(default=20.0, gt=0.0)
    heavy_density_veh_per_km: float = Field(default=45.0, gt=0.0)
    heavy_stopped_fraction: float = Field(default=0.3, gt=0.0, le=1.0)
    standstill_stopped_fraction: float = Field(default=0.6, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> CongestionThresholds:
        problems: list[tuple[Loc, str]] = []
        if self.heavy_speed_ratio >= self.light_speed_ratio:
            problems.append((("heavy_speed_ratio",), "must be below light_speed_ratio"))
        if self.heavy_density_veh_per_km <= self.light_density_veh_per_km:
            problems.append((("heavy_density_veh_per_km",), "must be above light_density_veh_per_km"))
        if self.standstill_stopped_fraction <= self.heavy_stopped_fraction:
            problems.append((("standstill_stopped_fraction",), "must be above heavy_stopped_fraction"))
        if problems:
            raise LocatedProblems(problems)
        return self


class CongestionConfig(_Model):
    """Rush-hour watch over the congestion hot spots."""

    stretches: list[StretchId] = []
    schedule: list[CronWindowConfig] = []
    thresholds: CongestionThresholds = CongestionThresholds()
    standstill_incident_priority: int = Field(default=3, ge=1, le=5)


class PatrolsConfig(_Model):
    stretches: list[RoadStretchConfig] = []
    black_ice: BlackIceConfig = BlackIceConfig()
    congestion: CongestionConfig = CongestionConfig()
    alt_m: float = Field(default=40.0, gt=0.0, description="Above the nest's pad")
    speed_mps: float = Field(default=8.0, gt=0.0, le=20.0)
    handover_margin_s: float = Field(default=120.0, ge=0.0)

    @model_validator(mode="after")
    def _ids(self) -> PatrolsConfig:
        problems: list[tuple[Loc, str]] = []
        first: dict[str, int] = {}
        for i, stretch in enumerate(self.stretches):
            if stretch.id in first:
                problems.append(
                    (
                        ("stretches", i, "id"),
                        f"stretch id {stretch.id!r} already used by stretch {first[stretch.id]}",
                    )
                )
            first.setdefault(stretch.id, i)
        known = ", ".join(sorted(first)) or "none"
        for section, refs in (
            ("black_ice", self.black_ice.stretches),
            ("congestion", self.congestion.stretches),
        ):
            seen: set[str] = set()
            for i, ref in enumerate(refs):
                if ref not in first:
                    problems.append(
                        (
                            (section, "stretches", i),
                            f"no stretch {ref!r} in patrols.stretches (known: {known})",
                        )
                    )
                elif ref in seen:
                    problems.append(((section, "stretches", i), f"stretch {ref!r} listed twice"))
                seen.add(ref)
        if problems:
            raise LocatedProblems(problems)
        return self

    def stretch(self, stretch_id: str) -> RoadStretchConfig:
        for stretch in self.stretches:
            if stretch.id == stretch_id:
                return stretch
        raise KeyError(
            f"no road stretch {stretch_id!r} (stretches: {', '.join(s.id for s in self.stretches)})"
        )


# tile hosts of Chinese commercial maps, whose tiles are GCJ-02 (Amap, Tencent) or BD-09 (Baidu)
OFFSET_TILE_HOSTS = ("autonavi.com", "amap.com", "map.qq.com", "gtimg.com", "map.baidu.com", "bdimg.com")


class BasemapConfig(_Model):
    """The page's base map (``basemap:``): ``none`` (no tiles: the city's outline, as before),
    ``pmtiles`` (one offline PMTiles file of the city, raster or vector, served by the service
    tile by tile) or ``xyz`` (the force's own tile server: a URL template with ``{z}``, ``{x}``,
    ``{y}``, e.g. a WMTS GoogleMapsCompatible layer in REST form). Tiles are Web Mercator.

    ``crs`` says which datum the tiles are drawn on. dronectl's positions are WGS84 and are drawn
    as they are: ``wgs84`` fits WGS84 tiles and China's CGCS2000 ones (Tianditu: they differ by
    centimetres). ``gcj02`` (the offset "Mars" coordinates of most Chinese commercial maps) is
    refused: a drone would be drawn 100-700 m from where it is on such tiles."""

    kind: Literal["none", "pmtiles", "xyz"] = "none"
    path: str | None = None  # pmtiles: the file (relative to the service's working directory)
    url: str | None = None  # xyz: https://tiles.example/{z}/{x}/{y}.png
    attribution: str = ""
    crs: Literal["wgs84", "cgcs2000", "gcj02"] = "wgs84"
    tile_size: Literal[256, 512] = 256
    min_zoom: int = Field(default=0, ge=0, le=22)
    max_zoom: int = Field(default=18, ge=0, le=22)

    @model_validator(mode="after")
    def _complete(self) -> BasemapConfig:
        problems: list[tuple[Loc, str]] = []
        if self.crs == "gcj02":
            problems.append(
                (
                    ("crs",),
                    "GCJ-02 tiles are refused: they are offset 100-700 m from the WGS84 positions the "
                    "drones report, and dronectl does not shift them; use WGS84 or CGCS2000 tiles "
                    "(Tianditu's Web Mercator layers, e.g. vec_w / img_w) instead",
                )
            )
        host = urlsplit(self.url or "").hostname or ""
        offset = next((h for h in OFFSET_TILE_HOSTS if host == h or host.endswith("." + h)), None)
        if offset is not None:
            problems.append(
                (
                    ("url",),
                    f"{offset} serves GCJ-02 (or BD-09) tiles, offset 100-700 m from WGS84: refused, "
                    "as crs gcj02 is; use WGS84 or CGCS2000 tiles (Tianditu's Web Mercator layers)",
                )
            )
        if self.kind == "pmtiles":
            if not self.path:
                problems.append((("path",), "kind pmtiles needs path: the PMTiles file of the city"))
            if self.url is not None:
                problems.append((("url",), "kind pmtiles takes a path, not a url"))
        elif self.kind == "xyz":
            if not self.url:
                problems.append((("url",), "kind xyz needs url: a tile URL template with {z}, {x} and {y}"))
            else:
                missing = [p for p in ("{z}", "{x}", "{y}") if p not in self.url]
                if missing:
                    problems.append((("url",), f"the tile URL template lacks {', '.join(missing)}"))
                if not self.url.startswith(("https://", "http://")):
                    problems.append((("url",), "the tile URL must start with https:// or http://"))
            if self.path is not None:
                problems.append((("path",), "kind xyz takes a url, not a path"))
        elif self.path is not None or self.url is not None:
            problems.append(
                (("kind",), "kind none draws no tiles: set kind pmtiles or xyz, or drop path/url")
            )
        if self.min_zoom > self.max_zoom:
            problems.append((("min_zoom",), f"min_zoom {self.min_zoom} is above max_zoom {self.max_zoom}"))
        if problems:
            raise LocatedProblems(problems)
        return self


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
    dispatch: DispatchConfig = DispatchConfig()
    patrols: PatrolsConfig = PatrolsConfig()
    basemap: BasemapConfig = BasemapConfig()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r} (an IANA name such as Asia/Shanghai)") from exc
        return timezone

    @field_validator("nests")
    @classmethod
    def _unique_ids(cls, nests: list[NestConfig]) -> list[NestConfig]:
        shared = [n for n in nests if not n.own_mavlink_network]  # one MAVLink network: ids unique
        for attr, among in (("id", nests), ("mav_system_id", shared), ("name", nests)):
            seen: set[object] = set()
            for nest in among:
                value = getattr(nest, attr)
                if value in seen:
                    raise ValueError(f"two nests share {attr.replace('mav_', '')} {value!r}")
                seen.add(value)
        return nests

    @model_validator(mode="after")
    def _flyable(self) -> CityConfig:
        """Altitudes under the ceiling; every patrol stretch inside the geofence, clear of every
        no-fly zone (points and the legs between them) and within range of a nest."""
        ceiling = self.safety.altitude_ceiling_m
        problems: list[tuple[Loc, str]] = []
        if self.patrols.alt_m > ceiling:
            problems.append(
                (
                    ("patrols", "alt_m"),
                    f"patrol altitude {self.patrols.alt_m:g} m is above the {ceiling:g} m ceiling",
                )
            )
        if self.dispatch.cruise_alt_m > ceiling:
            problems.append(
                (
                    ("dispatch", "cruise_alt_m"),
                    f"cruise altitude {self.dispatch.cruise_alt_m:g} m is above the {ceiling:g} m ceiling",
                )
            )
        top = max(n.id for n in self.nests)
        for field in ("client_port_base", "sim_port_base"):
            base = getattr(self.mavlink, field)
            if base + top > 65535:
                problems.append(
                    (("mavlink", field), f"nest {top} would need UDP port {base + top}, above 65535")
                )
        if self.patrols.stretches:
            problems += self._stretch_problems()
        if problems:
            raise LocatedProblems(problems)
        return self

    def airspace(self) -> Airspace:
        """The geofence and no-fly zones as geometry (``geo.Airspace``)."""
        return Airspace.from_polygons(
            (self.geofence.name, self.geofence.polygon),
            [(z.name, z.polygon) for z in self.no_fly_zones],
        )

    def _stretch_problems(self) -> list[tuple[Loc, str]]:
        try:
            airspace = self.airspace()
        except ValueError:
            return []  # a broken polygon is its own error
        homes = [GeoPoint(n.lat, n.lon) for n in self.nests]
        problems: list[tuple[Loc, str]] = []
        for i, stretch in enumerate(self.patrols.stretches):
            where: Loc = ("patrols", "stretches", i, "points")
            points = [GeoPoint(lat, lon) for lat, lon in stretch.points]
            bad: set[int] = set()
            for j, point in enumerate(points):
                if not airspace.contains(point):
                    problems.append(((*where, j), f"{point} is outside the geofence {self.geofence.name!r}"))
                    bad.add(j)
                elif (zone := airspace.zone_at(point)) is not None:
                    problems.append(((*where, j), f"{point} is inside the no-fly zone {zone.name!r}"))
                    bad.add(j)
            for j in range(1, len(points)):
                if {j - 1, j} & bad:
                    continue  # said already, of the point
                for v in airspace.path_violations(points[j - 1], points[j]):
                    what = (
                        "leaves the geofence"
                        if v.kind is ViolationKind.LEAVES_GEOFENCE
                        else "crosses the no-fly zone"
                    )
                    problems.append(((*where, j), f"the leg to this point {what} {v.zone_name!r}"))
            far = max(min(distance_m(home, p) for home in homes) for p in points)
            if far > self.safety.max_range_m:
                problems.append(
                    (
                        ("patrols", "stretches", i),
                        f"stretch {stretch.id!r} is {far / 1000:.1f} km from the nearest nest, "
                        f"beyond the {self.safety.max_range_m / 1000:g} km range",
                    )
                )
        return problems

    def nest(self, nest_id: int) -> NestConfig:
        for nest in self.nests:
            if nest.id == nest_id:
                return nest
        raise KeyError(f"no nest {nest_id} in the config (nests: {', '.join(str(n.id) for n in self.nests)})")

    def mavlink_url(self, nest: NestConfig) -> str:
        """The MAVSDK-style URL the service uses for ``nest``."""
        return nest.mavlink_url or f"udpin://{self.mavlink.host}:{self.mavlink.client_port_base + nest.id}"

    def dock_url(self, nest: NestConfig) -> str | None:
        """The endpoint of the nest's dock and payload components when apart from the autopilot's
        (``NestConfig.dock_url``), else None: they share ``mavlink_url``."""
        return nest.dock_url


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
            cause = error.get("ctx", {}).get("error")
            located = cause.problems if isinstance(cause, LocatedProblems) else [((), error["msg"])]
            for sub_loc, msg in located:
                full = (*loc, *sub_loc)
                field = ".".join(str(part) for part in full) or "(top level)"
                problems.append(f"{source}:{_line_for(lines, full)}: {field}: {msg}")
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


USAGE = (
    "usage: python -m dronectl.domain.config check FILE\n"
    "       python -m dronectl.domain.config generate --nests N [--spacing-m M] [--out FILE]\n"
)


def _generate(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dronectl config generate", description="A synthetic city: N nests on a grid in a geofence."
    )
    parser.add_argument("--nests", type=int, required=True, help=f"how many (1..{MAX_NEST_ID})")
    parser.add_argument("--spacing-m", type=float, default=DEFAULT_SPACING_M, help="between neighbours")
    parser.add_argument("--out", default=None, help="file to write (default: standard output)")
    ns = parser.parse_args(args)
    try:
        text = synthetic_city_yaml(ns.nests, spacing_m=ns.spacing_m)
        parse_config(text, "<generated>")  # the same checks as any file: never write one that fails
    except (ValueError, ConfigError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if ns.out is None:
        sys.stdout.write(text)
    else:
        Path(ns.out).write_text(text, encoding="utf-8")
        sys.stderr.write(f"{ns.out}: {ns.nests} nests\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["generate"]:
        return _generate(args[1:])
    if len(args) != 2 or args[0] != "check":
        sys.stderr.write(USAGE)
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
