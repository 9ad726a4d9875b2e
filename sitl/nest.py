"""One simulated nest: a MAVLink system whose components share one UDP endpoint.

Components and their ids (see ``sitl.component``):
    autopilot 1 (PX4 quadrotor)  ``sitl.autopilot.px4.Px4Autopilot``
    dock      25 (charging station, cover, charger, weather station)  ``sitl.dock.SimDock``
    payload   158 (loudspeaker + warning light)  ``sitl.payload.SimPayload``
    camera    100 (nadir video over RTP/UDP)  ``sitl.camera.SimCamera``

A nest runs them all (``NestMode.ALL``, the default), or one side of a real installation:
``NestMode.DOCK`` (``python -m sitl --docks-only``) the dock and payload alone, whose drone is a
real autopilot watched over MAVLink (``sitl.drone_watch``); ``NestMode.AUTOPILOT``
(``--autopilots-only``) the autopilot alone, shaped like a PX4 SITL: no dock, payload or camera,
and the drone knows no cover (always open to it) and no charger.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.px4 import Px4Autopilot
from sitl.camera import NestMarker, SceneState, SimCamera
from sitl.clock import SimClock
from sitl.component import (
    AUTOPILOT_COMPID,
    CAMERA_COMPID,
    DOCK_COMPID,
    PAYLOAD_COMPID,
    MAVLinkMessage,
    Outbox,
    Recorder,
    SimComponent,
)
from sitl.dock import SimDock
from sitl.drone_watch import WatchedDrone
from sitl.environment import DroneView, FaultKind, Faults, GeoPoint, LocalFrame, NestContext, Weather
from sitl.gcs import attach_gcs_link
from sitl.link import Address, NestLink
from sitl.payload import SimPayload
from sitl.signing import SimSigning, key_path


@dataclass(frozen=True)
class NestSite:
    """Where a nest is and how it is reached (from the shared config file)."""

    nest_id: int
    system_id: int
    name: str
    home: GeoPoint
    bind: Address  # the simulator's own UDP address for this nest
    remote: Address | None  # where it pushes its traffic (a udpin client listens there)
    watch: Address | None = None  # NestMode.DOCK: the real autopilot's link the dock listens to
    gcs_bind: Address | None = None  # a second, PX4-GCS-style link (sitl.gcs); None: none
    gcs_remote: Address | None = None


class NestMode(enum.Enum):
    ALL = "all"  # autopilot, dock, payload and camera on one endpoint
    DOCK = "dock"  # dock and payload only; the drone is a real autopilot at NestSite.watch
    AUTOPILOT = "autopilot"  # the autopilot only, as a PX4 SITL stands: no dock, payload, camera


class SimNest:
    def __init__(
        self,
        site: NestSite,
        clock: SimClock,
        weather: Weather | None = None,
        scene: SceneState | None = None,
        state_dir: Path | None = None,
        mode: NestMode = NestMode.ALL,
    ) -> None:
        """``state_dir``: where the nest keeps what survives a restart (its signing key); None
        keeps it in memory only. ``mode``: which of its components run (``NestMode``)."""
        self.site = site
        self.mode = mode
        self.clock = clock
        self.ctx = NestContext(
            nest_id=site.nest_id,
            system_id=site.system_id,
            name=site.name,
            home=site.home,
            frame=LocalFrame(site.home),
            weather=weather or Weather(),
            faults=Faults(),
            recorder=Recorder(),
        )
        signing = SimSigning(site.system_id, key_path(state_dir, site.nest_id) if state_dir else None)
        self.link = NestLink(
            site.system_id, clock, self.ctx.faults, site.remote, self._dispatch, signing=signing
        )
        sysid = site.system_id
        self.autopilot: Px4Autopilot | None = None
        self.dock: SimDock | None = None
        self.payload: SimPayload | None = None
        self.camera: SimCamera | None = None
        self.watched: WatchedDrone | None = None
        # What the cameras film; share one SceneState between nests so they all see the same city.
        self.scene = scene if scene is not None else SceneState()
        self.scene.add_nest(NestMarker(site.nest_id, site.home.lat_deg, site.home.lon_deg))
        if mode is not NestMode.DOCK:
            self.autopilot = Px4Autopilot(
                self.ctx, Outbox(sysid, AUTOPILOT_COMPID, self.link.transmit), dock=self
            )
        if mode is NestMode.DOCK:
            if site.watch is None:
                raise ValueError(f"nest {site.nest_id}: a docks-only nest needs its autopilot's address")
            self.watched = WatchedDrone(sysid, self.ctx.frame, site.watch)
        if mode is not NestMode.AUTOPILOT:
            drone: DroneView = self if self.watched is None else self.watched
            self.dock = SimDock(self.ctx, Outbox(sysid, DOCK_COMPID, self.link.transmit), drone=drone)
            self.payload = SimPayload(self.ctx, Outbox(sysid, PAYLOAD_COMPID, self.link.transmit))
        if self.autopilot is not None and mode is NestMode.ALL:
            video_host = site.remote[0] if site.remote is not None else "127.0.0.1"
            camera_outbox = Outbox(sysid, CAMERA_COMPID, self.link.transmit)
            self.camera = SimCamera(
                self.ctx, camera_outbox, self.autopilot, self.scene, video_host=video_host
            )
        self.components: list[SimComponent] = [
            c for c in (self.autopilot, self.dock, self.payload, self.camera) if c is not None
        ]
        self.gcs_link: NestLink | None = None
        if site.gcs_bind is not None:  # a second, PX4-GCS-style link: the simulated autopilot's
            if self.autopilot is None:
                raise ValueError(f"nest {site.nest_id}: a PX4-GCS-style link needs the simulated autopilot")
            outboxes = [self.autopilot.outbox]  # the autopilot's first, as attach_gcs_link wants
            outboxes += [c.outbox for c in (self.dock, self.payload, self.camera) if c is not None]
            self.gcs_link = attach_gcs_link(
                sysid,
                site.gcs_remote,
                clock,
                self.ctx.faults,
                signing,
                self.autopilot,
                self._dispatch,
                outboxes,
            )
        self._last_step_s = clock.now()

    # the views components have of each other (sitl.environment.DockView / DroneView) --------
    # With no dock (NestMode.AUTOPILOT) the drone flies as a PX4 does: nothing over it, no charger.
    def cover_open(self) -> bool:
        return self.dock.cover_open() if self.dock is not None else True

    def charging(self) -> bool:
        return self.dock.charging() if self.dock is not None else False

    def _drone(self) -> Px4Autopilot | WatchedDrone:
        drone = self.autopilot or self.watched
        assert drone is not None  # every mode has a drone: simulated or watched
        return drone

    def on_pad(self) -> bool:
        return self._drone().on_pad()

    def airborne(self) -> bool:
        return self._drone().airborne()

    def armed(self) -> bool:
        if self.autopilot is not None:
            return self.autopilot.armed
        assert self.watched is not None
        return self.watched.armed()

    def position_ned_m(self) -> tuple[float, float, float]:
        return self._drone().position_ned_m()

    def battery_pct(self) -> float:
        if self.autopilot is not None:
            return self.autopilot.battery_pct
        assert self.watched is not None
        return self.watched.battery_pct()

    # ---------------------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.link, local_addr=self.site.bind)
        if self.watched is not None:
            await self.watched.open()
        if self.gcs_link is not None and self.site.gcs_bind is not None:
            gcs = self.gcs_link
            await loop.create_datagram_endpoint(lambda: gcs, local_addr=self.site.gcs_bind)

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
        if self.watched is not None:
            self.watched.close()
        self.link.close()
        if self.gcs_link is not None:
            self.gcs_link.close()

    def step(self, now_s: float, max_dt_s: float = 0.05) -> None:
        """Advance every component to ``now_s`` in sub-steps of at most ``max_dt_s``."""
        remaining = now_s - self._last_step_s
        t = self._last_step_s
        while remaining > 1e-9:
            dt = min(max_dt_s, remaining)
            t += dt
            remaining -= dt
            for component in self.components:
                component.step(t, dt)
        self._last_step_s = now_s

    def inject(self, kind: FaultKind, value: float = 0.0, duration_s: float = 0.0) -> None:
        now_s = self.clock.now()
        self.ctx.faults.inject(kind, now_s, value, duration_s)
        self.ctx.recorder.add(now_s, "sim", "fault", fault=kind.name, value=value, duration_s=duration_s)

    def set_weather(self, **changes: float) -> None:
        """Change the weather the station measures and the drone flies in (e.g. wind_speed_mps=15)."""
        for key, value in changes.items():
            if not hasattr(self.ctx.weather, key):
                raise ValueError(f"unknown weather field {key!r}")
            setattr(self.ctx.weather, key, type(getattr(self.ctx.weather, key))(value))
        self.ctx.recorder.add(self.clock.now(), "sim", "weather", **changes)

    def _dispatch(self, msg: MAVLinkMessage) -> None:
        target_system = getattr(msg, "target_system", None)
        if target_system not in (None, 0, self.site.system_id):
            return
        if (
            msg.get_msgId() == mav.MAVLINK_MSG_ID_COMMAND_LONG
            and msg.command == mav.MAV_CMD_DRONECTL_SIM_FAULT
            and msg.target_component in (0, DOCK_COMPID)
        ):
            self._sim_fault_command(msg)
            return
        target_component = getattr(msg, "target_component", None)
        for component in self.components:
            if target_component in (None, 0, component.component_id):
                component.on_message(msg)

    def _sim_fault_command(self, msg: MAVLinkMessage) -> None:
        if self.dock is None:
            return  # no dock here to answer for the simulator
        outbox = self.dock.outbox
        try:
            kind = FaultKind(int(msg.param1))
            if kind is FaultKind.WEATHER:
                raise ValueError("weather is set through the control port")
            self.inject(kind, msg.param2, msg.param3)
            result = mav.MAV_RESULT_ACCEPTED
        except ValueError:
            result = mav.MAV_RESULT_DENIED
        outbox.command_ack(msg.command, result, msg.get_srcSystem(), msg.get_srcComponent())
