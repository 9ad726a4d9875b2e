"""The router: one UDP endpoint per nest, shared by the MAVSDK side and the pymavlink side.

A nest's components (autopilot, dock, payload, camera) share one network endpoint, so dronectl
opens each nest's port once, here, and routes:

- nest -> us: each message is parsed once by the nest's endpoint. Frames from the components
  MAVSDK serves (autopilot, gimbal) go, byte for byte, to the one in-process MAVSDK
  (``AutopilotBridge``); every message also goes to the ``ComponentLink`` an adapter opened for
  its component (the dock, payload and camera adapters, and our own command sender for the
  autopilot).
- MAVSDK -> nests: MAVSDK serves every nest through one raw connection. Each frame it emits is
  routed by its ``target_system`` to that nest's endpoint; broadcasts (its HEARTBEAT, target 0)
  and frames the dialect cannot decode go to every nest.
- pymavlink adapters -> nest: sent through the endpoint with dronectl's own component id.

A nest whose dock and payload are not on the autopilot's endpoint (a real PX4 with the docks
simulator beside it, ``NestConfig.dock_url``) gets a second endpoint for those components
(``add_components``): their links send through it, and only what it hears from them reaches
them; the same components heard on the autopilot's endpoint (a PX4 forwarding between its links)
are ignored, never mixed in.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

import structlog

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink import loop_lag
from adapters.mavlink.command import RetryPolicy
from adapters.mavlink.endpoint import Address, NestEndpoint
from adapters.mavlink.frames import Frame, Unreadable, split_frames
from adapters.mavlink.ids import AUTOPILOT_COMPID, DRONECTL_COMPONENT_ID, GCS_SYSTEM_ID, MAVSDK_COMPONENTS
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.link_security import LinkSecurity
from adapters.mavlink.message import MAVLinkMessage, new_parser
from adapters.mavlink.signing import KEY_LEN, timestamp_now
from adapters.mavlink.watchdog import DEFAULT_TIMEOUT_S

log = structlog.get_logger(__name__)

TICK_S = 0.05  # provisioning: how often to look whether the nest took the key
RESEND_TICKS = 20  # and resend SETUP_SIGNING every second until it did


class AutopilotBridge(Protocol):
    """The MAVSDK side, seen from the router (``adapters.mavlink.mavsdk_bridge``)."""

    def start(self, transmit: Callable[[bytes], None]) -> None:
        """Begin; ``transmit`` is called on the event loop with each frame MAVSDK sends."""

    def receive(self, frame: bytes) -> None:
        """One complete MAVLink frame from a nest, for MAVSDK."""

    def close(self) -> None: ...


class Router:
    def __init__(
        self,
        bridge: AutopilotBridge | None = None,
        *,
        gcs_system_id: int = GCS_SYSTEM_ID,
        gcs_component_id: int = DRONECTL_COMPONENT_ID,
        heartbeat_interval_s: float = 1.0,
        watchdog_timeout_s: float = DEFAULT_TIMEOUT_S,
        bridged_components: frozenset[int] = MAVSDK_COMPONENTS,
    ) -> None:
        self._bridge = bridge
        self.gcs_system_id = gcs_system_id
        self.gcs_component_id = gcs_component_id
        self._heartbeat_interval_s = heartbeat_interval_s
        self._watchdog_timeout_s = watchdog_timeout_s
        self._bridged = bridged_components
        self.endpoints: dict[int, NestEndpoint] = {}  # by the nest's MAVLink system id
        # a nest's components served apart from its autopilot: (system id, component id) -> endpoint
        self.component_endpoints: dict[tuple[int, int], NestEndpoint] = {}
        self._links: dict[tuple[int, int], ComponentLink] = {}
        self._bridge_parser = new_parser()
        self._started = False
        self._lag: loop_lag.LoopLagMonitor | None = None
        self.bridge_rx_frames = 0  # nest -> MAVSDK
        self.bridge_tx_frames = 0  # MAVSDK -> nests (counted once per frame)
        self.bridge_tx_unroutable = 0  # addressed to a system no endpoint serves

    @property
    def bridge(self) -> AutopilotBridge | None:
        return self._bridge

    async def __aenter__(self) -> Router:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        if not self._started:
            if self._bridge is not None:
                self._bridge.start(self._from_bridge)
            self._lag = loop_lag.monitor()  # the watchdogs judge silence against it
            self._lag.start()
        self._started = True

    async def aclose(self) -> None:
        """``close``, with MAVSDK destroyed on the bounded executor when the bridge can do that."""
        aclose = getattr(self._bridge, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            self.close()

    def close(self) -> None:
        if self._lag is not None:
            self._lag.stop()
            self._lag = None
        if self._bridge is not None:
            self._bridge.close()
        for link in self._links.values():
            link.close()
        for endpoint in self.endpoints.values():
            endpoint.close()
        for endpoint in set(self.component_endpoints.values()):
            endpoint.close()
        self.endpoints.clear()
        self.component_endpoints.clear()
        self._links.clear()

    async def add_nest(
        self, system_id: int, bind: Address, peer: Address | None = None, security: LinkSecurity | None = None
    ) -> NestEndpoint:
        """Open the nest's endpoint: listen on ``bind`` (and, configured, only to and from ``peer``),
        signing and verifying as ``security`` says (by default: unsigned until provisioned)."""
        if system_id in self.endpoints:
            raise ValueError(f"system {system_id} already has an endpoint")
        endpoint = NestEndpoint(
            system_id,
            lambda frame: self._from_nest(system_id, frame),
            peer=peer,
            gcs_system_id=self.gcs_system_id,
            gcs_component_id=self.gcs_component_id,
            heartbeat_interval_s=self._heartbeat_interval_s,
            security=security,
        )
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: endpoint, local_addr=bind)
        self.endpoints[system_id] = endpoint
        log.info("adapters.router.nest_added", system_id=system_id, bind=f"{bind[0]}:{bind[1]}")
        return endpoint

    async def add_components(
        self,
        system_id: int,
        component_ids: frozenset[int],
        bind: Address,
        peer: Address | None = None,
        security: LinkSecurity | None = None,
    ) -> NestEndpoint:
        """Open a second endpoint of the nest for ``component_ids`` (its dock and payload where they
        are apart from the autopilot): their links send through it, and hear only it."""
        if any((system_id, c) in self.component_endpoints for c in component_ids):
            raise ValueError(f"system {system_id}: components {sorted(component_ids)} have an endpoint")
        if component_ids & self._bridged:
            raise ValueError("the components MAVSDK serves stay on the autopilot's endpoint")
        endpoint = NestEndpoint(
            system_id,
            lambda frame: self._from_components(system_id, component_ids, frame),
            peer=peer,
            gcs_system_id=self.gcs_system_id,
            gcs_component_id=self.gcs_component_id,
            heartbeat_interval_s=self._heartbeat_interval_s,
            security=security,
        )
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: endpoint, local_addr=bind)
        for component_id in component_ids:
            self.component_endpoints[(system_id, component_id)] = endpoint
        log.info(
            "adapters.router.components_added",
            system_id=system_id,
            components=sorted(component_ids),
            bind=f"{bind[0]}:{bind[1]}",
        )
        return endpoint

    def component(
        self, system_id: int, component_id: int, name: str, policy: RetryPolicy | None = None
    ) -> ComponentLink:
        """The link to one component of a nest (created on first use, then shared)."""
        key = (system_id, component_id)
        link = self._links.get(key)
        if link is None:
            endpoint = self.component_endpoints.get(key) or self.endpoints.get(system_id)
            if endpoint is None:
                raise KeyError(f"no endpoint for system {system_id}: add_nest first")
            link = ComponentLink(
                name,
                system_id,
                component_id,
                endpoint.send,
                self.gcs_system_id,
                self.gcs_component_id,
                self._watchdog_timeout_s,
                policy,
            )
            self._links[key] = link
        return link

    async def provision(self, system_id: int, key: bytes | None, timeout_s: float = 10.0) -> None:
        """Give the nest ``key`` (None: clear it) with SETUP_SIGNING, sent unsigned when it has no
        key yet or signed with its current one, and switch our side to it; returns once a frame
        of the nest verifies with the new key (or, clearing, an unsigned one is accepted). On
        TimeoutError our side keeps the key it had. The caller stores the key."""
        endpoint = self.endpoints.get(system_id)
        if endpoint is None:
            raise KeyError(f"no endpoint for system {system_id}: add_nest first")
        if key is not None and (len(key) != KEY_LEN or not any(key)):
            raise ValueError(f"a MAVLink signing key is {KEY_LEN} bytes, not all zero")
        security = endpoint.security
        old_key = security.key
        setup = mav.MAVLink_setup_signing_message(
            system_id,
            AUTOPILOT_COMPID,
            list(key if key is not None else bytes(KEY_LEN)),
            timestamp_now() if key is not None else 0,
        )
        # Signed now with the current key (or unsigned), before the switch; the same bytes are
        # resent until the nest answers with the new key (a lost datagram; a repeat it already
        # acted on is a replay it drops).
        frame = security.outgoing(setup.pack(endpoint.encoder))
        if frame is None:
            raise RuntimeError("SETUP_SIGNING could not be signed")
        # udpin: the nest's address is learned from its frames, accepted under the current key.
        async with asyncio.timeout(timeout_s):
            for _ in itertools.count():
                if endpoint.peer is not None:
                    break
                await asyncio.sleep(TICK_S)
        security.set_key(key)
        try:
            async with asyncio.timeout(timeout_s):
                for tick in itertools.count():
                    if security.answered_since_key_change:
                        break
                    if tick % RESEND_TICKS == 0:
                        endpoint.send_signed(frame)
                    await asyncio.sleep(TICK_S)
        except TimeoutError:
            security.set_key(old_key)
            log.warning("adapters.router.provision_failed", system_id=system_id)
            raise
        log.info("adapters.router.provisioned", system_id=system_id, signed=key is not None)

    # routing -------------------------------------------------------------------------------------
    def _from_components(self, system_id: int, component_ids: frozenset[int], frame: Frame) -> None:
        component_id = frame.src_component
        if component_id not in component_ids:
            return  # this endpoint speaks for its components only
        link = self._links.get((system_id, component_id))
        if link is not None:
            link.deliver(frame)

    def _from_nest(self, system_id: int, frame: Frame) -> None:
        component_id = frame.src_component
        if (system_id, component_id) in self.component_endpoints:
            return  # served by the components' own endpoint: not mixed with a copy from here
        if self._bridge is not None and component_id in self._bridged:
            self.bridge_rx_frames += 1
            self._bridge.receive(frame.buf)
        link = self._links.get((system_id, component_id))
        if link is not None:
            link.deliver(frame)

    def _from_bridge(self, data: bytes) -> None:
        """MAVSDK's frames to the nests they are for, the target read from the bytes (frames.py):
        no parse on the way out. What is not whole frames of our dialect is parsed instead."""
        try:
            frames = list(split_frames(data))
        except Unreadable:
            self._from_bridge_parsed(data)
            return
        for frame, target in frames:
            self._route_frame(frame, target or 0)

    def _from_bridge_parsed(self, data: bytes) -> None:
        try:
            messages = self._bridge_parser.parse_buffer(data) or []
        except Exception:  # noqa: BLE001 - pymavlink raises assorted errors on what it cannot decode
            self._bridge_parser = new_parser()
            messages = []
        if self._bridge_parser.buf_len():
            self._bridge_parser = new_parser()  # MAVSDK hands over whole frames: drop a torn one
        routed = False
        for msg in messages:
            if msg.get_type() == "BAD_DATA":
                continue
            routed = True
            self._route_from_bridge(msg)
        if not routed and data:
            # A message our dialect does not know: its target cannot be read, so every nest gets
            # it and the ones it is not for ignore it, as on a shared radio link.
            self.bridge_tx_frames += 1
            for endpoint in self.endpoints.values():
                endpoint.send_frame(data)

    def _route_from_bridge(self, msg: MAVLinkMessage) -> None:
        self._route_frame(bytes(msg.get_msgbuf()), int(getattr(msg, "target_system", 0)))

    def _route_frame(self, frame: bytes, target: int) -> None:
        self.bridge_tx_frames += 1
        if target == 0:
            for endpoint in self.endpoints.values():
                endpoint.send_frame(frame)
            return
        target_endpoint = self.endpoints.get(target)
        if target_endpoint is None:
            self.bridge_tx_unroutable += 1
            return
        target_endpoint.send_frame(frame)
