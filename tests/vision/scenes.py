"""Frames rendered by the simulator's own renderer (no network), and an H.264 round trip."""

from __future__ import annotations

import math

import av
import numpy as np
import numpy.typing as npt

from dronectl.domain.geo import GeoPoint, destination
from sitl.camera.city import M_PER_DEG_LAT, cars_on, lanes_of, m_per_deg_lon, roads_near
from sitl.camera.encoder import H264Encoder
from sitl.camera.render import CameraPose, Optics, Renderer, _Projector
from sitl.camera.scene import IceStretch, SceneSnapshot

Image = npt.NDArray[np.uint8]

# The simulated city's avenues: E-W at latitudes that are multiples of 0.0044 deg, N-S at
# longitudes that are multiples of 0.006 deg (sitl.camera.city).
EW_AVENUE_LAT = 43.868
NS_AVENUE_LON = 125.304
CAPTURE_US = 1_796_000_000_000_000

OPTICS = Optics()


def render(
    centre: GeoPoint,
    height_m: float,
    heading_deg: float,
    scene: SceneSnapshot,
    sim_time_s: float = 1000.0,
    renderer: Renderer | None = None,
    capture_us: int = CAPTURE_US,
) -> Image:
    pose = CameraPose(centre.lat_deg, centre.lon_deg, height_m, heading_deg, sim_time_s)
    return (renderer or Renderer(OPTICS)).render(pose, scene, capture_us)


def ew_ice(lon_from: float, lon_to: float, width_m: float = 10.0) -> IceStretch:
    """An icy stretch down the middle of the E-W avenue."""
    return IceStretch(EW_AVENUE_LAT, lon_from, EW_AVENUE_LAT, lon_to, width_m)


def offset(point: GeoPoint, east_m: float, north_m: float) -> GeoPoint:
    if east_m == north_m == 0.0:
        return point
    return destination(
        point, float(np.degrees(np.arctan2(east_m, north_m))), float(np.hypot(east_m, north_m))
    )


def h264_round_trip(frames: list[Image], fps: int = 30, bitrate_bps: int = 4_000_000) -> list[Image]:
    """Each frame as the service sees it: encoded as the simulated camera does, then decoded."""
    height, width = frames[0].shape[:2]
    encoder = H264Encoder(width, height, fps, bitrate_bps, gop=fps)
    units = [data for i, frame in enumerate(frames) for _, data in encoder.encode(frame, i)]
    units += [data for _, data in encoder.flush()]
    decoder = av.CodecContext.create("h264", "r")
    out: list[Image] = []
    for data in units:
        out += [f.to_ndarray(format="bgr24") for f in decoder.decode(av.Packet(data))]
    out += [f.to_ndarray(format="bgr24") for f in decoder.decode(None)]
    return out


def lane_speeds_in_view(
    centre: GeoPoint, height_m: float, heading_deg: float, sim_time_s: float, scene: SceneSnapshot
) -> list[float]:
    """The true speed (m/s) of every car whose centre is in the picture (below its top code strip
    and above its bottom display line, as the traffic estimator looks), from the city's lanes."""
    pose = CameraPose(centre.lat_deg, centre.lon_deg, height_m, heading_deg, sim_time_s)
    proj = _Projector(pose, OPTICS)
    top, bottom = OPTICS.height_px / 40, OPTICS.height_px * (1 - 1 / 20)
    m_lon = m_per_deg_lon(centre.lat_deg)
    speeds: list[float] = []
    for road in roads_near(centre.lat_deg, centre.lon_deg, proj.radius_m):
        s = road.s_of(centre.lat_deg, centre.lon_deg)
        for lane in lanes_of(road):
            cars = cars_on(lane, s - proj.radius_m, s + proj.radius_m, sim_time_s, scene.slow_traffic)
            if not cars:
                continue
            latlon = np.array([[car.lat_deg, car.lon_deg] for car in cars])
            xy = proj.px(latlon)
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < OPTICS.width_px) & (xy[:, 1] >= top) & (xy[:, 1] < bottom)
            for lat, lon in latlon[inside]:
                zones = [
                    z.speed_factor
                    for z in scene.slow_traffic
                    if math.hypot((z.lat_deg - lat) * M_PER_DEG_LAT, (z.lon_deg - lon) * m_lon) < z.radius_m
                ]
                speeds.append(lane.speed_mps * min(zones, default=1.0))
    return speeds
