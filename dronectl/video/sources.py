"""Where the video side finds a nest's camera and loudspeaker, and whether the nest may be watched.

``VideoSources`` is the little the hub, the routes and the recorders need of the fleet; the
fleet's implementation is :class:`FleetSources`. A camera appears when the nest's adapters are
attached and disappears when they are closed (link lost, controller restarted), so callers ask
again each time rather than keeping one.
"""

from __future__ import annotations

from typing import Protocol

from adapters.protocols import Camera, Payload
from dronectl.domain import nest_state as ns
from dronectl.domain.errors import LinkLost
from dronectl.nest.fleet import Fleet

WATCHABLE = ns.AIRBORNE | {ns.NestPhase.LAUNCHING}


class VideoSources(Protocol):
    def known(self, nest_id: int) -> bool: ...

    def airborne(self, nest_id: int) -> bool:
        """Flying (or taking off): the phases in which a nest's video may be opened."""

    def camera(self, nest_id: int) -> Camera | None:
        """The nest's camera while its adapters are attached; None otherwise."""

    def payload(self, nest_id: int) -> Payload | None:
        """The nest's loudspeaker (for talk-back) while attached; None otherwise."""


class FleetSources:
    """The fleet's nests as video sources."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def known(self, nest_id: int) -> bool:
        return nest_id in self.fleet.controllers

    def airborne(self, nest_id: int) -> bool:
        controller = self.fleet.controllers.get(nest_id)
        return controller is not None and controller.state.phase in WATCHABLE

    def camera(self, nest_id: int) -> Camera | None:
        controller = self.fleet.controllers.get(nest_id)
        if controller is None:
            return None
        try:
            return controller.hw.camera
        except LinkLost:
            return None

    def payload(self, nest_id: int) -> Payload | None:
        controller = self.fleet.controllers.get(nest_id)
        if controller is None:
            return None
        try:
            return controller.hw.payload
        except LinkLost:
            return None
