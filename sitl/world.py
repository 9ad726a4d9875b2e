"""The simulated fleet: N nests in one asyncio loop, stepped together in simulated time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import structlog

from dronectl.domain.config import CityConfig, NestConfig, load_config
from sitl.camera import SceneState
from sitl.clock import SimClock
from sitl.environment import GeoPoint, Precipitation, Weather
from sitl.gcs import GCS_REMOTE_PORT
from sitl.nest import NestMode, NestSite, SimNest

log = structlog.get_logger(__name__)

TICK_REAL_S = 0.02  # the fleet is stepped every 20 ms of real time


def make_sites(
    config: CityConfig | None = None,
    count: int | None = None,
    nest_ids: Iterable[int] | None = None,
    sim_port_base: int | None = None,
    client_port_base: int | None = None,
    host: str | None = None,
    watch_port_base: int | None = None,
    watch_host: str | None = None,
    gcs_port_base: int | None = None,
    gcs_remote_port: int = GCS_REMOTE_PORT,
) -> list[NestSite]:
    """Nest sites from the city config (the shipped Changchun one by default).

    Nest N binds ``host:sim_port_base+N`` and pushes to ``host:client_port_base+N``; the bases
    default to the config's ``mavlink`` section, so endpoints are the same from run to run.
    ``watch_port_base`` (docks-only nests): nest N's dock listens to its real autopilot at
    ``watch_host:watch_port_base+N``; the host defaults to the one the nest's ``udpout://``
    mavlink_url dials (its PX4 container), else the config's ``mavlink.host``.
    With ``gcs_port_base``, nest N also has a PX4-GCS-style link (``sitl.gcs``) bound to
    ``host:gcs_port_base+N`` pushing to ``host:gcs_remote_port`` (14550, as every PX4 SITL instance).
    """
    config = config or load_config()
    nests = config.nests
    if nest_ids is not None:
        wanted = set(nest_ids)
        unknown = wanted - {n.id for n in nests}
        if unknown:
            raise ValueError(f"no nest {sorted(unknown)} in the config")
        nests = [n for n in nests if n.id in wanted]
    if count is not None:
        if not 1 <= count <= len(nests):
            raise ValueError(f"--nests must be between 1 and {len(nests)}")
        nests = nests[:count]
    sim_base = sim_port_base if sim_port_base is not None else config.mavlink.sim_port_base
    client_base = client_port_base if client_port_base is not None else config.mavlink.client_port_base
    bind_host = host or config.mavlink.host
    return [
        NestSite(
            nest_id=n.id,
            system_id=n.mav_system_id,
            name=n.name,
            home=GeoPoint(n.lat, n.lon, n.ground_alt_m),
            bind=(bind_host, sim_base + n.id),
            remote=(bind_host, client_base + n.id),
            watch=(
                (_watch_host(config, n, watch_host), watch_port_base + n.id)
                if watch_port_base is not None
                else None
            ),
            gcs_bind=(bind_host, gcs_port_base + n.id) if gcs_port_base is not None else None,
            gcs_remote=(bind_host, gcs_remote_port) if gcs_port_base is not None else None,
        )
        for n in nests
    ]


def _watch_host(config: CityConfig, nest: NestConfig, watch_host: str | None) -> str:
    if watch_host:
        return watch_host
    url = urlsplit(nest.mavlink_url or "")
    if url.scheme == "udpout" and url.hostname:
        return url.hostname
    return config.mavlink.host


def weather_from_config(config: CityConfig) -> Weather:
    w = config.sim_weather
    return Weather(
        wind_speed_mps=w.wind_speed_mps,
        wind_gust_mps=w.wind_gust_mps,
        wind_from_deg=w.wind_from_deg,
        air_temp_c=w.air_temp_c,
        road_temp_c=w.road_temp_c,
        humidity_pct=w.humidity_pct,
        precipitation_mmph=w.precipitation_mmph,
        precipitation=Precipitation[w.precipitation.upper()],
    )


class SimWorld:
    """Runs nests until closed. ``async with SimWorld(sites) as world: ...``"""

    def __init__(
        self,
        sites: list[NestSite],
        speed: float = 1.0,
        weather: Weather | None = None,
        state_dir: Path | None = None,
        mode: NestMode = NestMode.ALL,
    ) -> None:
        """``mode``: which components every nest runs (``sitl.nest.NestMode``)."""
        self.clock = SimClock(speed)
        self.mode = mode
        base = weather or Weather()
        self.scene = SceneState()  # one city for every camera: an incident is seen from any drone
        self.nests: dict[int, SimNest] = {
            site.nest_id: SimNest(
                site, self.clock, Weather(**vars(base)), scene=self.scene, state_dir=state_dir, mode=mode
            )
            for site in sites
        }
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0

    def nest(self, nest_id: int) -> SimNest:
        try:
            return self.nests[nest_id]
        except KeyError:
            raise KeyError(f"no simulated nest {nest_id}") from None

    def mavsdk_url(self, nest_id: int) -> str:
        """URL for MAVSDK's ``add_any_connection``: listen where the nest pushes."""
        remote = self.nest(nest_id).site.remote
        assert remote is not None
        return f"udpin://{remote[0]}:{remote[1]}"

    def pymavlink_url(self, nest_id: int) -> str:
        remote = self.nest(nest_id).site.remote
        assert remote is not None
        return f"udpin:{remote[0]}:{remote[1]}"

    def describe(self, nest_id: int) -> dict[str, object]:
        """The JSON line ``python -m sitl`` prints for a nest."""
        nest = self.nest(nest_id)
        site = nest.site
        out: dict[str, object] = {
            "id": site.nest_id,
            "name": site.name,
            "system_id": site.system_id,
            "lat": site.home.lat_deg,
            "lon": site.home.lon_deg,
            "alt_amsl_m": site.home.alt_amsl_m,
            "mavsdk_url": self.mavsdk_url(nest_id),
            "pymavlink_url": self.pymavlink_url(nest_id),
            "udpout_url": f"udpout://{site.bind[0]}:{site.bind[1]}",
            "sim_endpoint": f"{site.bind[0]}:{site.bind[1]}",
            "mode": nest.mode.value,
        }
        if site.watch is not None:
            out["watch"] = f"{site.watch[0]}:{site.watch[1]}"
        if site.gcs_bind is not None and site.gcs_remote is not None:
            out["gcs_endpoint"] = f"{site.gcs_bind[0]}:{site.gcs_bind[1]}"
            out["gcs_remote"] = f"{site.gcs_remote[0]}:{site.gcs_remote[1]}"
        return out

    async def __aenter__(self) -> SimWorld:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        for nest in self.nests.values():
            await nest.open()
        self._task = asyncio.create_task(self._run(), name="sitl.world.tick")
        log.info("sitl.started", nests=len(self.nests), speed=self.clock.speed)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for nest in self.nests.values():
            nest.close()

    async def wait(self) -> None:
        """Until the tick task ends (it only ends by error or cancellation)."""
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            now_s = self.clock.now()
            for nest in self.nests.values():
                nest.step(now_s)
            self.ticks += 1
            next_tick += TICK_REAL_S
            delay = next_tick - loop.time()
            if delay < 0:  # overloaded: skip the missed ticks instead of bursting
                next_tick = loop.time()
                delay = 0
            await asyncio.sleep(delay)
