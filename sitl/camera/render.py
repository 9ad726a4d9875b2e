"""Draws what a drone's downward-looking camera sees, with OpenCV.

The camera hangs in a stabilised gimbal pointing straight down (nadir), the top of the picture
towards the drone's heading. The ground footprint follows from the height above the pad and the
horizontal field of view: ``gsd = 2 h tan(hfov / 2) / width`` metres per pixel. Everything is
placed by latitude and longitude (``sitl.camera.city``, ``sitl.camera.scene``) and projected
around the drone with a flat-earth approximation, good to centimetres over a view's few hundred
metres. A frame depends only on its inputs (pose, scene, times), so it is reproducible.
Cars on an icy stretch skid: each is drawn yawed 12-35 degrees off its lane, the side and angle
from the car's own hash.

Each frame carries an on-screen display (nest, height, heading, ground sample distance, time)
and, along its top edge, the machine-readable capture time (``adapters.camera_timecode``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from adapters.camera_timecode import Frame, draw_capture_time
from sitl.camera.city import (
    CAR_LENGTH_M,
    CAR_WIDTH_M,
    EAST_WEST,
    M_PER_DEG_LAT,
    NORTH_SOUTH,
    ROOF_STYLES,
    Road,
    blocks_near,
    cars_on,
    is_avenue,
    lanes_of,
    lots_of_block,
    m_per_deg_lon,
    roads_near,
)
from sitl.camera.scene import IceStretch, SceneSnapshot

MIN_HEIGHT_M = 1.5  # the lens sits this high above the pad when the drone is landed
HFOV_DEG = 82.0


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is, read from the simulated drone at one moment."""

    lat_deg: float
    lon_deg: float
    height_m: float  # above the ground (the pad's altitude)
    heading_deg: float
    sim_time_s: float


@dataclass(frozen=True)
class Optics:
    width_px: int = 1280
    height_px: int = 720
    hfov_deg: float = HFOV_DEG

    def gsd_m(self, height_m: float) -> float:
        """Ground sample distance (metres per pixel) at ``height_m``."""
        h = max(height_m, MIN_HEIGHT_M)
        return 2.0 * h * math.tan(math.radians(self.hfov_deg) / 2.0) / self.width_px


BGR = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    ground: BGR
    park: BGR
    road: BGR
    marking: BGR
    centre_line: BGR
    kerb: BGR
    roofs: tuple[BGR, ...]
    cars: tuple[BGR, ...]


SUMMER = Palette(
    ground=(88, 112, 104),
    park=(60, 130, 70),
    road=(72, 72, 72),
    marking=(235, 235, 235),
    centre_line=(40, 200, 230),
    kerb=(150, 150, 150),
    roofs=((110, 110, 120), (70, 80, 150), (150, 150, 150), (60, 60, 90), (170, 160, 140), (95, 120, 160)),
    cars=(
        (240, 240, 240), (30, 30, 30), (40, 40, 180), (170, 90, 30),
        (150, 150, 150), (60, 150, 220), (90, 60, 40), (200, 200, 60),
    ),
)  # fmt: skip
WINTER = Palette(
    ground=(232, 232, 226),
    park=(240, 240, 236),
    road=(112, 108, 104),
    marking=(215, 215, 215),
    centre_line=(90, 190, 215),
    kerb=(250, 250, 250),
    roofs=(
        (245, 245, 242),
        (236, 238, 240),
        (225, 225, 228),
        (248, 246, 244),
        (215, 218, 222),
        (240, 240, 240),
    ),
    cars=SUMMER.cars,
)
ICE = (238, 214, 190)  # BGR: white with a blue sheen
ICE_GLINT = (255, 246, 232)
INCIDENT = ((40, 40, 230), (40, 150, 255))  # red, orange: alternating at 2 Hz
PAD = (170, 170, 168)
DOCK = (60, 62, 66)
DOCK_STRIPE = (30, 200, 240)


class _Projector:
    """(lat, lon) -> pixel for one frame."""

    def __init__(self, pose: CameraPose, optics: Optics) -> None:
        self.lat0 = pose.lat_deg
        self.lon0 = pose.lon_deg
        self.m_lon = m_per_deg_lon(pose.lat_deg)
        self.gsd = optics.gsd_m(pose.height_m)
        psi = math.radians(pose.heading_deg)
        # Picture x to the right of the heading, y towards the drone's tail.
        fe, fn = math.sin(psi), math.cos(psi)  # forward (east, north)
        re, rn = math.cos(psi), -math.sin(psi)  # right
        cx, cy = optics.width_px / 2.0, optics.height_px / 2.0
        k = 1.0 / self.gsd
        self.matrix = np.array(
            [
                [re * k * self.m_lon, rn * k * M_PER_DEG_LAT],
                [-fe * k * self.m_lon, -fn * k * M_PER_DEG_LAT],
            ]
        )
        self.offset = np.array([cx, cy])
        self.radius_m = self.gsd * math.hypot(optics.width_px, optics.height_px) / 2.0
        self.heading_deg = pose.heading_deg

    def px(self, latlon: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        """Pixel coordinates of an (..., 2) array of (lat, lon)."""
        rel = np.stack([latlon[..., 1] - self.lon0, latlon[..., 0] - self.lat0], axis=-1)
        return np.rint(rel @ self.matrix.T + self.offset).astype(np.int32)

    def metres(
        self, north_m: npt.NDArray[np.float64], east_m: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """(lat, lon) of offsets in metres from the camera."""
        return np.stack([self.lat0 + north_m / M_PER_DEG_LAT, self.lon0 + east_m / self.m_lon], axis=-1)


def _rect(south: float, west: float, north: float, east: float) -> list[list[float]]:
    return [[south, west], [south, east], [north, east], [north, west]]


def _boxes(
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    heading_deg: npt.NDArray[np.float64],
    length_m: float,
    width_m: float,
) -> npt.NDArray[np.float64]:
    """(n, 4, 2) corners (lat, lon) of boxes centred at (lat, lon), their length along the heading."""
    psi = np.radians(heading_deg)
    fe, fn = np.sin(psi) * length_m / 2, np.cos(psi) * length_m / 2
    re, rn = np.cos(psi) * width_m / 2, -np.sin(psi) * width_m / 2
    east = np.stack([fe + re, fe - re, -fe - re, -fe + re], axis=1)
    north = np.stack([fn + rn, fn - rn, -fn - rn, -fn + rn], axis=1)
    m_lon = 111_320.0 * np.cos(np.radians(lat))
    return np.stack([lat[:, None] + north / M_PER_DEG_LAT, lon[:, None] + east / m_lon[:, None]], axis=-1)


def _road_points(road: Road, s_m: npt.NDArray[np.float64], offset_m: float) -> npt.NDArray[np.float64]:
    """(lat, lon) of points ``s_m`` along ``road``, ``offset_m`` to its side (see ``Road.point``)."""
    if road.axis == NORTH_SOUTH:
        lat = s_m / M_PER_DEG_LAT
        lon = road.lon_deg + offset_m / (111_320.0 * np.cos(np.radians(lat)))
        return np.stack([lat, lon], axis=-1)
    lat = np.full_like(s_m, road.lat_deg + offset_m / M_PER_DEG_LAT)
    return np.stack([lat, s_m / road.s_per_deg()], axis=-1)


def _skid_yaw_deg(
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    seeds: npt.NDArray[np.uint64],
    ice: Sequence[IceStretch],
) -> npt.NDArray[np.float64]:
    """Yaw (degrees) of cars skidding on ``ice``: 12..35 deg either way for a car inside a stretch
    (within half its width of the centre line), from the car's hash; 0 for every other car."""
    yaw = np.zeros(lat.shape)
    if lat.size == 0:
        return yaw
    m_lon = m_per_deg_lon(float(lat[0]))
    on_ice = np.zeros(lat.shape, dtype=bool)
    for stretch in ice:
        # Flat-earth metres from the stretch's start, as the renderer projects.
        ax = (stretch.end_lon_deg - stretch.start_lon_deg) * m_lon
        ay = (stretch.end_lat_deg - stretch.start_lat_deg) * M_PER_DEG_LAT
        px = (lon - stretch.start_lon_deg) * m_lon
        py = (lat - stretch.start_lat_deg) * M_PER_DEG_LAT
        length2 = ax * ax + ay * ay
        t = np.clip((px * ax + py * ay) / length2, 0.0, 1.0) if length2 > 0 else np.zeros(lat.shape)
        on_ice |= np.hypot(px - t * ax, py - t * ay) <= stretch.width_m / 2
    if on_ice.any():
        h = seeds[on_ice]
        angle = 12.0 + 23.0 * ((h >> np.uint64(20)) & np.uint64(0xFF)).astype(np.float64) / 255.0
        sign = np.where((h >> np.uint64(30)) & np.uint64(1), 1.0, -1.0)
        yaw[on_ice] = sign * angle
    return yaw


class Renderer:
    """Renders frames for one camera. Not thread-safe: one per render thread."""

    def __init__(self, optics: Optics | None = None, title: str = "") -> None:
        self.optics = optics or Optics()
        self.title = title
        self._backgrounds: dict[BGR, Frame] = {}

    def render(self, pose: CameraPose, scene: SceneSnapshot, capture_time_us: int) -> Frame:
        o = self.optics
        palette = WINTER if scene.winter else SUMMER
        frame = self._background(palette.ground).copy()
        proj = _Projector(pose, o)
        self._lots(frame, proj, palette)
        roads = roads_near(pose.lat_deg, pose.lon_deg, proj.radius_m)
        self._roads(frame, proj, palette, roads, scene.winter)
        self._ice(frame, proj, scene)
        self._traffic(frame, proj, palette, roads, pose, scene)
        self._nests(frame, proj, scene)
        self._incidents(frame, proj, scene, pose.sim_time_s)
        self._osd(frame, pose, proj, capture_time_us)
        draw_capture_time(frame, capture_time_us)
        return frame

    def _background(self, colour: BGR) -> Frame:
        """A frame of plain ``colour``, made once (filling 2.7 MB per frame costs more than copying)."""
        background = self._backgrounds.get(colour)
        if background is None:
            o = self.optics
            background = np.empty((o.height_px, o.width_px, 3), dtype=np.uint8)
            background[:] = colour
            self._backgrounds[colour] = background
        return background

    # layers ---------------------------------------------------------------------------------------
    def _lots(self, frame: Frame, proj: _Projector, palette: Palette) -> None:
        corners: list[list[list[float]]] = []
        kinds: list[int] = []
        for i, j in blocks_near(proj.lat0, proj.lon0, proj.radius_m + 5.0):
            for lot in lots_of_block(i, j):
                corners.append(_rect(lot.south_deg, lot.west_deg, lot.north_deg, lot.east_deg))
                kinds.append(lot.kind)
        if not corners:
            return
        polys = proj.px(np.array(corners))
        kind_array = np.array(kinds)
        for kind in set(kinds):
            colour = palette.park if kind == 0 else palette.roofs[(kind - 1) % ROOF_STYLES]
            cv2.fillPoly(frame, list(polys[kind_array == kind]), colour)
        if proj.gsd < 0.6:
            cv2.polylines(
                frame, list(polys[kind_array != 0]), True, (40, 40, 40), max(1, round(0.6 / proj.gsd))
            )

    def _roads(
        self, frame: Frame, proj: _Projector, palette: Palette, roads: list[Road], winter: bool
    ) -> None:
        r = proj.radius_m + 40.0
        carriageways: list[npt.NDArray[np.float64]] = []
        kerbs: list[npt.NDArray[np.float64]] = []
        centre: list[npt.NDArray[np.float64]] = []
        dashes: list[npt.NDArray[np.float64]] = []
        draw_dashes = proj.gsd < 0.5
        for road in roads:
            s0, s1 = self._span(road, proj, r)
            ends = np.array([s0, s1])
            w = road.width_m / 2
            left, right = _road_points(road, ends, -w), _road_points(road, ends, w)
            carriageways.append(np.concatenate([left, right[::-1]]))
            kerbs += [left, right]
            if is_avenue(road.index):
                centre += [_road_points(road, ends, -0.2), _road_points(road, ends, 0.2)]
            if not draw_dashes:
                continue
            # Lane dashes: 3 m painted, 6 m gap, anchored to the road's own coordinate.
            lane_w = (w - 1.0) / road.lanes_per_direction
            offsets = (
                [0.0] if not is_avenue(road.index) else [k * lane_w * sgn for k in (1, 2) for sgn in (1, -1)]
            )
            starts = np.arange(math.floor(s0 / 9.0) * 9.0, s1, 9.0)
            for off in offsets:
                a = _road_points(road, starts, off)
                b = _road_points(road, starts + 3.0, off)
                dashes.append(np.stack([a, b], axis=1))
        px_m = 1.0 / proj.gsd
        cv2.fillPoly(frame, list(proj.px(np.array(carriageways))), palette.road)
        if dashes:
            cv2.polylines(
                frame,
                list(proj.px(np.concatenate(dashes))),
                False,
                palette.marking,
                max(1, round(0.15 * px_m)),
            )
        if centre:
            cv2.polylines(
                frame, list(proj.px(np.array(centre))), False, palette.centre_line, max(1, round(0.15 * px_m))
            )
        kerb_px = max(1, round((1.2 if winter else 0.3) * px_m))
        cv2.polylines(frame, list(proj.px(np.array(kerbs))), False, palette.kerb, kerb_px)
        # Junctions: plain asphalt over the markings.
        junctions = [
            _rect(
                b.lat_deg - b.width_m / 2 / M_PER_DEG_LAT,
                a.lon_deg - a.width_m / 2 / m_per_deg_lon(b.lat_deg),
                b.lat_deg + b.width_m / 2 / M_PER_DEG_LAT,
                a.lon_deg + a.width_m / 2 / m_per_deg_lon(b.lat_deg),
            )
            for a in roads
            if a.axis == NORTH_SOUTH
            for b in roads
            if b.axis == EAST_WEST
        ]
        if junctions:
            cv2.fillPoly(frame, list(proj.px(np.array(junctions))), palette.road)

    @staticmethod
    def _span(road: Road, proj: _Projector, radius_m: float) -> tuple[float, float]:
        s = road.s_of(proj.lat0, proj.lon0)
        return s - radius_m, s + radius_m

    def _ice(self, frame: Frame, proj: _Projector, scene: SceneSnapshot) -> None:
        px_m = 1.0 / proj.gsd
        for stretch in scene.ice:
            ends = proj.px(
                np.array(
                    [
                        [stretch.start_lat_deg, stretch.start_lon_deg],
                        [stretch.end_lat_deg, stretch.end_lon_deg],
                    ]
                )
            )
            thickness = min(4000, max(2, round(stretch.width_m * px_m)))
            p0 = (int(ends[0][0]), int(ends[0][1]))
            p1 = (int(ends[1][0]), int(ends[1][1]))
            cv2.line(frame, p0, p1, ICE, thickness)
            # A glint along the middle: the sheen that tells ice from snow.
            cv2.line(frame, p0, p1, ICE_GLINT, max(1, thickness // 5))

    def _traffic(
        self,
        frame: Frame,
        proj: _Projector,
        palette: Palette,
        roads: list[Road],
        pose: CameraPose,
        scene: SceneSnapshot,
    ) -> None:
        if proj.gsd > 1.0:
            return  # cars under five pixels long: not worth drawing
        r = proj.radius_m + CAR_LENGTH_M
        cars = [
            car
            for road in roads
            for lane in lanes_of(road)
            for car in cars_on(lane, *self._span(road, proj, r), pose.sim_time_s, scene.slow_traffic)
        ]
        if not cars:
            return
        lat = np.array([c.lat_deg for c in cars])
        lon = np.array([c.lon_deg for c in cars])
        heading = np.array([c.heading_deg for c in cars])
        if scene.ice:
            seeds = np.array([c.seed for c in cars], dtype=np.uint64)
            heading = heading + _skid_yaw_deg(lat, lon, seeds, scene.ice)
        colours = np.array([c.color for c in cars])
        polys = proj.px(_boxes(lat, lon, heading, CAR_LENGTH_M, CAR_WIDTH_M))
        for colour in set(colours.tolist()):
            cv2.fillPoly(frame, list(polys[colours == colour]), palette.cars[colour])
        if proj.gsd < 0.25:
            # The front quarter darker: the windscreen shows which way a car drives.
            front = polys[:, :2]
            mid = (polys[:, :2] * 3 + polys[:, 2:][:, ::-1]) // 4
            windscreens = np.concatenate([front, mid[:, ::-1]], axis=1).astype(np.int32)
            cv2.fillPoly(frame, list(windscreens), (50, 40, 30))

    def _nests(self, frame: Frame, proj: _Projector, scene: SceneSnapshot) -> None:
        px_m = 1.0 / proj.gsd
        for nest in scene.nests:
            dist = math.hypot(
                (nest.lat_deg - proj.lat0) * M_PER_DEG_LAT, (nest.lon_deg - proj.lon0) * proj.m_lon
            )
            if dist > proj.radius_m + 15.0:
                continue
            here = (np.array([nest.lat_deg]), np.array([nest.lon_deg]), np.zeros(1))
            pad, dock = proj.px(_boxes(*here, 12.0, 12.0))[0], proj.px(_boxes(*here, 3.0, 3.0))[0]
            cv2.fillPoly(frame, [pad], PAD)
            cv2.fillPoly(frame, [dock], DOCK)
            cv2.polylines(frame, [dock], True, DOCK_STRIPE, max(1, round(0.25 * px_m)))
            centre = proj.px(np.array([nest.lat_deg, nest.lon_deg]))
            label_at = (int(centre[0] + 3.5 * px_m), int(centre[1] - 3.5 * px_m))
            scale = min(2.0, max(0.4, 0.12 * px_m))
            cv2.putText(
                frame, f"NEST {nest.nest_id}", label_at, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 2
            )

    def _incidents(self, frame: Frame, proj: _Projector, scene: SceneSnapshot, sim_time_s: float) -> None:
        colour = INCIDENT[int(sim_time_s * 2.0) % 2]
        px_m = 1.0 / proj.gsd
        for incident in scene.incidents:
            centre = proj.px(np.array([incident.lat_deg, incident.lon_deg]))
            radius = max(4, round(incident.radius_m * px_m))
            c = (int(centre[0]), int(centre[1]))
            cv2.circle(frame, c, radius, colour, max(2, round(1.2 * px_m)))
            cv2.drawMarker(
                frame, c, colour, cv2.MARKER_TILTED_CROSS, max(8, radius // 3), max(2, round(0.8 * px_m))
            )
            cv2.putText(
                frame,
                incident.label[:32],
                (c[0] - radius, c[1] - radius - 8),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.8,
                colour,
                2,
            )

    def _osd(self, frame: Frame, pose: CameraPose, proj: _Projector, capture_time_us: int) -> None:
        h, w = frame.shape[:2]
        cx, cy = w // 2, h // 2
        cv2.drawMarker(frame, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, 24, 1)
        stamp = time.strftime("%H:%M:%S", time.gmtime(capture_time_us / 1e6))
        text = (
            f"{self.title}  H {pose.height_m:5.1f} m  HDG {pose.heading_deg % 360:03.0f}  "
            f"GSD {proj.gsd * 100:4.1f} cm  {stamp}.{capture_time_us // 1000 % 1000:03d}Z"
        )
        cv2.rectangle(frame, (0, h - 34), (w, h), (0, 0, 0), -1)
        cv2.putText(frame, text, (12, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1)
