"""The simulated camera: renderer, capture-time code, H.264, RTP, and the MAVLink camera protocol."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import numpy as np
import pytest

from adapters.camera_timecode import CODE_BLOCKS, draw_capture_time, read_capture_time_us
from adapters.mavlink import dronectl_v20 as mav
from adapters.protocols import AccessUnit
from adapters.rtp_h264 import (
    NAL_FU_A,
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SPS,
    H264Depacketizer,
    H264Packetizer,
    capture_time_sei,
    join_annexb,
    nal_type,
    packetize,
    parse_rtp,
    read_capture_time_sei,
    rtp_header,
    split_annexb,
)
from sitl.camera import IceStretch, Incident, NestMarker, SceneState, SimCamera, SlowTraffic
from sitl.camera.city import BLOCK_LAT_DEG, EAST_WEST, M_PER_DEG_LAT, Lane, Road, cars_on
from sitl.camera.component import REQUESTER_TIMEOUT_S
from sitl.camera.encoder import H264Encoder
from sitl.camera.render import ICE, CameraPose, Optics, Renderer
from sitl.camera.stream import StreamSettings
from sitl.component import CAMERA_COMPID, Outbox, Recorder
from sitl.environment import Faults, GeoPoint, LocalFrame, NestContext, Weather

LAT, LON = 43.8868, 125.3245
T_US = 1_795_918_575_092_826  # 2026-11-28, with zero bytes in it: 0x00066... needs escaping in SEI
GCS = (245, 26)


def pose(
    height_m: float = 60.0, heading_deg: float = 0.0, north_m: float = 0.0, t_s: float = 100.0
) -> CameraPose:
    return CameraPose(LAT + north_m / M_PER_DEG_LAT, LON, height_m, heading_deg, t_s)


def scene() -> SceneState:
    state = SceneState(winter=False)
    state.add_nest(NestMarker(3, LAT, LON))
    return state


# capture-time code ---------------------------------------------------------------------------------
def test_timecode_round_trip_and_rejects_frames_without_one() -> None:
    frame = np.full((720, 1280, 3), 128, dtype=np.uint8)
    assert read_capture_time_us(frame) is None  # grey: no code
    draw_capture_time(frame, T_US)
    assert read_capture_time_us(frame) == T_US
    assert CODE_BLOCKS * 16 <= 1280
    # A flipped bit fails the CRC rather than reading as another time.
    frame[:16, (4 + 40) * 16 : (4 + 41) * 16] ^= 255
    assert read_capture_time_us(frame) is None
    small = np.zeros((360, 640, 3), dtype=np.uint8)  # the same frame scaled down reads too
    draw_capture_time(small, T_US)
    assert read_capture_time_us(small) == T_US
    assert read_capture_time_us(np.zeros((720, 1280, 3), dtype=np.uint8)) is None  # black: no sync


# renderer ------------------------------------------------------------------------------------------
def test_renderer_is_deterministic_and_anchored_to_the_world() -> None:
    snap = scene().snapshot()
    a = Renderer(title="NEST 3").render(pose(), snap, T_US)
    b = Renderer(title="NEST 3").render(pose(), snap, T_US)
    assert a.shape == (720, 1280, 3)
    assert np.array_equal(a, b)
    # Another nest's drone over the same spot sees the same ground (all but the text bar).
    other = Renderer(title="NEST 12").render(pose(), snap, T_US)
    assert np.array_equal(a[:680], other[:680])
    # Flying 10 m north (heading north) moves the ground 10 m down the picture.
    gsd = Optics().gsd_m(60.0)
    moved = Renderer(title="NEST 3").render(pose(north_m=10.0), snap, T_US)
    shift = round(10.0 / gsd)
    same = a[100 : 600 - shift, 200:1000] == moved[100 + shift : 600, 200:1000]
    assert same.all(axis=-1).mean() > 0.97
    assert not np.array_equal(a[100:600], moved[100:600])


def test_height_sets_the_ground_sample_distance() -> None:
    optics = Optics()
    assert optics.gsd_m(60.0) == pytest.approx(2 * 60.0 * math.tan(math.radians(41.0)) / 1280)
    assert optics.gsd_m(120.0) == pytest.approx(2 * optics.gsd_m(60.0))
    assert optics.gsd_m(0.0) == optics.gsd_m(1.5)  # lens height above the pad


def test_traffic_moves_along_its_lane_and_slows_in_a_jam() -> None:
    road = Road(EAST_WEST, round(LAT / BLOCK_LAT_DEG))
    lane = Lane(road, 1, 0)
    s = road.s_of(LAT, LON)

    def positions(t_s: float, zones: list[SlowTraffic]) -> list[float]:
        return sorted(road.s_of(c.lat_deg, c.lon_deg) for c in cars_on(lane, s - 2000, s + 2000, t_s, zones))

    before, after = positions(100.0, []), positions(101.0, [])
    assert len(before) >= 5
    moved = [b - a for a, b in zip(before[1:-1], after[1:-1], strict=False)]
    assert all(m == pytest.approx(lane.speed_mps, rel=1e-6) for m in moved)  # 1 s at the lane's speed
    jam = [SlowTraffic(road.lat_deg, LON, radius_m=300.0, speed_factor=0.1)]
    inside = [p for p in positions(100.0, jam) if abs(p - s) < 250]
    outside = [p for p in positions(100.0, []) if abs(p - s) < 250]
    assert len(inside) > 2 * len(outside)  # slow cars bunch up


def test_scene_hooks_draw_ice_and_incidents() -> None:
    state = scene()
    plain = Renderer().render(pose(), state.snapshot(), T_US)
    lat_road = round(LAT / BLOCK_LAT_DEG) * BLOCK_LAT_DEG
    north_m = (lat_road - LAT) * M_PER_DEG_LAT
    state.ice.append(IceStretch(lat_road, LON - 0.0004, lat_road, LON + 0.0004, width_m=8.0))
    state.incidents.append(Incident(LAT + 10 / M_PER_DEG_LAT, LON, radius_m=10.0, label="CRASH"))
    marked = Renderer().render(pose(), state.snapshot(), T_US)
    row = round(360 - north_m / Optics().gsd_m(60.0) + 30)  # a little off the glint on the ice's centre
    if not 40 < row < 680:
        row = round(360 - north_m / Optics().gsd_m(60.0) - 30)
    ice_px = (marked[row, 300:980] == ICE).all(axis=-1).mean()
    assert ice_px > 0.5
    assert (plain[row, 300:980] == ICE).all(axis=-1).mean() < 0.01
    changed = (plain != marked).any(axis=-1)
    assert changed[:, 540:740].mean() > 0.02  # the incident ring around the centre
    winter = SceneState(winter=True).snapshot()
    snowy = Renderer().render(pose(), winter, T_US)
    assert snowy[40:680].mean() > plain[40:680].mean() + 40  # snow is bright


# H.264 ---------------------------------------------------------------------------------------------
def encode_frames(count: int, start_us: int = T_US) -> list[tuple[bytes, int]]:
    renderer = Renderer(title="NEST 3")
    encoder = H264Encoder(1280, 720, 30, 4_000_000, 30)
    out: list[tuple[bytes, int]] = []
    snap = scene().snapshot()
    for i in range(count):
        capture = start_us + i * 33_333
        frame = renderer.render(pose(t_s=100.0 + i / 30), snap, capture)
        out += [(unit, capture) for _, unit in encoder.encode(frame, i)]
    return out


@pytest.fixture(scope="module")
def encoded() -> list[tuple[bytes, int]]:
    return encode_frames(35)


def decode(units: list[bytes]) -> list[np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    frames: list[np.ndarray] = []
    for unit in units:
        frames += [f.to_ndarray(format="bgr24") for f in decoder.decode(av.Packet(unit))]
    return frames


def test_capture_time_survives_h264(encoded: list[tuple[bytes, int]]) -> None:
    assert len(encoded) == 35  # zerolatency: one access unit per frame, at once
    frames = decode([unit for unit, _ in encoded])
    assert len(frames) == 35
    assert frames[0].shape == (720, 1280, 3)
    assert [read_capture_time_us(f) for f in frames] == [capture for _, capture in encoded]


def test_encoder_settings_suit_webrtc(encoded: list[tuple[bytes, int]]) -> None:
    keyframes = [
        i for i, (unit, _) in enumerate(encoded) if NAL_IDR in {nal_type(n) for n in split_annexb(unit)}
    ]
    assert keyframes == [0, 30]  # GOP 30: one a second
    for i in keyframes:
        types = [nal_type(n) for n in split_annexb(encoded[i][0])]
        assert types.index(NAL_SPS) < types.index(NAL_PPS) < types.index(NAL_IDR)  # headers repeated
    sps = next(n for n in split_annexb(encoded[0][0]) if nal_type(n) == NAL_SPS)
    assert sps[1] == 66 and sps[2] & 0x40  # profile_idc baseline with constraint_set1: constrained baseline


# RTP -----------------------------------------------------------------------------------------------
def test_packetizer_single_nal_and_fu_a() -> None:
    small, big = b"\x65" + bytes(range(100)), b"\x41" + bytes(3000)
    packets = packetize([small, big], sequence=65534, timestamp=123456, ssrc=0xDEADBEEF, max_payload=1200)
    headers = [parse_rtp(p) for p in packets]
    assert all(h is not None for h in headers)
    assert [h.sequence for h in headers if h] == [65534, 65535, 0, 1]  # wraps
    assert [h.marker for h in headers if h] == [False, False, False, True]
    assert {(h.payload_type, h.timestamp, h.ssrc) for h in headers if h} == {(96, 123456, 0xDEADBEEF)}
    assert packets[0][12:] == small
    fragments = [p[12:] for p in packets[1:]]
    assert all(f[0] & 0x1F == NAL_FU_A and f[0] & 0xE0 == 0x40 for f in fragments)
    assert [f[1] & 0xC0 for f in fragments] == [0x80, 0x00, 0x40]  # start, middle, end
    assert all(f[1] & 0x1F == 1 for f in fragments)
    assert all(len(p) <= 12 + 1200 for p in packets)
    depack = H264Depacketizer()
    out = [u for p in packets for u in depack.push(p)]
    assert len(out) == 1 and split_annexb(out[0].data) == [small, big]
    assert out[0].keyframe and out[0].rtp_timestamp == 123456


def test_capture_time_sei_is_escaped_and_read_back() -> None:
    for t in (0, T_US, 0x0000_0001_0000_0300, (1 << 64) - 1):
        nal = capture_time_sei(t)
        assert nal_type(nal) == NAL_SEI
        assert b"\x00\x00\x00" not in nal and b"\x00\x00\x01" not in nal and b"\x00\x00\x02" not in nal
        assert read_capture_time_sei(nal) == t
    assert read_capture_time_sei(b"\x06\x05\x10" + bytes(24) + b"\x80") is None  # another UUID


def test_rtp_round_trip_of_real_video(encoded: list[tuple[bytes, int]]) -> None:
    packetizer = H264Packetizer(ssrc=7, sequence=65500)
    depack = H264Depacketizer()
    received = []
    sent_nals = []
    for i, (unit, capture) in enumerate(encoded):
        sent_nals.append(packetizer.prepare(split_annexb(unit), capture))
        for packet in packetizer.packetize(unit, 1000 + 3000 * i, capture):
            received += depack.push(packet)
    assert len(received) == len(encoded)
    assert [split_annexb(u.data) for u in received] == sent_nals
    assert [u.capture_time_us for u in received] == [c for _, c in encoded]
    assert [u.keyframe for u in received] == [i % 30 == 0 for i in range(len(encoded))]
    frames = decode([u.data for u in received])
    assert [read_capture_time_us(f) for f in frames] == [c for _, c in encoded]


def test_sps_pps_are_sent_before_an_idr_that_lacks_them() -> None:
    sps, pps, idr, p = b"\x67\x42\xc0\x1f", b"\x68\xce", b"\x65\x88" + bytes(10), b"\x41\x9a" + bytes(10)
    packetizer = H264Packetizer(ssrc=1)
    packetizer.packetize(join_annexb([sps, pps, idr]), 0)
    assert packetizer.prepare([p], None) == [p]
    assert packetizer.prepare([idr], None) == [sps, pps, idr]


def test_loss_drops_until_the_next_keyframe(encoded: list[tuple[bytes, int]]) -> None:
    packetizer = H264Packetizer(ssrc=9)
    per_unit = [packetizer.packetize(unit, 3000 * i, c) for i, (unit, c) in enumerate(encoded)]
    depack = H264Depacketizer()
    delivered: list[int] = []
    for i, packets in enumerate(per_unit):
        if i == 5:
            packets = packets[:-1]  # frame 5 loses its marker packet
        if i == 12:
            packets = packets[1:]  # frame 12 loses its first packet
        for packet in packets:
            delivered += [u.rtp_timestamp // 3000 for u in depack.push(packet)]
    assert delivered == [0, 1, 2, 3, 4, 30, 31, 32, 33, 34]
    assert depack.stats.lost_packets == 2
    # A new source (camera restarted) resets the reassembly and waits for its keyframe.
    fresh = H264Packetizer(ssrc=10)
    p_frame = fresh.packetize(encoded[31][0], 1)
    assert [u for pk in p_frame for u in depack.push(pk)] == []
    idr = fresh.packetize(encoded[30][0], 2)
    assert [u.keyframe for pk in idr for u in depack.push(pk)] == [True]


def test_depacketizer_takes_stap_a_and_ignores_what_is_not_rtp() -> None:
    sps, pps, idr = b"\x67\x42\xc0\x1f", b"\x68\xce", b"\x65\x88\x84"
    stap = bytes([0x78]) + b"".join(len(n).to_bytes(2, "big") + n for n in (sps, pps))
    depack = H264Depacketizer()
    assert depack.push(b"not rtp at all") == []
    assert depack.push(rtp_header(True, 1, 0, 5, payload_type=97) + idr) == []
    assert depack.push(rtp_header(False, 1, 900, 5) + stap) == []
    units = depack.push(rtp_header(True, 2, 900, 5) + idr)
    assert [split_annexb(u.data) for u in units] == [[sps, pps, idr]]
    assert depack.stats.ignored_packets == 2


# the MAVLink component -----------------------------------------------------------------------------
class FakeDrone:
    def __init__(self, frame: LocalFrame) -> None:
        self.frame = frame
        self.ned = (0.0, 0.0, -50.0)
        self.heading_deg = 90.0

    @property
    def position(self) -> GeoPoint:
        return self.frame.to_geo(*self.ned)

    def position_ned_m(self) -> tuple[float, float, float]:
        return self.ned


class Harness:
    """A SimCamera with its outgoing messages parsed, an RTP receiver, and a hand-driven clock."""

    def __init__(self) -> None:
        home = GeoPoint(LAT, LON, 200.0)
        self.ctx = NestContext(
            nest_id=3, system_id=3, name="test", home=home, frame=LocalFrame(home),
            weather=Weather(), faults=Faults(), recorder=Recorder(),
        )  # fmt: skip
        self.sent: list[Any] = []
        self._parser = mav.MAVLink(None)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.settimeout(5.0)
        self.wall_s = 0.0
        self.camera = SimCamera(
            self.ctx,
            Outbox(3, CAMERA_COMPID, self._transmit),
            FakeDrone(self.ctx.frame),
            scene(),
            video_host="127.0.0.1",
            video_port=self.rtp.getsockname()[1],
            settings=StreamSettings(),
            monotonic=lambda: self.wall_s,
        )
        self.sim_s = 0.0

    def _transmit(self, data: bytes) -> None:
        self.sent += self._parser.parse_buffer(data) or []

    def command(self, command: int, *params: float, source: tuple[int, int] = GCS, target: int = 100) -> int:
        p = [*params, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0][:7]
        msg = mav.MAVLink_command_long_message(3, target, command, 0, *p)
        msg._header = mav.MAVLink_header(msg.id, srcSystem=source[0], srcComponent=source[1])
        before = len(self.sent)
        self.camera.on_message(msg)
        acks = [m for m in self.sent[before:] if m.get_type() == "COMMAND_ACK" and m.command == command]
        return int(acks[-1].result) if acks else -1

    def heartbeat(self, system: int = GCS[0]) -> None:
        msg = mav.MAVLink_heartbeat_message(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3)
        msg._header = mav.MAVLink_header(msg.id, srcSystem=system, srcComponent=GCS[1])
        self.camera.on_message(msg)

    def step(self, dt_s: float = 0.05) -> None:
        self.sim_s += dt_s
        self.camera.step(self.sim_s, dt_s)

    def of_type(self, name: str) -> list[Any]:
        return [m for m in self.sent if m.get_type() == name]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.camera.close()
    if h.camera.streamer is not None:
        h.camera.streamer.join(5.0)
    h.rtp.close()


def camera_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sitl.camera.")]


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_advertises_itself_as_a_camera(harness: Harness) -> None:
    for _ in range(25):
        harness.step()
    beats = harness.of_type("HEARTBEAT")
    assert len(beats) >= 1 and beats[0].type == mav.MAV_TYPE_CAMERA
    assert harness.command(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_CAMERA_INFORMATION) == 0
    info = harness.of_type("CAMERA_INFORMATION")[-1]
    assert (info.resolution_h, info.resolution_v) == (1280, 720)
    assert info.flags & mav.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM
    assert harness.command(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, 0) == 0
    stream = harness.of_type("VIDEO_STREAM_INFORMATION")[-1]
    port = harness.rtp.getsockname()[1]
    assert (stream.stream_id, stream.count, stream.type, stream.encoding) == (
        1, 1, mav.VIDEO_STREAM_TYPE_RTPUDP, mav.VIDEO_STREAM_ENCODING_H264,
    )  # fmt: skip
    assert (stream.resolution_h, stream.resolution_v, stream.framerate) == (1280, 720, 30.0)
    assert stream.uri == f"udp://0.0.0.0:{port}" and stream.flags == 0
    assert harness.command(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, 2) == (
        mav.MAV_RESULT_DENIED
    )
    assert harness.command(mav.MAV_CMD_REQUEST_VIDEO_STREAM_STATUS, 1) == 0  # the older command
    assert harness.of_type("VIDEO_STREAM_STATUS")[-1].flags == 0
    assert harness.command(mav.MAV_CMD_DO_DIGICAM_CONTROL) == mav.MAV_RESULT_UNSUPPORTED


def test_idle_camera_has_no_thread_and_streams_rtp_only_when_asked(harness: Harness) -> None:
    for _ in range(40):
        harness.step()
    assert camera_threads() == []
    harness.heartbeat()
    assert harness.command(mav.MAV_CMD_VIDEO_START_STREAMING, 1) == mav.MAV_RESULT_ACCEPTED
    assert [t.name for t in camera_threads()] == ["sitl.camera.3"]
    assert harness.of_type("VIDEO_STREAM_STATUS")[-1].flags == mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING
    depack = H264Depacketizer()
    units: list[AccessUnit] = []
    while len(units) < 3:
        harness.step()
        units += depack.push(harness.rtp.recv(65536))
    assert units[0].keyframe
    frame = decode([units[0].data])[0]
    assert frame.shape == (720, 1280, 3)
    assert read_capture_time_us(frame) == units[0].capture_time_us
    assert units[0].capture_time_us is not None
    assert abs(units[0].capture_time_us - time.time_ns() // 1000) < 5_000_000
    assert harness.command(mav.MAV_CMD_VIDEO_STOP_STREAMING, 1) == mav.MAV_RESULT_ACCEPTED
    streamer = harness.camera.streamer
    assert streamer is None
    wait_until(lambda: camera_threads() == [])
    kinds = [r.kind for r in harness.ctx.recorder.all("camera.")]
    assert kinds == ["camera.stream_started", "camera.stream_stopped"]


def test_stream_stops_when_the_watching_station_falls_silent(harness: Harness) -> None:
    harness.heartbeat()
    assert harness.command(mav.MAV_CMD_VIDEO_START_STREAMING, 0) == mav.MAV_RESULT_ACCEPTED
    for _ in range(10):
        harness.wall_s += 1.0
        harness.heartbeat()  # heard once a second: keeps streaming
        harness.step()
    assert harness.camera.streaming
    harness.heartbeat(system=99)  # another station's heartbeat does not count
    harness.wall_s += REQUESTER_TIMEOUT_S + 0.5
    harness.step()
    assert harness.camera.streamer is None
    wait_until(lambda: camera_threads() == [])
    stopped = harness.ctx.recorder.all("camera.stream_stopped")[-1]
    assert "heartbeat" in stopped.data["reason"]


def test_stream_keeps_running_while_another_station_still_watches(harness: Harness) -> None:
    other = (246, 190)
    harness.heartbeat()
    harness.heartbeat(system=other[0])
    assert harness.command(mav.MAV_CMD_VIDEO_START_STREAMING, 1) == 0
    assert harness.command(mav.MAV_CMD_VIDEO_START_STREAMING, 1, source=other) == 0
    assert harness.command(mav.MAV_CMD_VIDEO_STOP_STREAMING, 1) == 0
    harness.step()
    assert harness.camera.streaming
    assert harness.command(mav.MAV_CMD_VIDEO_STOP_STREAMING, 1, source=other) == 0
    assert harness.camera.streamer is None
    assert harness.command(mav.MAV_CMD_VIDEO_START_STREAMING, 5) == mav.MAV_RESULT_DENIED  # no stream 5
