"""The lookout: watches a drone's video for black ice and, when it finds some, responds as the
automation.

:meth:`Lookout.ice_findings` decodes the nest's stream (``dronectl.automations.vision.frames.FrameSampler``,
a few frames a second), looks for ice in each frame (``find_ice``), places what it sees on the
ground with the drone's position at the frame's capture time and its heading (measured by the
autopilot when the telemetry carries it, else inferred: ``dronectl.automations.lookout.pose``), and yields
a :class:`GroundFinding` once consecutive frames agree (``dronectl.automations.lookout.findings``), with the
JPEG of the frame.

:meth:`Lookout.respond_to_ice` is the response (``response``): hold over the spot,
police lights, warning on the loudspeaker, the picture stored and published, a detection event,
ground units requested. Flight and payload go through ``owner.execute`` with the automation as
actor, so the safety checks, the audit and a pilot's manual control apply to them as to any
command: a refusal is recorded and reported, never overridden.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import structlog

from dronectl.automations.lookout.findings import Confirmer, GroundFinding, Sighting
from dronectl.automations.lookout.pose import CameraPose, PoseSample, PoseTrack, camera_pose
from dronectl.automations.lookout.response import IceResponder, IceResponse
from dronectl.automations.lookout.snapshots import SnapshotSink, SnapshotStore
from dronectl.automations.vision.frames import FrameSampler, VideoFrame
from dronectl.automations.vision.geometry import CameraOptics, pixel_to_ground
from dronectl.automations.vision.ice import IceFinding, find_ice
from dronectl.automations.vision.traffic import TrafficEstimator, TrafficReading
from dronectl.domain.clock import Clock
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.errors import CommandTimeout
from dronectl.domain.geo import GeoPoint, bearing_deg
from dronectl.nest.controller import NestController, NestEvent
from dronectl.operations.port import Operations

if TYPE_CHECKING:
    from dronectl.video.hub import VideoHub

log = structlog.get_logger("dronectl.automations.lookout")

MAX_FPS = 2.0
JPEG_QUALITY = 85
POSE_WAIT_S = 1.0  # the pose follower re-checks whether anyone still looks at least this often
STREAM_INFO_TIMEOUT_S = 5.0
# flight events after which the drone no longer keeps its front to an orbit's centre
_ORBIT_ENDS = frozenset(
    {"en_route", "hold", "returning", "landed", "launched", "launch_aborted", "link_lost"}
)


class LookoutError(Exception):
    """The lookout cannot watch this nest (no video hub, unknown nest)."""


@dataclass(frozen=True)
class _Placed:
    finding: IceFinding
    pose: CameraPose | None
    position: GeoPoint | None


class Lookout:
    def __init__(
        self,
        owner: Operations,
        hub: VideoHub | None,
        snapshots_dir: Path,
        config: BlackIceConfig,
        *,
        max_fps: float = MAX_FPS,
    ) -> None:
        self.owner = owner
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.hub = hub
        self.config = config
        self.store = SnapshotStore(snapshots_dir)
        self.max_fps = max_fps
        self.snapshot_sinks: list[SnapshotSink] = []  # transports that publish the pictures (MQTT)
        self._orbit_centre: dict[int, GeoPoint] = {}
        self._tracks: dict[int, PoseTrack] = {}
        self._lookers: dict[int, int] = {}
        for controller in self.fleet.controllers.values():
            controller.listeners.append(self._listener(controller))

    # --- what the drone does, as the camera's heading needs it --------------------------------

    def _listener(self, controller: NestController) -> Callable[[NestEvent], None]:
        nest_id = controller.nest_id

        def on_event(event: NestEvent) -> None:
            if event.kind == "orbit":
                flight = controller.flight
                if flight is not None and flight.target is not None:
                    self._orbit_centre[nest_id] = flight.target
            elif event.kind in _ORBIT_ENDS:
                self._orbit_centre.pop(nest_id, None)

        return on_event

    def orbit_centre(self, nest_id: int) -> GeoPoint | None:
        return self._orbit_centre.get(nest_id)

    def video_live(self, nest_id: int) -> bool:
        """The nest's stream reaches the service now (some ingest delivers pictures)."""
        if self.hub is None:
            return False
        stats = self.hub.stats(nest_id)
        return stats is not None and stats.units > 0

    # --- finding ice ---------------------------------------------------------------------------

    async def ice_findings(self, nest_id: int) -> AsyncGenerator[GroundFinding, None]:
        """Ice confirmed in the nest's video, placed on the ground, for as long as the caller
        iterates. Ends when the stream ends (the drone landed, the camera went away).

        Raises LookoutError without a video hub; the hub's VideoError when the stream cannot start.
        """
        hub = self._require_hub()
        controller = self.fleet.nest(nest_id)
        optics = await self._optics(nest_id)
        track = self._follow(controller)
        confirmer = Confirmer()
        try:
            async with FrameSampler(hub, nest_id, "lookout", max_fps=self.max_fps) as frames:
                async for frame in frames:
                    taken_s = _capture_time(frame, self.clock)
                    pose = camera_pose(track, taken_s, self.orbit_centre(nest_id))  # here: the track grows
                    placed = await asyncio.to_thread(_look_for_ice, frame, pose, optics)
                    sighting = None
                    if placed.position is not None:
                        sighting = Sighting(placed.position, placed.finding.coverage_pct, taken_s)
                    confirmed = confirmer.add(sighting)
                    if confirmed is None or placed.pose is None:
                        continue
                    jpeg = await asyncio.to_thread(_jpeg, frame.image_bgr)
                    height_px, width_px = frame.image_bgr.shape[:2]
                    finding = GroundFinding(
                        nest_id=nest_id,
                        position=confirmed.position,
                        coverage_pct=confirmed.coverage_pct,
                        capture_unix_s=confirmed.capture_unix_s,
                        jpeg=jpeg,
                        width_px=width_px,
                        height_px=height_px,
                        frames=confirmer.frames_needed,
                        drone_position=placed.pose.centre,
                        drone_height_m=placed.pose.height_m,
                        heading_deg=placed.pose.heading_deg,
                        heading_measured=placed.pose.heading_measured,
                    )
                    log.info(
                        "lookout.ice_found",
                        nest=nest_id,
                        lat=round(finding.position.lat_deg, 6),
                        lon=round(finding.position.lon_deg, 6),
                        coverage_pct=round(finding.coverage_pct, 2),
                        heading_deg=round(finding.heading_deg, 1),
                        heading_measured=finding.heading_measured,
                    )
                    yield finding
        finally:
            self._unfollow(nest_id)

    async def traffic_readings(
        self, nest_id: int, gsd_m: float | None = None
    ) -> AsyncGenerator[TrafficReading, None]:
        """Traffic on the nest's video (for a hovering drone); ``gsd_m`` None: from the drone's
        height when the first frame arrives and the camera's optics."""
        hub = self._require_hub()
        controller = self.fleet.nest(nest_id)
        estimator: TrafficEstimator | None = None
        if gsd_m is not None:
            estimator = TrafficEstimator(gsd_m)
        optics = await self._optics(nest_id) if gsd_m is None else None
        async with FrameSampler(hub, nest_id, "traffic", max_fps=self.max_fps) as frames:
            async for frame in frames:
                if estimator is None:
                    assert optics is not None
                    position = controller.drone_position()
                    if position is None or position.alt_above_home_m <= 0:
                        continue
                    width_px = frame.image_bgr.shape[1]
                    estimator = TrafficEstimator(optics.gsd_m(position.alt_above_home_m, width_px))
                await asyncio.to_thread(estimator.add, frame.image_bgr, _service_seconds(frame, self.clock))
                reading = estimator.reading()
                if reading is not None:
                    yield reading

    def _require_hub(self) -> VideoHub:
        if self.hub is None:
            raise LookoutError("no video hub: the lookout cannot see")
        return self.hub

    async def _optics(self, nest_id: int) -> CameraOptics:
        """What the camera advertises (size, field of view), or the defaults when it cannot say."""
        camera = self.hub.sources.camera(nest_id) if self.hub is not None else None
        if camera is None:
            return CameraOptics.from_stream(None)
        try:
            async with asyncio.timeout(STREAM_INFO_TIMEOUT_S):
                info = await camera.stream_info()
        except Exception as exc:  # noqa: BLE001 - without the stream's info the defaults hold; logged
            log.warning("lookout.stream_info_failed", nest=nest_id, error=str(exc) or type(exc).__name__)
            return CameraOptics.from_stream(None)
        return CameraOptics.from_stream(info)

    # --- the drone's positions, kept while someone looks ----------------------------------------

    def _follow(self, controller: NestController) -> PoseTrack:
        nest_id = controller.nest_id
        self._lookers[nest_id] = self._lookers.get(nest_id, 0) + 1
        track = self._tracks.get(nest_id)
        if track is None:
            track = self._tracks[nest_id] = PoseTrack()
            flight = controller.flight
            if flight is not None and flight.target is not None:  # until it is seen moving: the way out
                track.seed_heading(bearing_deg(controller.home, flight.target))
            self.owner.spawn(self._record_poses(controller, track), f"lookout[{nest_id:02d}].pose")
        return track

    def _unfollow(self, nest_id: int) -> None:
        self._lookers[nest_id] = self._lookers.get(nest_id, 1) - 1

    async def _record_poses(self, controller: NestController, track: PoseTrack) -> None:
        nest_id = controller.nest_id
        try:
            last = None
            while self._lookers.get(nest_id, 0) > 0:
                position = controller.drone.position
                if position is not None and position is not last:
                    last = position
                    track.add(
                        PoseSample(
                            self.clock.wall(),
                            GeoPoint(position.lat_deg, position.lon_deg),
                            position.alt_rel_m,
                            position.heading_deg,
                        )
                    )
                with contextlib.suppress(CommandTimeout):
                    await controller.wait_for(_moved(controller, last), POSE_WAIT_S, "a new position")
        finally:
            if self._tracks.get(nest_id) is track:
                del self._tracks[nest_id]

    # --- responding ----------------------------------------------------------------------------

    async def respond_to_ice(
        self,
        nest_id: int,
        finding: GroundFinding,
        *,
        actor_id: str,
        incident_id: str | None = None,
        mission_id: str | None = None,
    ) -> IceResponse:
        """Hold over the ice, police lights, the warning in Mandarin then English (repeated), the
        picture stored and published, a DETECTION event and a GROUND_UNITS_REQUESTED event.
        Every step is audited with ``actor_id`` in the automation's role; what was refused is
        in the events and in the result."""
        responder = IceResponder(self, nest_id, finding, actor_id, incident_id, mission_id)
        return await responder.run()


def _moved(controller: NestController, seen: object) -> Callable[[], bool]:
    return lambda: controller.drone.position is not seen


def _service_seconds(frame: VideoFrame, clock: Clock) -> float:
    """When the frame was taken, on the service's monotonic clock (the simulator's seconds when
    it runs faster than real time, so that speeds come out in its metres per second)."""
    now_mono, now_wall = clock.monotonic(), clock.wall()
    if frame.capture_unix_s is None:
        return now_mono
    speed = float(getattr(clock, "speed", 1.0))  # ScaledClock's factor; real time otherwise
    return now_mono - max(0.0, now_wall - frame.capture_unix_s) * speed


def _capture_time(frame: VideoFrame, clock: Clock) -> float:
    return frame.capture_unix_s if frame.capture_unix_s is not None else clock.wall()


def _look_for_ice(frame: VideoFrame, pose: CameraPose | None, optics: CameraOptics) -> _Placed:
    """One frame: ice or not, and where it lies on the ground (CPU-bound: a worker thread)."""
    height_px, width_px = frame.image_bgr.shape[:2]
    gsd_m = optics.gsd_m(pose.height_m, width_px) if pose is not None and pose.height_m > 0 else None
    finding = find_ice(frame.image_bgr, gsd_m=gsd_m)
    if not finding.found or finding.centroid_px is None or pose is None or gsd_m is None:
        return _Placed(finding, pose, None)
    x, y = finding.centroid_px
    position = pixel_to_ground(x, y, width_px, height_px, gsd_m, pose.heading_deg, pose.centre)
    return _Placed(finding, pose, position)


def _jpeg(image_bgr: np.ndarray) -> bytes:
    ok, jpeg = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(jpeg.tobytes())
