"""The simulated camera (component 100): the MAVLink camera protocol and its live stream.

MAVLink, as a ground station (QGroundControl, MAVSDK) expects it from a camera component:
- HEARTBEAT at 1 Hz, MAV_TYPE_CAMERA.
- MAV_CMD_REQUEST_MESSAGE for CAMERA_INFORMATION, CAMERA_SETTINGS, CAMERA_CAPTURE_STATUS,
  VIDEO_STREAM_INFORMATION and VIDEO_STREAM_STATUS (param2: stream id, 0 for all), and the older
  MAV_CMD_REQUEST_CAMERA_INFORMATION / _CAMERA_SETTINGS / _CAMERA_CAPTURE_STATUS /
  _VIDEO_STREAM_INFORMATION / _VIDEO_STREAM_STATUS. One stream, id 1: RTP over UDP
  (VIDEO_STREAM_TYPE_RTPUDP), H.264, 1280x720 at 30 fps.
- MAV_CMD_VIDEO_START_STREAMING / MAV_CMD_VIDEO_STOP_STREAMING (param1: stream id, 0 for all).

Where the video goes: like PX4 SITL's Gazebo camera and drone cameras on a ground link, the
camera pushes RTP/H.264 over UDP to the ground station. The host is the ground station the nest
talks MAVLink to (the nest's configured remote, ``video_host``); the port is ``video_port``,
5600 + the nest number by default (5600 is the port QGroundControl and PX4 use; each nest needs
its own). The URI in VIDEO_STREAM_INFORMATION is ``udp://0.0.0.0:<port>``: where the ground
station listens, in QGroundControl's form.

It costs CPU only while streaming: nothing is rendered or encoded, and no thread exists, until a
START; the stream thread ends on STOP, or when no station that asked for it has been heard
(HEARTBEAT) for ``REQUESTER_TIMEOUT_S``. That timeout, like the frame pacing, is in wall-clock
seconds (``monotonic``): video and the stations' heartbeats run in real time whatever the
simulation speed. Injected link faults (link loss, packet loss) apply to the video too.

Everything it does goes to ``ctx.recorder`` (component "camera").
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Protocol

from adapters.mavlink import dronectl_v20 as mav
from sitl.camera.render import CameraPose
from sitl.camera.scene import SceneSnapshot, SceneState
from sitl.camera.stream import StreamSettings, VideoStreamer
from sitl.component import CAMERA_COMPID, MAVLinkMessage, Outbox
from sitl.environment import GeoPoint, NestContext, Precipitation
from sitl.peripheral import Command, MessageStreams

VIDEO_PORT_BASE = 5600
STREAM_ID = 1
STREAM_NAME = b"nadir"
REQUESTER_TIMEOUT_S = 3.0  # wall-clock seconds without a heartbeat from any station that asked
SENSOR_WIDTH_MM = 6.17  # 1/2.3" sensor
SENSOR_HEIGHT_MM = 4.55
FIRMWARE_VERSION = 1 | (2 << 8)  # 1.2.0: major in the lowest byte, as CAMERA_INFORMATION wants
CAMERA_MODE_VIDEO = 1

_LEGACY_REQUESTS = {
    mav.MAV_CMD_REQUEST_CAMERA_INFORMATION: mav.MAVLINK_MSG_ID_CAMERA_INFORMATION,
    mav.MAV_CMD_REQUEST_CAMERA_SETTINGS: mav.MAVLINK_MSG_ID_CAMERA_SETTINGS,
    mav.MAV_CMD_REQUEST_CAMERA_CAPTURE_STATUS: mav.MAVLINK_MSG_ID_CAMERA_CAPTURE_STATUS,
    mav.MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION: mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION,
    mav.MAV_CMD_REQUEST_VIDEO_STREAM_STATUS: mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS,
}
_PER_STREAM = frozenset({mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS})


class CameraMount(Protocol):
    """What the camera needs of the drone it hangs under (``Px4Autopilot``)."""

    @property
    def position(self) -> GeoPoint: ...

    @property
    def heading_deg(self) -> float: ...

    def position_ned_m(self) -> tuple[float, float, float]: ...


def _text(value: str, size: int) -> list[int]:
    return list(value.encode()[:size].ljust(size, b"\x00"))


class SimCamera:
    component_id = CAMERA_COMPID

    def __init__(
        self,
        ctx: NestContext,
        outbox: Outbox,
        drone: CameraMount,
        scene: SceneState,
        *,
        video_host: str = "127.0.0.1",
        video_port: int | None = None,
        settings: StreamSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.outbox = outbox
        self.drone = drone
        self.scene = scene
        self.video_host = video_host
        self.video_port = video_port if video_port is not None else VIDEO_PORT_BASE + ctx.nest_id
        self.settings = settings or StreamSettings()
        self._monotonic = monotonic
        self._now_s = 0.0
        self._rng = random.Random(ctx.system_id)
        self._heard: dict[int, float] = {}  # station system id -> monotonic time of its last heartbeat
        self._requesters: set[tuple[int, int]] = set()  # (system, component) that asked for the stream
        self._pose: CameraPose | None = None
        self.streamer: VideoStreamer | None = None
        self.streams = MessageStreams(
            outbox,
            {
                mav.MAVLINK_MSG_ID_HEARTBEAT: (1.0, self._heartbeat),
                mav.MAVLINK_MSG_ID_CAMERA_INFORMATION: (0.0, self._camera_information),
                mav.MAVLINK_MSG_ID_CAMERA_SETTINGS: (0.0, self._camera_settings),
                mav.MAVLINK_MSG_ID_CAMERA_CAPTURE_STATUS: (0.0, self._capture_status),
                mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION: (0.0, self._stream_information),
                mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS: (0.0, self._stream_status),
            },
        )

    # state the nest and tests read ---------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        return self.streamer is not None and self.streamer.alive

    @property
    def uri(self) -> str:
        return f"udp://0.0.0.0:{self.video_port}"

    def close(self) -> None:
        """Stop streaming (without waiting for the thread: it ends within a frame)."""
        self._stop_stream("closed")

    # SimComponent ---------------------------------------------------------------------------------
    def on_message(self, msg: MAVLinkMessage) -> None:
        if msg.get_srcSystem() == self.ctx.system_id:
            return
        if msg.get_msgId() == mav.MAVLINK_MSG_ID_HEARTBEAT:
            self._heard[msg.get_srcSystem()] = self._monotonic()
            return
        cmd = Command.from_message(msg)
        if cmd is None:
            return
        if cmd.command == mav.MAV_CMD_REQUEST_MESSAGE and int(cmd.param(1)) in _PER_STREAM:
            self._request(cmd, int(cmd.param(1)), int(cmd.param(2)))
        elif cmd.command in _LEGACY_REQUESTS:
            stream = int(cmd.param(1)) if _LEGACY_REQUESTS[cmd.command] in _PER_STREAM else 0
            self._request(cmd, _LEGACY_REQUESTS[cmd.command], stream)
        elif not self.streams.handle(cmd, self._now_s):
            self._command(cmd)

    def step(self, now_s: float, dt_s: float) -> None:
        self._now_s = now_s
        if self.streamer is not None:
            self._publish_pose()
            self._check_stream()
        self.streams.step(now_s)

    # commands -------------------------------------------------------------------------------------
    def _command(self, cmd: Command) -> None:
        if cmd.command == mav.MAV_CMD_VIDEO_START_STREAMING:
            if not self._our_stream(cmd.param(1)):
                self._ack(cmd, mav.MAV_RESULT_DENIED)
                return
            requester = (cmd.source_system, cmd.source_component)
            self._requesters.add(requester)
            self._heard[cmd.source_system] = self._monotonic()  # asking is a sign of life too
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            if self.streamer is None:
                self._start_stream(requester)
        elif cmd.command == mav.MAV_CMD_VIDEO_STOP_STREAMING:
            if not self._our_stream(cmd.param(1)):
                self._ack(cmd, mav.MAV_RESULT_DENIED)
                return
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self._requesters.discard((cmd.source_system, cmd.source_component))
            if not self._requesters:
                self._stop_stream("stop command")
        elif cmd.command == mav.MAV_CMD_SET_CAMERA_MODE:
            video = int(cmd.param(2)) == CAMERA_MODE_VIDEO
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED if video else mav.MAV_RESULT_DENIED)
        elif not cmd.broadcast:
            self._ack(cmd, mav.MAV_RESULT_UNSUPPORTED)

    def _request(self, cmd: Command, msg_id: int, stream_id: int) -> None:
        if msg_id in _PER_STREAM and not self._our_stream(stream_id):
            self._ack(cmd, mav.MAV_RESULT_DENIED)
            return
        self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        self.streams.send_now(msg_id)

    @staticmethod
    def _our_stream(value: float) -> bool:
        return int(value) in (0, STREAM_ID)

    def _ack(self, cmd: Command, result: int) -> None:
        self.outbox.command_ack(cmd.command, result, cmd.source_system, cmd.source_component)

    # the stream -----------------------------------------------------------------------------------
    def _start_stream(self, requester: tuple[int, int]) -> None:
        self._publish_pose()
        streamer = VideoStreamer(
            f"sitl.camera.{self.ctx.nest_id}",
            (self.video_host, self.video_port),
            self._current_pose,
            self._scene_snapshot,
            self.settings,
            self._drop_packet,
            title=f"NEST {self.ctx.nest_id}",
        )
        self.streamer = streamer
        streamer.start()
        self._record(
            "camera.stream_started",
            host=self.video_host,
            port=self.video_port,
            requester_system=requester[0],
            requester_component=requester[1],
        )
        self.streams.send_now(mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS)

    def _stop_stream(self, reason: str) -> None:
        streamer, self.streamer = self.streamer, None
        self._requesters.clear()
        self._pose = None
        if streamer is None:
            return
        streamer.stop()
        self._record(
            "camera.stream_stopped", reason=reason, frames=streamer.stats.frames, error=streamer.error
        )
        self.streams.send_now(mav.MAVLINK_MSG_ID_VIDEO_STREAM_STATUS)

    def _check_stream(self) -> None:
        if self.streamer is not None and not self.streamer.alive:
            self._stop_stream("stream failed")
            return
        now = self._monotonic()
        for requester in list(self._requesters):
            heard = self._heard.get(requester[0])
            if heard is None or now - heard > REQUESTER_TIMEOUT_S:
                self._requesters.discard(requester)
                self._record("camera.requester_lost", system=requester[0], component_id=requester[1])
        if not self._requesters:
            self._stop_stream("no heartbeat from the stations watching")

    def _publish_pose(self) -> None:
        """Snapshot of the drone for the render thread (one immutable object, swapped atomically)."""
        position = self.drone.position
        down_m = self.drone.position_ned_m()[2]
        self._pose = CameraPose(
            position.lat_deg, position.lon_deg, -down_m, self.drone.heading_deg, self._now_s
        )

    def _current_pose(self) -> CameraPose:
        pose = self._pose
        if pose is None:  # stopping: the thread is about to see its stop flag
            home = self.ctx.home
            return CameraPose(home.lat_deg, home.lon_deg, 0.0, 0.0, self._now_s)
        return pose

    def _scene_snapshot(self) -> SceneSnapshot:
        weather = self.ctx.weather
        freezing = weather.air_temp_c <= 0.0 or weather.precipitation == Precipitation.SNOW
        return self.scene.snapshot(freezing)

    def _drop_packet(self) -> bool:
        faults = self.ctx.faults
        if faults.link_down(self._now_s):
            return True
        loss = faults.packet_loss_pct
        return loss > 0 and self._rng.random() * 100.0 < loss

    # messages -------------------------------------------------------------------------------------
    def _time_boot_ms(self) -> int:
        return int(self._now_s * 1000) & 0xFFFFFFFF

    def _heartbeat(self) -> MAVLinkMessage:
        return mav.MAVLink_heartbeat_message(
            mav.MAV_TYPE_CAMERA, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE, 3
        )

    def _camera_information(self) -> MAVLinkMessage:
        optics = self.settings.optics
        focal_mm = SENSOR_WIDTH_MM / (2.0 * math.tan(math.radians(optics.hfov_deg) / 2.0))
        return mav.MAVLink_camera_information_message(
            self._time_boot_ms(),
            _text("dronectl", 32),
            _text("SimCam nadir 720p", 32),
            FIRMWARE_VERSION,
            focal_mm,
            SENSOR_WIDTH_MM,
            SENSOR_HEIGHT_MM,
            optics.width_px,
            optics.height_px,
            0,
            mav.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM,
            0,
            b"",
        )

    def _camera_settings(self) -> MAVLinkMessage:
        return mav.MAVLink_camera_settings_message(
            self._time_boot_ms(), CAMERA_MODE_VIDEO, math.nan, math.nan
        )

    def _capture_status(self) -> MAVLinkMessage:
        return mav.MAVLink_camera_capture_status_message(self._time_boot_ms(), 0, 0, 0.0, 0, 0.0, 0)

    def _stream_flags(self) -> int:
        return mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING if self.streamer is not None else 0

    def _stream_information(self) -> MAVLinkMessage:
        s = self.settings
        return mav.MAVLink_video_stream_information_message(
            STREAM_ID,
            1,
            mav.VIDEO_STREAM_TYPE_RTPUDP,
            self._stream_flags(),
            float(s.fps),
            s.optics.width_px,
            s.optics.height_px,
            s.bitrate_bps,
            0,
            round(s.optics.hfov_deg),
            STREAM_NAME,
            self.uri.encode(),
            mav.VIDEO_STREAM_ENCODING_H264,
        )

    def _stream_status(self) -> MAVLinkMessage:
        s = self.settings
        return mav.MAVLink_video_stream_status_message(
            STREAM_ID,
            self._stream_flags(),
            float(s.fps),
            s.optics.width_px,
            s.optics.height_px,
            s.bitrate_bps,
            0,
            round(s.optics.hfov_deg),
        )

    def _record(self, kind: str, **data: object) -> None:
        self.ctx.recorder.add(self._now_s, "camera", kind, **data)
