"""The in-flight guard: the drone sent home when its battery reserve or the geofence says so.

:class:`InFlightGuard` asks ``dronectl.domain.flight_guard`` on every telemetry change (at most
once a second) while the nest runs, and sends the drone home once per flight with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from dronectl.domain.errors import CommandTimeout, DronectlError
from dronectl.domain.flight_guard import guard_reason
from dronectl.nest.core import NestCore

GUARD_PERIOD_S = 1.0


class InFlightGuard:
    """Guards one nest's flight; ``return_home(reason)`` brings the drone home."""

    def __init__(self, nest: NestCore, return_home: Callable[[str], Awaitable[None]]) -> None:
        self._nest = nest
        self._return_home = return_home

    async def run(self) -> None:
        """Battery reserve and geofence, checked on every telemetry change (at most 1 Hz)."""
        nest = self._nest
        while True:
            with contextlib.suppress(CommandTimeout):
                await nest.wait_for(lambda: False, GUARD_PERIOD_S, "guard tick")
            reason = self.reason()
            if reason is None or nest.returning_for is not None:
                continue
            nest.returning_for = reason
            nest.log.warning("nest.guard_return", reason=reason)
            await nest.flight_event("returning", reason, automatic=True)
            try:
                await self._return_home(reason)
            except DronectlError as exc:
                nest.returning_for = None
                nest.log.warning("nest.guard_return_failed", error=str(exc))

    def reason(self) -> str | None:
        """Why the drone must come home now, or None."""
        nest = self._nest
        return guard_reason(
            nest.state.phase,
            nest.drone.position,
            nest.drone.battery_pct,
            nest.dock.weather,
            nest.home,
            nest.policy,
            nest.drain.rate_pct_per_min(),
        )
