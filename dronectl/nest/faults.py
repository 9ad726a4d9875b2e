"""The drone's faults, each told as its own event with what the drone did about it.

:class:`FaultReports` is fed by the telemetry watchers. A fault the drone reports (its battery
failed, its GPS position lost) is announced once as a ``fault`` event naming it (``data.fault``:
``battery_failure``, ``gps_loss``) after the drone had a moment to react, so the event says what
PX4's failsafe made of it ("landing where it is", "returning home"), with the battery it reports.
A link blackout is told when the link comes back, with how long it lasted and what the drone did
meanwhile. A gust the dock's weather station measures above the launch limit is told once per
spell (``data.fault``: ``gust``), with what the drone in the air does and that nothing launches
until it eases; its end is told too. While a drone fault lasts it is one of the nest's device
faults (it blocks launches and is published with the state).
"""

from __future__ import annotations

import contextlib

from adapters.protocols import Battery, DockWeather, FlightMode, Health
from dronectl.domain.errors import CommandTimeout
from dronectl.nest.core import NestCore

REACTION_S = 3.0  # PX4 switches mode within a second or so of a failsafe; the event waits this long

_WHAT_IT_DOES = {
    FlightMode.LAND: "the drone is landing where it is",
    FlightMode.PRECISION_LAND: "the drone is landing",
    FlightMode.RETURN_TO_LAUNCH: "the drone is returning home",
    FlightMode.HOLD: "the drone holds its position",
}
_FAILSAFE_MODES = frozenset({FlightMode.LAND, FlightMode.PRECISION_LAND, FlightMode.RETURN_TO_LAUNCH})
_FAULT_WORDS = {
    "battery_failure": "drone battery failed",
    "gps_loss": "drone lost its GPS position",
}


class FaultReports:
    """Faults of one nest's drone, as the telemetry reports them."""

    def __init__(self, nest: NestCore) -> None:
        self._nest = nest
        self._active: set[str] = set()
        self._gps_seen_ok = False
        self._gust_mps: float | None = None  # the peak of the gust spell going on, None: calm enough

    @property
    def active(self) -> tuple[str, ...]:
        """The faults the drone reports now, in words."""
        return tuple(_FAULT_WORDS[f] for f in sorted(self._active))

    def battery(self, battery: Battery) -> None:
        self._flag("battery_failure", battery.failed)

    def health(self, health: Health) -> None:
        if health.global_position_ok:
            self._gps_seen_ok = True
        # before the first fix (after boot) no position is no news; a fix lost afterwards is
        self._flag("gps_loss", self._gps_seen_ok and not health.global_position_ok)

    def weather(self, weather: DockWeather) -> None:
        """A station reading: a gust spell above the launch limit starts, peaks or ends."""
        limit = self._nest.policy.limits.max_gust_mps
        gust = weather.wind_gust_mps
        if gust > limit and self._gust_mps is None:
            self._gust_mps = gust
            self._nest.spawn(self._report_gust(gust, limit), "fault.gust")
        elif gust > limit and self._gust_mps is not None:
            self._gust_mps = max(self._gust_mps, gust)
        elif gust <= limit and self._gust_mps is not None:
            peak, self._gust_mps = self._gust_mps, None
            self._nest.event(
                "fault_cleared",
                f"gusts eased to {gust:.1f} m/s (peak {peak:.1f} m/s), within the {limit:.1f} m/s limit",
                fault="gust",
                gust_mps=round(gust, 1),
                peak_mps=round(peak, 1),
            )

    async def _report_gust(self, gust_mps: float, limit_mps: float) -> None:
        nest = self._nest
        nest.log.warning("nest.gust", gust_mps=gust_mps, limit_mps=limit_mps)
        if nest.drone_in_air():
            mode = nest.drone.mode
            did = _WHAT_IT_DOES.get(mode, f"the drone flies on in {mode.value}")
        else:
            mode, did = nest.drone.mode, "the drone is on the ground"
        await nest.flight_event(
            "fault",
            f"gust {gust_mps:.1f} m/s at the nest, above the {limit_mps:.1f} m/s launch limit: {did}; "
            "no launch until it eases",
            fault="gust",
            gust_mps=round(gust_mps, 1),
            limit_mps=limit_mps,
            mode=mode.value,
        )

    def link_regained(self, lasted_s: float, mode_before: FlightMode, was_in_air: bool) -> None:
        """The drone is heard again after a blackout of ``lasted_s``: what it did meanwhile."""
        if was_in_air or self._nest.drone_in_air():
            self._nest.spawn(self._report_blackout(lasted_s, mode_before), "fault.link_blackout")

    async def _report_blackout(self, lasted_s: float, mode_before: FlightMode) -> None:
        nest = self._nest
        landed_before = nest.drone.landed
        with contextlib.suppress(CommandTimeout):  # the drone's fresh state, as it comes in again
            await nest.wait_for(
                lambda: nest.drone.mode is not mode_before or nest.drone.landed is not landed_before,
                REACTION_S,
                "state after the blackout",
            )
        lasted = f" of {lasted_s:.0f} s"
        now = (
            _WHAT_IT_DOES.get(nest.drone.mode, f"the drone flies in {nest.drone.mode.value}")
            if nest.drone_in_air()
            else "the drone landed"
        )
        message = f"link blackout{lasted}: {now}"
        if mode_before is not nest.drone.mode:
            message += f" (it was in {mode_before.value})"
        await nest.flight_event(
            "fault", message, fault="link_blackout", lasted_s=round(lasted_s, 1), mode=nest.drone.mode.value
        )

    def _flag(self, fault: str, on: bool) -> None:
        if on and fault not in self._active:
            self._active.add(fault)
            self._nest.drone_faults = self.active
            self._nest.spawn(self._report(fault), f"fault.{fault}")
        elif not on and fault in self._active:
            self._active.discard(fault)
            self._nest.drone_faults = self.active
            self._nest.log.info("nest.drone_fault_cleared", fault=fault)

    async def _report(self, fault: str) -> None:
        nest = self._nest
        before = nest.drone.mode
        nest.log.warning("nest.drone_fault", fault=fault, mode=before.value)
        mode = before
        if nest.drone_in_air():
            if before not in _FAILSAFE_MODES:  # PX4's failsafe may come a moment after the report
                with contextlib.suppress(CommandTimeout):
                    await nest.wait_for(
                        lambda: nest.drone.mode in _FAILSAFE_MODES or not nest.drone_in_air(),
                        REACTION_S,
                        "failsafe",
                    )
                if nest.drone_in_air():
                    mode = nest.drone.mode
            did = _WHAT_IT_DOES.get(mode, f"the drone flies on in {mode.value}")
        else:
            did = "the drone is on the ground"
        battery = nest.drone.battery_pct
        reported = f"; battery {battery:.0f} % as the drone reports it" if battery is not None else ""
        await nest.flight_event(
            "fault",
            f"{_FAULT_WORDS[fault]}: {did}{reported}",
            fault=fault,
            mode=mode.value,
            battery_pct=battery,
        )
