"""The hardware of a whole fleet: one router, one in-process MAVSDK, adapters per nest.

``async with FleetHardware(endpoints) as hw:`` opens every nest's endpoint once; then
``await hw.attach(nest_id)`` returns that nest's flight controller, dock and payload adapters
(waiting until MAVSDK has heard its autopilot). Endpoints come from MAVSDK-style URLs:

- ``udpin://HOST:PORT``: listen there; the nest pushes to it (our simulator, PX4's default links);
- ``udpout://HOST:PORT``: listen on a free port and send to that address only (PX4 SITL in
  docker-compose, whose API link answers whoever talks to it).

A nest may have a second endpoint for its dock and payload components (``dock_endpoints``): a
real PX4 has none, so in docker-compose they come from the docks simulator at another address.
That endpoint signs as the nest's link does, with the same key (provisioning gives the key to the
autopilot only: a dock apart gets its key as the dock's maker says).

Each link signs as its nest's policy says (``adapters.mavlink.link_security``), with the nest's
key from the key store. With ``provision=True`` (the built-in simulator) a nest with no key is
given one at attach: SETUP_SIGNING, then the key is stored, so the links are signed from the first
start without anyone doing anything.

Nests are known by their number; each has a MAVLink system id (by default the same number). Up
to 254 nests the ids are unique: one router and one MAVSDK serve them all, as one network. Beyond
that a nest's link is its own MAVLink network and ids repeat across endpoints; MAVSDK tells
vehicles apart only by system id, so the nests are spread over as many networks (a router and a
MAVSDK each) as it takes for the ids inside each to be unique: ``ceil(N / 244)`` with the
config's default ids. A nest on its own network keeps its signing key under its number
(``nest-{id}.key``), the others under their system id as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import structlog

from adapters.mavlink.camera import MavlinkCamera
from adapters.mavlink.dock import MavlinkDock
from adapters.mavlink.endpoint import NestEndpoint
from adapters.mavlink.ids import CAMERA_COMPID, DOCK_COMPID, PAYLOAD_COMPID
from adapters.mavlink.keystore import KeyStore
from adapters.mavlink.link_security import LinkSecurity, SigningPolicy
from adapters.mavlink.mavsdk_bridge import MavsdkBridge
from adapters.mavlink.payload import MavlinkPayload
from adapters.mavlink.router import Router
from adapters.mavlink.signing import new_key
from adapters.mavlink.watchdog import DEFAULT_TIMEOUT_S
from adapters.mavsdk_flight import MavsdkFlightController
from adapters.protocols import LinkSecurityStatus

log = structlog.get_logger(__name__)

Address = tuple[str, int]
DOCK_COMPONENTS = frozenset({DOCK_COMPID, PAYLOAD_COMPID})  # what a dock_url endpoint serves


@dataclass(frozen=True)
class Endpoint:
    bind: Address
    peer: Address | None


def parse_endpoint(url: str) -> Endpoint:
    """``udpin://127.0.0.1:14541`` or ``udpout://10.0.0.5:14580[?bind=10.0.0.1]`` (the local
    address to send from, on the docks' network; default any); ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("udpin", "udpout") or not parts.hostname or parts.port is None:
        raise ValueError(f"unsupported MAVLink URL {url!r}: use udpin://HOST:PORT or udpout://HOST:PORT")
    if parts.scheme == "udpin":
        return Endpoint((parts.hostname, parts.port), None)
    bind = parse_qs(parts.query).get("bind", ["0.0.0.0"])[-1]
    return Endpoint((bind, 0), (parts.hostname, parts.port))


@dataclass(frozen=True)
class NestAdapters:
    flight: MavsdkFlightController
    dock: MavlinkDock
    payload: MavlinkPayload
    camera: MavlinkCamera
    link_security: Callable[[], LinkSecurityStatus]  # the nest's link: signed, refused, fault

    def close(self) -> None:
        self.flight.close()
        self.dock.close()
        self.payload.close()
        self.camera.close()


@dataclass
class _Network:
    """One MAVLink network: a router and the MAVSDK behind it, whose system ids are unique."""

    bridge: MavsdkBridge
    router: Router
    system_ids: set[int]


class FleetHardware:
    def __init__(
        self,
        endpoints: dict[int, str],
        watchdog_timeout_s: float | None = None,
        heartbeat_interval_s: float = 1.0,
        *,
        keys: KeyStore | None = None,
        signing: dict[int, str | None] | None = None,
        provision: bool = False,
        system_ids: dict[int, int] | None = None,
        own_network: Collection[int] = (),
        dock_endpoints: dict[int, str] | None = None,
    ) -> None:
        """``endpoints``: nest number -> URL. A simulator running faster than real time
        wants our heartbeat faster too (its autopilot counts data-link loss in simulated time).
        ``keys``: the signing keys (none: nothing signed unless a policy requires it);
        ``signing``: nest -> policy name (``required``, ``when_provisioned``, ``off``; None or
        absent: required with a key, when_provisioned without); ``provision``: give a nest with
        no key one at attach (only for nests the operator trusts the link to: the simulator).
        ``system_ids``: nest -> MAVLink system id (absent: the nest's number); ``own_network``:
        the nests whose link is a network of its own (their ids may repeat; keys by nest).
        ``dock_endpoints``: nest -> URL of its dock and payload components where they are not on
        the autopilot's endpoint (absent: they share it)."""
        self._urls = dict(endpoints)
        self._keys = keys
        self._policies = {
            nest: SigningPolicy(name) for nest, name in (signing or {}).items() if name is not None
        }
        self._provision = provision
        self._parsed = {nest: parse_endpoint(url) for nest, url in endpoints.items()}
        self._dock_parsed = {
            nest: parse_endpoint(url) for nest, url in (dock_endpoints or {}).items() if nest in endpoints
        }
        self._sysids = {nest: (system_ids or {}).get(nest, nest) for nest in endpoints}
        self._own = frozenset(own_network)
        self._heartbeat_interval_s = heartbeat_interval_s
        self._watchdog_timeout_s = watchdog_timeout_s if watchdog_timeout_s is not None else DEFAULT_TIMEOUT_S
        self.networks: list[_Network] = []
        self._network_of: dict[int, _Network] = {}
        for nest in endpoints:
            sysid = self._sysids[nest]
            network = next((n for n in self.networks if sysid not in n.system_ids), None)
            if network is None:
                network = self._new_network()
            network.system_ids.add(sysid)
            self._network_of[nest] = network
        if not self.networks:
            self._new_network()
        self.bridge = self.networks[0].bridge  # the first network's (the only one up to 254 nests)
        self.router = self.networks[0].router

    def _new_network(self) -> _Network:
        bridge = MavsdkBridge()
        router = Router(
            bridge,
            heartbeat_interval_s=self._heartbeat_interval_s,
            watchdog_timeout_s=self._watchdog_timeout_s,
        )
        network = _Network(bridge, router, set())
        self.networks.append(network)
        return network

    async def __aenter__(self) -> FleetHardware:
        for network in self.networks:
            network.router.start()
        try:
            for nest, endpoint in self._parsed.items():
                sysid = self._sysids[nest]
                key = self._load_key(nest) if self._keys is not None else None
                on_change = functools.partial(_signing_changed, nest, sysid)
                security = LinkSecurity(key, self._policies.get(nest), on_change=on_change)
                router = self._network_of[nest].router
                await router.add_nest(sysid, endpoint.bind, endpoint.peer, security)
                dock = self._dock_parsed.get(nest)
                if dock is not None:
                    dock_security = LinkSecurity(key, self._policies.get(nest))
                    await router.add_components(sysid, DOCK_COMPONENTS, dock.bind, dock.peer, dock_security)
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every network's router and MAVSDK (``async with`` does it)."""
        for network in self.networks:
            network.router.close()

    def system_id(self, nest_id: int) -> int:
        return self._sysids[nest_id]

    def _key_owner(self, nest_id: int) -> tuple[int, int | None]:
        """The key store's (system id, nest) for the nest: by nest only on its own network."""
        return self._sysids[nest_id], nest_id if nest_id in self._own else None

    def _load_key(self, nest_id: int) -> bytes | None:
        assert self._keys is not None
        sysid, nest = self._key_owner(nest_id)
        return self._keys.load(sysid, nest_id=nest)

    async def attach(self, nest_id: int, timeout_s: float = 15.0) -> NestAdapters:
        """The adapters of one nest; raises ``LinkLost`` if its autopilot is not heard in time."""
        if nest_id not in self._parsed:
            raise KeyError(f"no endpoint for nest {nest_id}")
        network = self._network_of[nest_id]
        router, sysid = network.router, self._sysids[nest_id]
        await self._provision_if_missing(nest_id, timeout_s)
        flight = await MavsdkFlightController.attach(router, network.bridge, sysid, timeout_s)
        dock = MavlinkDock(router.component(sysid, DOCK_COMPID, f"dock {nest_id}"))
        payload = MavlinkPayload(router.component(sysid, PAYLOAD_COMPID, f"payload {nest_id}"))
        camera = MavlinkCamera(router.component(sysid, CAMERA_COMPID, f"camera {nest_id}"))
        return NestAdapters(flight, dock, payload, camera, functools.partial(self.link_security, nest_id))

    def link_security(self, nest_id: int) -> LinkSecurityStatus:
        """What the nest's link accepts and why it refused what it refused."""
        return self._endpoint(nest_id).security.status()

    def _endpoint(self, nest_id: int) -> NestEndpoint:
        return self._network_of[nest_id].router.endpoints[self._sysids[nest_id]]

    async def _provision_if_missing(self, nest_id: int, timeout_s: float) -> None:
        security = self._endpoint(nest_id).security
        if not self._provision or self._keys is None or security.key is not None:
            return
        if security.policy is SigningPolicy.OFF:
            return
        sysid, nest = self._key_owner(nest_id)
        # The key offered before, if a stop came between the nest taking it and our storing it.
        key = self._keys.load_pending(sysid, nest_id=nest) or new_key()
        self._keys.store_pending(sysid, key, nest_id=nest)
        try:
            await self._network_of[nest_id].router.provision(sysid, key, timeout_s)
        except TimeoutError:
            log.error(
                "adapters.fleet.provision_failed",
                nest=nest_id,
                system_id=sysid,
                hint="the nest did not take a key: does it hold one we lost? "
                "(the simulator keeps its keys under its --state-dir)",
            )
            raise
        path = self._keys.store(sysid, key, nest_id=nest)
        log.info("adapters.fleet.provisioned", nest=nest_id, system_id=sysid, key_file=str(path))


def _signing_changed(nest_id: int, system_id: int, signed: bool) -> None:
    log.info("adapters.fleet.signing", nest=nest_id, system_id=system_id, signed=signed)
