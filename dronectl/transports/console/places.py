"""Named places a pilot can fly to: every nest (by its name in the city config) and a few landmarks.

Names are matched as slugs: ``nanhu-park``, ``"Nanhu Park"`` and ``NANHU_PARK`` are the same place.
Pure; the config is read once by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dronectl.domain.config import CityConfig


@dataclass(frozen=True)
class Place:
    slug: str
    name: str
    lat: float
    lon: float
    nest_id: int | None = None  # set when the place is a nest's pad


# A few landmarks of Changchun (approximate centres, outside the no-fly zones of the city config).
LANDMARKS: tuple[tuple[str, float, float], ...] = (
    ("Shengli Park", 43.9010, 125.3200),
    ("Imperial Palace Museum", 43.9060, 125.3420),
    ("Changchun Film Studio", 43.8720, 125.2980),
    ("Jilin University South Campus", 43.8640, 125.2790),
    ("Weixing Square", 43.8560, 125.3240),
    ("Yatai Overpass", 43.8450, 125.3520),
)


def slugify(name: str) -> str:
    """``"People's Square"`` -> ``peoples-square``."""
    text = name.strip().lower().replace("'", "")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


class Places:
    def __init__(self, places: Iterable[Place]) -> None:
        self._by_slug: dict[str, Place] = {}
        for place in places:
            self._by_slug.setdefault(place.slug, place)

    @classmethod
    def from_config(cls, config: CityConfig, extra: Iterable[tuple[str, float, float]] = LANDMARKS) -> Places:
        nests = [Place(slugify(n.name), n.name, n.lat, n.lon, n.id) for n in config.nests]
        return cls([*nests, *(Place(slugify(name), name, lat, lon) for name, lat, lon in extra)])

    def find(self, name: str) -> Place | None:
        return self._by_slug.get(slugify(name))

    def nest_pad(self, nest_id: int) -> Place | None:
        return next((p for p in self._by_slug.values() if p.nest_id == nest_id), None)

    def slugs(self) -> list[str]:
        return sorted(self._by_slug)

    @property
    def by_slug(self) -> Mapping[str, Place]:
        return self._by_slug
