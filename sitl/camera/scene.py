"""What the simulated cameras see besides the fixed city: nests, incidents, icy roads, slow traffic.

One :class:`SceneState` can be shared by every nest of a simulated world, so a scenario that
adds an incident or an icy stretch shows it to every drone flying over it. Scenarios mutate the
public lists from the event loop; each camera's render thread takes a :meth:`SceneState.snapshot`
per frame (copying a list is atomic under the GIL), so a frame never sees a half-made change.
Everything is placed by latitude and longitude, like the road grid in ``sitl.camera.city``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NestMarker:
    nest_id: int
    lat_deg: float
    lon_deg: float


@dataclass(frozen=True)
class Incident:
    """Something the police attend: drawn as a flashing ring with a label."""

    lat_deg: float
    lon_deg: float
    radius_m: float = 15.0
    label: str = "INCIDENT"  # ASCII: OpenCV's fonts have no CJK glyphs


@dataclass(frozen=True)
class IceStretch:
    """An icy stretch of road between two points, ``width_m`` wide: a white-blue sheen."""

    start_lat_deg: float
    start_lon_deg: float
    end_lat_deg: float
    end_lon_deg: float
    width_m: float = 10.0


@dataclass(frozen=True)
class SlowTraffic:
    """Traffic within ``radius_m`` of a point moves at ``speed_factor`` of its normal speed."""

    lat_deg: float
    lon_deg: float
    radius_m: float
    speed_factor: float = 0.2

    def __post_init__(self) -> None:
        if not 0.02 <= self.speed_factor <= 1.0:
            raise ValueError("speed_factor must be between 0.02 and 1")


@dataclass(frozen=True)
class SceneSnapshot:
    nests: tuple[NestMarker, ...] = ()
    incidents: tuple[Incident, ...] = ()
    ice: tuple[IceStretch, ...] = ()
    slow_traffic: tuple[SlowTraffic, ...] = ()
    winter: bool = False


@dataclass
class SceneState:
    """The changeable part of the world the cameras film. Mutate from the event loop."""

    nests: list[NestMarker] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    ice: list[IceStretch] = field(default_factory=list)
    slow_traffic: list[SlowTraffic] = field(default_factory=list)
    winter: bool | None = None  # None: winter while the nest's weather is at or below freezing

    def add_nest(self, marker: NestMarker) -> None:
        if all(n.nest_id != marker.nest_id for n in self.nests):
            self.nests.append(marker)

    def snapshot(self, freezing: bool = False) -> SceneSnapshot:
        winter = freezing if self.winter is None else self.winter
        return SceneSnapshot(
            tuple(self.nests), tuple(self.incidents), tuple(self.ice), tuple(self.slow_traffic), winter
        )
