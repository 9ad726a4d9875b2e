"""Ice on the road in a nadir picture: a white-blue sheen with a brighter glint along it.

What sets a glazed road apart from snow, white cars and road markings is colour, not brightness:
snow, white paint and white cars are neutral (saturation under ~10 of 255 in OpenCV's HSV),
while ice reflects the sky as a pale blue (hue 95-115, saturation ~30-90, bright). The glint is
the same hue, whiter (saturation ~10-40) and brighter. So:

1. scale the picture down to :data:`WORK_WIDTH_PX` (cheap, and enough for a stretch metres wide);
2. mask the sheen and the glint by HSV thresholds; open (drop speckle and thin edges where a
   blue car meets snow after compression) and close (fill the holes cars leave);
3. connected components; a component counts as ice when it covers at least the minimum area
   (:data:`MIN_AREA_M2` when the ground sample distance is known, else
   :data:`MIN_COVERAGE_PCT` of the picture: larger than any car) and holds some glint.

The thresholds are tuned on the simulator's renderer (``sitl.camera.render``, ``_ice``) and hold
through its H.264 coding; real glare on wet asphalt would need a real model, said plainly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

WORK_WIDTH_PX = 640
# OpenCV HSV: hue 0-179, saturation and value 0-255.
SHEEN_LOW = (95, 30, 195)
SHEEN_HIGH = (118, 100, 255)
GLINT_LOW = (90, 11, 238)
GLINT_HIGH = (118, 42, 255)
MIN_AREA_M2 = 12.0  # a car is 4.6 x 1.9 m (8.7 m2)
MIN_COVERAGE_PCT = 0.4  # without a ground sample distance: of the whole picture
MIN_GLINT_FRACTION = 0.01  # of a component's area: the sheen must have its glint
OPEN_PX = 3
CLOSE_PX = 9

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class IceFinding:
    """What :func:`find_ice` saw. Pixel figures are in the picture it was given (full size).

    ``coverage_pct`` sums every icy area; ``centroid_px`` and ``bbox_px`` (x, y, w, h) are the
    largest icy area's, so they lie on ice even when two stretches are in view."""

    found: bool
    coverage_pct: float
    centroid_px: tuple[float, float] | None
    bbox_px: tuple[int, int, int, int] | None


NO_ICE = IceFinding(False, 0.0, None, None)


def find_ice(image_bgr: Image, *, gsd_m: float | None = None) -> IceFinding:
    """Look for an icy road in a BGR picture; ``gsd_m``: its metres per pixel, when known."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 BGR picture, got {image_bgr.shape} {image_bgr.dtype}")
    height, width = image_bgr.shape[:2]
    if height < 8 or width < 8:
        raise ValueError(f"picture {width}x{height} is too small")
    if gsd_m is not None and not gsd_m > 0.0:
        raise ValueError(f"ground sample distance {gsd_m} m must be positive")
    scale = min(1.0, WORK_WIDTH_PX / width)
    small = (
        image_bgr
        if scale == 1.0
        else cv2.resize(
            image_bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
    )
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    sheen = cv2.inRange(hsv, SHEEN_LOW, SHEEN_HIGH)
    glint = cv2.inRange(hsv, GLINT_LOW, GLINT_HIGH)
    mask = cv2.bitwise_or(sheen, glint)
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (OPEN_PX, OPEN_PX))
    )
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (CLOSE_PX, CLOSE_PX))
    )
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return NO_ICE
    small_area = small.shape[0] * small.shape[1]
    if gsd_m is not None:
        min_px = MIN_AREA_M2 / (gsd_m / scale) ** 2
    else:
        min_px = MIN_COVERAGE_PCT / 100.0 * small_area
    areas = stats[1:, cv2.CC_STAT_AREA]
    candidates = [i + 1 for i in np.flatnonzero(areas >= min_px).tolist()]
    if not candidates:
        return NO_ICE
    glint_counts = np.bincount(labels[glint > 0].ravel(), minlength=count)
    icy = [i for i in candidates if glint_counts[i] >= MIN_GLINT_FRACTION * stats[i, cv2.CC_STAT_AREA]]
    if not icy:
        return NO_ICE
    largest = max(icy, key=lambda i: int(stats[i, cv2.CC_STAT_AREA]))
    total = sum(int(stats[i, cv2.CC_STAT_AREA]) for i in icy)
    cx, cy = centroids[largest]
    x, y, w, h = (int(v) for v in stats[largest, :4])
    return IceFinding(
        True,
        100.0 * total / small_area,
        # A small pixel's centre is at (i + 0.5) / scale in the full picture.
        ((float(cx) + 0.5) / scale - 0.5, (float(cy) + 0.5) / scale - 0.5),
        (
            round(x / scale),
            round(y / scale),
            min(width, round((x + w) / scale)) - round(x / scale),
            min(height, round((y + h) / scale)) - round(y / scale),
        ),
    )
