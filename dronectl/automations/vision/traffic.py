"""Traffic under a hovering drone: vehicles in view, density, mean speed, the share stopped.

Frames come a few a second (2-5 fps is plenty) from a drone holding its position, camera nadir.
Each frame, at a working resolution of about :data:`WORK_GSD_M` per pixel:

1. **Road.** The road surface is the commonest dark neutral colour in the picture (asphalt).
   Painted lines are bright and thinner than :data:`OPEN_M` (a white top-hat); the long ones
   (centre lines, kerbs: :data:`LINE_MIN_M`) count as road. The carriageway is the road closed
   morphologically over :data:`CLOSE_M` (so the vehicles on it, narrower than that, become
   part of it) and kept where it is a sizeable area.
2. **Vehicles.** Blobs on the carriageway that are not road, opened over :data:`OPEN_M`,
   :data:`MIN_VEHICLE_M2` or larger and as wide as a vehicle. A blob longer than a car is a
   queue of touching vehicles: it counts ``round(length / VEHICLE_LENGTH_M)``.
3. **Speed.** Each vehicle blob of the previous frame is looked for in this one by template
   matching (its own pixels less any painted line touching it, which stays put while the
   vehicle passes; coarse at half size within :data:`MAX_SPEED_MPS` of travel, then
   fine with a sub-pixel peak). Vehicles look alike, so of the matches nearly as good as the
   best (judged against how the vehicle compares with bare asphalt) and in line with its
   length, the one that moved least wins. The drone's own drift (the shift of the picture with
   its vehicles painted out, by phase correlation) is taken off first. A blob cut by the
   picture's edge is followed by its part away from the edge, over :data:`EDGE_REACH_M` at most
   (enough for a queue, which is what crosses the whole view). Speed is displacement over time.

The reading averages the last ``window_s`` seconds: vehicles per frame, lane length (carriageway
area over :data:`LANE_WIDTH_M`), density (vehicles per km of lane), mean speed and the share of
vehicles below :data:`STOPPED_BELOW_MPS` (both weighted by vehicles).

Limits, said plainly: the drone must hold its heading (drift is compensated, rotation is not)
and its height (``gsd_m`` is fixed); the road must be the dominant asphalt-coloured surface in
view; queued vehicles touching one another are counted by length; lane length counts shoulders
and junctions (over the simulator's avenue, 24 m of carriageway reads as 6.9 lanes for its 6, so
density reads ~13 % low). Tuned on the simulator's renderer (flat colours); a real camera would
want a learnt vehicle detector in step 2, the rest stands. Cost, 1280x720 in, one core: 15-25 ms
a frame at 40 m, 30-45 ms over a queue, ~50 ms at 80 m (four times the ground in view).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

WORK_GSD_M = 0.2  # metres per pixel worked at (never finer than the picture)
ROAD_TOLERANCE = 16  # per BGR channel, from the road's colour
ROAD_MAX_VALUE = 180  # asphalt is darker than this (snow, paint and white roofs are not)
MARKING_CONTRAST = 30  # grey levels above its surroundings: a painted line
LINE_MIN_M = 6.0  # a painted line this long (a centre line, a kerb) is part of the road
ROAD_MAX_SPREAD = 16  # max - min of B, G, R: asphalt is grey
CLOSE_M = 5.0
OPEN_M = 0.8
MIN_ROAD_M2 = 150.0
MIN_VEHICLE_M2 = 3.0
MIN_VEHICLE_WIDTH_M = 1.2
MAX_VEHICLE_WIDTH_M = 3.2
MIN_VEHICLE_LENGTH_M = 2.5
VEHICLE_LENGTH_M = 4.6
LANE_WIDTH_M = 3.5
MAX_SPEED_MPS = 30.0  # 108 km/h: a city's roads
STOPPED_BELOW_MPS = 0.5
LATERAL_M = 1.5  # a vehicle moves along its length: a match further off sideways is another one
EDGE_REACH_M = 4.0  # a blob cut by the picture's edge is followed this far between two frames
MATCH_MAX_RMS = 30.0  # grey levels per channel: a worse best match is no match
MATCH_AMBIGUOUS_RMS = 15.0  # matches within this of the best are as good (edges blend differently)
EDGE_TOP_FRACTION = 1 / 40  # the picture's top strip (the capture-time code) is not looked at
EDGE_BOTTOM_FRACTION = 1 / 20  # nor its bottom strip (an on-screen display line)
WINDOW_S = 10.0
MIN_FRAMES = 3

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class TrafficReading:
    vehicles: int  # in view, mean over the window
    density_veh_per_km: float  # per km of lane
    mean_speed_mps: float | None  # None: no vehicle could be followed from one frame to the next
    stopped_fraction: float  # of the vehicles followed, the share below STOPPED_BELOW_MPS
    lane_length_m: float  # of lane in view
    window_s: float  # from the window's first frame to its last


@dataclass(frozen=True)
class _Blob:
    x: int  # bounding box in work pixels
    y: int
    w: int
    h: int
    vehicles: int
    on_edge: bool
    mask: npt.NDArray[np.uint8]  # the blob's pixels in its bounding box
    axis: tuple[float, float] | None = None  # unit vector along it (None: about as wide as long)


@dataclass(frozen=True)
class _FrameStats:
    t_s: float
    vehicles: int
    lane_length_m: float


@dataclass(frozen=True)
class _Speeds:
    t_s: float
    speeds_mps: tuple[float, ...]
    weights: tuple[int, ...]


@dataclass(frozen=True)
class _Work:
    """One frame as the estimator keeps it for the next: the images it matches in, its vehicles."""

    t_s: float
    image: Image  # at the working resolution
    half: Image  # at half of it, for the coarse search
    static: npt.NDArray[np.float32]  # grey at half size, vehicles painted over with asphalt: the drift
    blobs: list[_Blob]
    road_bgr: npt.NDArray[np.uint8] | None = None  # the asphalt's colour


class TrafficEstimator:
    """Feed frames of one hovering drone with :meth:`add`; :meth:`reading` summarises the window.

    ``gsd_m``: metres per pixel of the pictures given to :meth:`add` (full size)."""

    def __init__(self, gsd_m: float, *, window_s: float = WINDOW_S) -> None:
        if not gsd_m > 0.0 or math.isinf(gsd_m):
            raise ValueError(f"ground sample distance {gsd_m} m must be positive")
        if not window_s > 0.0:
            raise ValueError(f"window {window_s} s must be positive")
        self.gsd_m = gsd_m
        self.window_s = window_s
        self.scale = min(1.0, gsd_m / WORK_GSD_M)
        self.work_gsd_m = gsd_m / self.scale
        self._frames: deque[_FrameStats] = deque()
        self._speeds: deque[_Speeds] = deque()
        self._prev: _Work | None = None

    def _px(self, metres: float) -> int:
        return max(1, round(metres / self.work_gsd_m))

    def add(self, image_bgr: Image, t_s: float) -> None:
        """One frame taken at ``t_s`` (seconds, any epoch, later than the last frame's)."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(
                f"expected an H x W x 3 uint8 BGR picture, got {image_bgr.shape} {image_bgr.dtype}"
            )
        if image_bgr.shape[0] < 64 or image_bgr.shape[1] < 64:
            raise ValueError(f"picture {image_bgr.shape[1]}x{image_bgr.shape[0]} is too small")
        if not math.isfinite(t_s):
            raise ValueError(f"frame time {t_s} is not a number")
        if self._prev is not None and t_s <= self._prev.t_s:
            raise ValueError(f"frame time {t_s} s is not after the last frame's ({self._prev.t_s} s)")
        small = self._work_image(image_bgr)
        road, carriageway, road_colour, painted = self._road(small)
        blobs = self._vehicles(road, carriageway, painted)
        static = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        if road_colour is not None:
            moving = cv2.bitwise_and(carriageway, cv2.bitwise_not(road)) > 0
            static[moving] = float(cv2.cvtColor(road_colour.reshape(1, 1, 3), cv2.COLOR_BGR2GRAY)[0, 0])
        work = _Work(t_s, small, cv2.pyrDown(small), cv2.pyrDown(static), blobs, road_colour)
        lane_length_m = float(np.count_nonzero(carriageway)) * self.work_gsd_m**2 / LANE_WIDTH_M
        self._frames.append(_FrameStats(t_s, sum(b.vehicles for b in blobs), lane_length_m))
        if self._prev is not None:
            speeds = self._follow(self._prev, work)
            if speeds:
                self._speeds.append(_Speeds(t_s, tuple(v for v, _ in speeds), tuple(n for _, n in speeds)))
        self._prev = work
        while self._frames and self._frames[0].t_s < t_s - self.window_s:
            self._frames.popleft()
        while self._speeds and self._speeds[0].t_s < t_s - self.window_s:
            self._speeds.popleft()

    def reading(self) -> TrafficReading | None:
        """The window's traffic; None until it has seen :data:`MIN_FRAMES` frames."""
        if len(self._frames) < MIN_FRAMES:
            return None
        frames = list(self._frames)
        vehicles = sum(f.vehicles for f in frames) / len(frames)
        lane_m = sum(f.lane_length_m for f in frames) / len(frames)
        pairs = [
            (v, n) for sample in self._speeds for v, n in zip(sample.speeds_mps, sample.weights, strict=True)
        ]
        total = sum(n for _, n in pairs)
        return TrafficReading(
            vehicles=round(vehicles),
            density_veh_per_km=vehicles / (lane_m / 1000.0) if lane_m > 0.0 else 0.0,
            mean_speed_mps=sum(v * n for v, n in pairs) / total if total else None,
            stopped_fraction=sum(n for v, n in pairs if v < STOPPED_BELOW_MPS) / total if total else 0.0,
            lane_length_m=lane_m,
            window_s=frames[-1].t_s - frames[0].t_s,
        )

    # steps ----------------------------------------------------------------------------------------
    def _work_image(self, image_bgr: Image) -> Image:
        height = image_bgr.shape[0]
        top, bottom = math.ceil(height * EDGE_TOP_FRACTION), height - math.ceil(height * EDGE_BOTTOM_FRACTION)
        image = image_bgr[top:bottom]
        if self.scale == 1.0:
            return np.ascontiguousarray(image)
        size = (max(16, round(image.shape[1] * self.scale)), max(16, round(image.shape[0] * self.scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _road(
        self, small: Image
    ) -> tuple[
        npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8] | None, npt.NDArray[np.uint8]
    ]:
        """(asphalt mask, carriageway mask, the asphalt's colour, painted lines mask) of a work image."""
        road_colour = _road_colour(small)
        if road_colour is None:
            empty = np.zeros(small.shape[:2], np.uint8)
            return empty, empty, None, empty
        # Lane markings, centre lines, kerbs: bright lines thinner than a vehicle is wide (grown
        # by a pixel: their edges blend with the asphalt). Not taken for road, nor followed.
        k = self._px(OPEN_M) | 1
        thin = cv2.morphologyEx(
            cv2.cvtColor(small, cv2.COLOR_BGR2GRAY),
            cv2.MORPH_TOPHAT,
            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)),
        )
        painted = cv2.dilate((thin > MARKING_CONTRAST).astype(np.uint8) * 255, np.ones((3, 3), np.uint8))
        # The long ones (a centre line, a kerb; not a dash, nor a bright car between two dark
        # ones in a queue) are taken for road outright: a car beside one must not become one.
        count, labels, stats, _ = cv2.connectedComponentsWithStats(painted, connectivity=8)
        long_px = LINE_MIN_M / self.work_gsd_m
        lines = np.zeros(count, np.uint8)
        lines[1:] = (np.hypot(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) >= long_px) * 255
        road = cv2.inRange(
            small,
            np.clip(road_colour.astype(np.int16) - ROAD_TOLERANCE, 0, 255).astype(np.uint8),
            np.clip(road_colour.astype(np.int16) + ROAD_TOLERANCE, 0, 255).astype(np.uint8),
        )
        road = cv2.bitwise_or(road, lines[labels])
        # Open first (by a pixel, not to close the gap between a car and a kerb): specks of a
        # dark line's edge (a roof's outline) are not road, and must not be closed into it.
        road = cv2.morphologyEx(road, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        k = self._px(CLOSE_M) | 1
        closed = cv2.morphologyEx(road, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=4)
        min_px = MIN_ROAD_M2 / self.work_gsd_m**2
        keep = np.zeros(count, np.uint8)
        keep[1:] = (stats[1:, cv2.CC_STAT_AREA] >= min_px).astype(np.uint8) * 255
        return road, keep[labels], road_colour, painted

    def _vehicles(
        self, road: npt.NDArray[np.uint8], carriageway: npt.NDArray[np.uint8], painted: npt.NDArray[np.uint8]
    ) -> list[_Blob]:
        candidates = cv2.bitwise_and(carriageway, cv2.bitwise_not(road))
        k = self._px(OPEN_M) | 1
        candidates = cv2.morphologyEx(
            candidates, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        )
        count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
        height, width = road.shape
        min_px = MIN_VEHICLE_M2 / self.work_gsd_m**2
        blobs: list[_Blob] = []
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < min_px:
                continue
            ys, xs = np.nonzero(labels[y : y + h, x : x + w] == i)
            rect = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
            a, b = rect[1]
            length_m, width_m = max(a, b) * self.work_gsd_m, min(a, b) * self.work_gsd_m
            if not MIN_VEHICLE_WIDTH_M <= width_m <= MAX_VEHICLE_WIDTH_M or length_m < MIN_VEHICLE_LENGTH_M:
                continue  # not a vehicle (nor a queue of them): a patch or a line of something
            on_edge = x <= 0 or y <= 0 or x + w >= width or y + h >= height
            # The template is the blob's own pixels, less any painted line it touches: road or a
            # lane marking beside it (they stay put) would be taken as evidence it stayed put too.
            own = (labels[y : y + h, x : x + w] == i).astype(np.uint8) * 255
            mask = cv2.bitwise_and(own, cv2.bitwise_not(painted[y : y + h, x : x + w]))
            if np.count_nonzero(mask) < 0.3 * area:
                mask = own  # mostly thin bright slices (cars in a tight queue): keep them all
            vehicles = max(1, round(length_m / VEHICLE_LENGTH_M))
            blobs.append(_Blob(x, y, w, h, vehicles, on_edge, mask, _long_axis(rect)))
        return blobs

    def _follow(self, before: _Work, now: _Work) -> list[tuple[float, int]]:
        """(speed, vehicles) of each blob of ``before`` found again in ``now``."""
        if not before.blobs or before.image.shape != now.image.shape:
            return []
        dt_s = now.t_s - before.t_s
        window = cv2.createHanningWindow(before.static.shape[::-1], cv2.CV_32F)
        (drift_x, drift_y), _ = cv2.phaseCorrelate(before.static, now.static, window)
        drift_x, drift_y = 2.0 * drift_x, 2.0 * drift_y  # measured at half size
        reach = math.ceil(MAX_SPEED_MPS * dt_s / self.work_gsd_m / 2.0) + 1  # in half-size pixels
        margin = self._px(EDGE_REACH_M)
        height, width = now.image.shape[:2]
        out: list[tuple[float, int]] = []
        for whole in before.blobs:
            blob: _Blob | None = whole
            if whole.on_edge:
                # Cut by the picture's edge (a queue across the view, or a car coming or going):
                # followed by its part away from the edge, over a short reach only.
                blob = _inner(whole, margin, width, height, self._px(MIN_VEHICLE_M2**0.5) ** 2)
            if blob is None:
                continue
            # Where the blob would be had it not moved (the drone drifted by (drift_x, drift_y)).
            ex, ey = blob.x + drift_x, blob.y + drift_y
            coarse = _match(
                before.half,
                now.half,
                _half(blob),
                (ex / 2.0, ey / 2.0),
                min(reach, margin // 2) if whole.on_edge else reach,
                subpixel=False,
                lateral_px=LATERAL_M / self.work_gsd_m / 2.0,
                road_bgr=before.road_bgr,
            )
            if coarse is None:
                continue
            fine = _match(before.image, now.image, blob, (2.0 * coarse[0], 2.0 * coarse[1]), 2, subpixel=True)
            if fine is None:
                continue
            speed_mps = math.hypot(fine[0] - ex, fine[1] - ey) * self.work_gsd_m / dt_s
            if speed_mps <= MAX_SPEED_MPS:  # beyond it: the search's rim, another vehicle's likeness
                out.append((speed_mps, blob.vehicles))
        return out


def _inner(blob: _Blob, margin: int, width: int, height: int, min_px: int) -> _Blob | None:
    """``blob`` without its pixels within ``margin`` of the picture's edge; None if too little is left."""
    x0, y0 = max(blob.x, margin), max(blob.y, margin)
    x1, y1 = min(blob.x + blob.w, width - margin), min(blob.y + blob.h, height - margin)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = blob.mask[y0 - blob.y : y1 - blob.y, x0 - blob.x : x1 - blob.x]
    if np.count_nonzero(mask) < min_px:
        return None
    return _Blob(x0, y0, x1 - x0, y1 - y0, blob.vehicles, False, np.ascontiguousarray(mask), blob.axis)


def _half(blob: _Blob) -> _Blob:
    x0, y0 = blob.x // 2, blob.y // 2
    x1, y1 = (blob.x + blob.w + 1) // 2, (blob.y + blob.h + 1) // 2
    mask = cv2.resize(blob.mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    mask = (mask > 64).astype(np.uint8) * 255
    return _Blob(x0, y0, x1 - x0, y1 - y0, blob.vehicles, blob.on_edge, mask, blob.axis)


def _long_axis(rect: tuple[tuple[float, float], tuple[float, float], float]) -> tuple[float, float] | None:
    """The unit vector along a rotated rectangle's long side; None when it is nearly square."""
    corners = cv2.boxPoints(rect)
    first, second = corners[1] - corners[0], corners[2] - corners[1]
    long_side, short_side = (first, second) if np.hypot(*first) >= np.hypot(*second) else (second, first)
    length, width = float(np.hypot(*long_side)), float(np.hypot(*short_side))
    if length < 1.5 * width:
        return None
    return float(long_side[0]) / length, float(long_side[1]) / length


def _match(
    before: Image,
    now: Image,
    blob: _Blob,
    expected: tuple[float, float],
    reach: int,
    *,
    subpixel: bool,
    lateral_px: float = math.inf,
    road_bgr: npt.NDArray[np.uint8] | None = None,
) -> tuple[float, float] | None:
    """Where ``blob`` of ``before`` (its box's corner) best matches in ``now``, searching ``reach``
    pixels around ``expected``; None when nothing matches, or the best is at a cut-off edge."""
    height, width = now.shape[:2]
    sx0, sy0 = max(0, math.floor(expected[0]) - reach), max(0, math.floor(expected[1]) - reach)
    sx1 = min(width, math.ceil(expected[0]) + blob.w + reach)
    sy1 = min(height, math.ceil(expected[1]) + blob.h + reach)
    if sx1 - sx0 < blob.w + 2 or sy1 - sy0 < blob.h + 2 or not blob.mask.any():
        return None
    template = before[blob.y : blob.y + blob.h, blob.x : blob.x + blob.w]
    scores = cv2.matchTemplate(now[sy0:sy1, sx0:sx1], template, cv2.TM_SQDIFF, mask=blob.mask)
    scores = np.nan_to_num(scores, nan=np.inf, posinf=np.inf)
    _, _, (bx, by), _ = cv2.minMaxLoc(scores)
    # Root mean square difference per channel over the template's pixels.
    per_rms2 = 3.0 * np.count_nonzero(blob.mask)
    best = float(scores[by, bx])
    if not best <= MATCH_MAX_RMS**2 * per_rms2:
        return None
    ambiguous = float(MATCH_AMBIGUOUS_RMS**2 * per_rms2)
    if road_bgr is not None:
        # What the template scores against bare asphalt: a dark car is not far from it. A match
        # hardly better than that is no match, and "nearly as good" is judged against it.
        bare = float(
            np.square(template.astype(np.float32) - road_bgr.astype(np.float32))
            .sum(axis=2)[blob.mask > 0]
            .sum()
        )
        if best > 0.5 * bare:
            return None
        ambiguous = min(ambiguous, 0.25 * bare)
    if not subpixel:
        # Vehicles look alike (in a queue, two of a colour may be a few metres apart): of the
        # local minima nearly as good as the best, take the one that moved least along its own
        # length (a vehicle keeps its lane: one as far off sideways is another vehicle).
        local = (scores <= cv2.erode(scores, np.ones((3, 3), np.uint8))) & (scores <= best + ambiguous)
        ys, xs = np.nonzero(local)
        dx, dy = xs + sx0 - expected[0], ys + sy0 - expected[1]
        if blob.axis is not None:
            keep = np.abs(dx * blob.axis[1] - dy * blob.axis[0]) <= lateral_px
            dx, dy, xs, ys = dx[keep], dy[keep], xs[keep], ys[keep]
        if xs.size:  # else the best stands (a skidding car moves crabwise)
            nearest = int(np.argmin(dx**2 + dy**2))
            bx, by = int(xs[nearest]), int(ys[nearest])
    # Best at the search window's edge (not the picture's): it may have gone further than searched.
    if (bx == 0 and sx0 > 0) or (bx == scores.shape[1] - 1 and sx1 < width):
        return None
    if (by == 0 and sy0 > 0) or (by == scores.shape[0] - 1 and sy1 < height):
        return None
    fx, fy = float(bx), float(by)
    if subpixel:
        fx += _subpixel(scores, bx, by, 1)
        fy += _subpixel(scores, bx, by, 0)
    return sx0 + fx, sy0 + fy


def _road_colour(small: Image) -> npt.NDArray[np.uint8] | None:
    """The commonest dark grey in the picture (by 8-level bins per channel), refined to its mean."""
    b, g, r = cv2.split(small)
    high = cv2.max(cv2.max(b, g), r)
    grey = (cv2.subtract(high, cv2.min(cv2.min(b, g), r)) <= ROAD_MAX_SPREAD) & (high < ROAD_MAX_VALUE)
    q = (small >> 5).astype(np.int32)
    bins = (q[..., 0] << 6) | (q[..., 1] << 3) | q[..., 2]
    counts = np.bincount(bins[grey], minlength=512)
    best = int(np.argmax(counts))
    if counts[best] == 0:
        return None
    mask = (grey & (bins == best)).astype(np.uint8)
    colour = cv2.mean(small, mask=mask)[:3]
    return np.array([round(c) for c in colour], dtype=np.uint8)


def _subpixel(scores: npt.NDArray[np.float32], x: int, y: int, axis: int) -> float:
    """A parabola's offset of the minimum through three scores along ``axis`` (0: y, 1: x)."""
    if axis == 1:
        if not 0 < x < scores.shape[1] - 1:
            return 0.0
        a, b, c = float(scores[y, x - 1]), float(scores[y, x]), float(scores[y, x + 1])
    else:
        if not 0 < y < scores.shape[0] - 1:
            return 0.0
        a, b, c = float(scores[y - 1, x]), float(scores[y, x]), float(scores[y + 1, x])
    denominator = a - 2.0 * b + c
    if not math.isfinite(denominator) or denominator <= 1e-12:
        return 0.0
    return max(-0.5, min(0.5, 0.5 * (a - c) / denominator))
