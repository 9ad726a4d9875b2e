"""The hardware of a whole fleet: one router, one in-process MAVSDK, adapters per nest.

``async with FleetHardware(endpoints) as hw:`` opens every nest's endpoint once; then
``await hw.attach(system_id)`` returns that nest's flight controller, dock and payload adapters
(waiting until MAVSDK has heard its autopilot). Endpoints come from MAVSDK-style URLs:

- ``udpin://HOST:PORT``: listen there; the nest pushes to it (our simulator, PX4's default links);
- ``udpout://HOST:PORT``: listen on a free port and send to the nest until it answers (PX4 SITL in
  docker-compose, whose API link answers whoever talks to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from adapters.mavlink.camera import MavlinkCamera
from adapters.mavlink.dock import MavlinkDock
from adapters.mavlink.ids import CAMERA_COMPID, DOCK_COMPID, PAYLOAD_COMPID
from adapters.mavlink.mavsdk_bridge import MavsdkBridge
from adapters.mavlink.payload import MavlinkPayload
from adapters.mavlink.router import Router
from adapters.mavlink.watchdog import DEFAULT_TIMEOUT_S
from adapters.mavsdk_flight import MavsdkFlightController

Address = tuple[str, int]


@dataclass(frozen=True)
class Endpoint:
    bind: Address
    peer: Address | None


def parse_endpoint(url: str) -> Endpoint:
    """``udpin://0.0.0.0:14541`` or ``udpout://10.0.0.5:14580``; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("udpin", "udpout") or not parts.hostname or parts.port is None:
        raise ValueError(f"unsupported MAVLink URL {url!r}: use udpin://HOST:PORT or udpout://HOST:PORT")
    if parts.scheme == "udpin":
        return Endpoint((parts.hostname, parts.port), None)
    return Endpoint(("0.0.0.0", 0), (parts.hostname, parts.port))


@dataclass(frozen=True)
class NestAdapters:
    flight: MavsdkFlightController
    dock: MavlinkDock
    payload: MavlinkPayload
    camera: MavlinkCamera

    def close(self) -> None:
        self.dock.close()
        self.payload.close()
        self.camera.close()


class FleetHardware:
    def __init__(
        self,
        endpoints: dict[int, str],
        watchdog_timeout_s: float | None = None,
        heartbeat_interval_s: float = 1.0,
    ) -> None:
        """``endpoints``: MAVLink system id -> URL. A simulator running faster than real time
        wants our heartbeat faster too (its autopilot counts data-link loss in simulated time)."""
        self._urls = dict(endpoints)
        self._parsed = {sysid: parse_endpoint(url) for sysid, url in endpoints.items()}
        self.bridge = MavsdkBridge()
        self.router = Router(
            self.bridge,
            heartbeat_interval_s=heartbeat_interval_s,
            watchdog_timeout_s=watchdog_timeout_s if watchdog_timeout_s is not None else DEFAULT_TIMEOUT_S,
        )

    async def __aenter__(self) -> FleetHardware:
        self.router.start()
        try:
            for sysid, endpoint in self._parsed.items():
                await self.router.add_nest(sysid, endpoint.bind, endpoint.peer)
        except BaseException:
            self.router.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.router.close()

    async def attach(self, system_id: int, timeout_s: float = 15.0) -> NestAdapters:
        """The adapters of one nest; raises TimeoutError if its autopilot is not heard in time."""
        if system_id not in self._parsed:
            raise KeyError(f"no endpoint for MAVLink system {system_id}")
        flight = await MavsdkFlightController.attach(self.router, self.bridge, system_id, timeout_s)
        dock = MavlinkDock(self.router.component(system_id, DOCK_COMPID, f"dock {system_id}"))
        payload = MavlinkPayload(self.router.component(system_id, PAYLOAD_COMPID, f"payload {system_id}"))
        camera = MavlinkCamera(self.router.component(system_id, CAMERA_COMPID, f"camera {system_id}"))
        return NestAdapters(flight, dock, payload, camera)
