"""Where a pixel of a drone's nadir camera lies on the ground: pure functions.

The camera hangs in a stabilised gimbal looking straight down, the top of the picture towards the
drone's heading (``sitl.camera.render`` draws its view the same way). Over flat ground a pixel
covers ``gsd = 2 h tan(hfov / 2) / width`` metres (square pixels), so pixel ``(x, y)`` lies
``(x - width / 2) * gsd`` metres to the right of the heading and ``(height / 2 - y) * gsd``
metres ahead of the point below the camera. Pixel coordinates are continuous, with the picture's
centre at ``(width / 2, height / 2)``, as the renderer projects them.

The optics come from the camera's VIDEO_STREAM_INFORMATION (:class:`CameraOptics.from_stream`:
width, height, horizontal field of view) when it advertised them; otherwise from
:data:`DEFAULT_OPTICS`, the simulated nadir camera's (82 degrees, 1280x720). Errors: a tilted
gimbal, terrain and lens distortion are ignored, as is the drone's height error (the barometer's
metre or so is a few percent of the distances at 30-80 m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapters.protocols import VideoStreamInfo
from dronectl.domain.geo import GeoPoint, LocalProjection

DEFAULT_HFOV_DEG = 82.0  # the simulated camera's (sitl.camera.render.HFOV_DEG)
DEFAULT_WIDTH_PX = 1280
DEFAULT_HEIGHT_PX = 720


@dataclass(frozen=True)
class CameraOptics:
    width_px: int = DEFAULT_WIDTH_PX
    height_px: int = DEFAULT_HEIGHT_PX
    hfov_deg: float = DEFAULT_HFOV_DEG

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise ValueError(f"picture size {self.width_px}x{self.height_px} must be positive")
        if not 0.0 < self.hfov_deg < 180.0:
            raise ValueError(f"horizontal field of view {self.hfov_deg} deg outside (0, 180)")

    @classmethod
    def from_stream(cls, info: VideoStreamInfo | None) -> CameraOptics:
        """The optics a camera advertises; the defaults for what it leaves out (0) or without info."""
        if info is None:
            return DEFAULT_OPTICS
        return cls(
            info.width_px if info.width_px > 0 else DEFAULT_WIDTH_PX,
            info.height_px if info.height_px > 0 else DEFAULT_HEIGHT_PX,
            float(info.hfov_deg) if 0 < info.hfov_deg < 180 else DEFAULT_HFOV_DEG,
        )

    def gsd_m(self, height_m: float, width_px: int | None = None) -> float:
        """Metres per pixel at ``height_m`` above the ground, for a picture ``width_px`` wide
        (the stream's own width by default; a picture scaled down has larger pixels)."""
        return ground_sample_m(height_m, self.hfov_deg, width_px or self.width_px)


DEFAULT_OPTICS = CameraOptics()


def ground_sample_m(height_m: float, hfov_deg: float, width_px: int) -> float:
    """Ground sample distance (metres per pixel) of a nadir camera ``height_m`` above flat ground."""
    if not height_m > 0.0:
        raise ValueError(f"height {height_m} m must be above the ground")
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"horizontal field of view {hfov_deg} deg outside (0, 180)")
    if width_px <= 0:
        raise ValueError(f"picture width {width_px} px must be positive")
    return 2.0 * height_m * math.tan(math.radians(hfov_deg) / 2.0) / width_px


def pixel_offset_m(
    x_px: float, y_px: float, width_px: int, height_px: int, gsd_m: float, heading_deg: float
) -> tuple[float, float]:
    """(east_m, north_m) of pixel (x, y) from the point below the camera."""
    right_m = (x_px - width_px / 2.0) * gsd_m
    ahead_m = (height_px / 2.0 - y_px) * gsd_m
    psi = math.radians(heading_deg)
    east_m = right_m * math.cos(psi) + ahead_m * math.sin(psi)
    north_m = -right_m * math.sin(psi) + ahead_m * math.cos(psi)
    return east_m, north_m


def pixel_to_ground(
    x_px: float,
    y_px: float,
    width_px: int,
    height_px: int,
    gsd_m: float,
    heading_deg: float,
    centre: GeoPoint,
) -> GeoPoint:
    """The ground position of pixel (x, y); ``centre`` is the point below the camera."""
    if not gsd_m > 0.0:
        raise ValueError(f"ground sample distance {gsd_m} m must be positive")
    east_m, north_m = pixel_offset_m(x_px, y_px, width_px, height_px, gsd_m, heading_deg)
    return LocalProjection(centre).to_geo(east_m, north_m)


def ground_to_pixel(
    point: GeoPoint, width_px: int, height_px: int, gsd_m: float, heading_deg: float, centre: GeoPoint
) -> tuple[float, float]:
    """The pixel (x, y) where ``point`` appears (it may lie outside the picture)."""
    if not gsd_m > 0.0:
        raise ValueError(f"ground sample distance {gsd_m} m must be positive")
    east_m, north_m = LocalProjection(centre).to_xy(point)
    psi = math.radians(heading_deg)
    right_m = east_m * math.cos(psi) - north_m * math.sin(psi)
    ahead_m = east_m * math.sin(psi) + north_m * math.cos(psi)
    return width_px / 2.0 + right_m / gsd_m, height_px / 2.0 - ahead_m / gsd_m
