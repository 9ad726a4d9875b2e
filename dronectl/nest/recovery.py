"""Back to ready by itself: the nest on the ground checked again and again until it can launch.

:class:`BackToReady` runs beside the in-flight guard while the nest runs. Every couple of seconds
it reads what the nest knows into ``dronectl.domain.recovery.GroundFacts`` and takes the one step
the domain says is next: the dock's latched cover jam reset (the dock refuses while the jam is
still there: a cleared jam is picked up without a restart), the cover closed and seen closed, the
drone put in Hold when it was left in a mode PX4 will not arm in, the charger switched on. Every
command goes through ``NestCore.resilient`` (sent again through lost packets, the state checked).

A step that keeps failing, or a nest that needs hands (a drone landed away from its pad), is
shown as a device fault with what an operator can do (``NestCore.recovery_problem``: it blocks
launches and is published with the nest's state); the nest keeps trying, more slowly, and the
fault goes once the step succeeds. In maintenance the operator is in charge and nothing is done;
ending maintenance is the operator's "recover".
"""

from __future__ import annotations

import contextlib
from collections import Counter

from adapters.protocols import ChargerState, CoverState, DockFault, FlightMode
from dronectl.domain.errors import CommandTimeout, DronectlError
from dronectl.domain.recovery import OPERATOR_ACTION, GroundFacts, RecoveryStep, next_step
from dronectl.nest.core import NestCore
from dronectl.nest.flight_ops import ARMABLE_MODES, FlightOperations

RECOVERY_PERIOD_S = 2.0  # between checks while all goes well
RETRY_PERIOD_S = 10.0  # between attempts once a step failed
REPORT_AFTER_FAILURES = 2  # a step failing this many times in a row is shown to the operators


class BackToReady:
    """Brings one nest back to ready after whatever its last flight ended with."""

    def __init__(self, nest: NestCore, ops: FlightOperations) -> None:
        self._nest = nest
        self._ops = ops
        self._failures: Counter[RecoveryStep] = Counter()

    def facts(self) -> GroundFacts:
        nest = self._nest
        status = nest.dock.status
        mode = nest.drone.mode
        return GroundFacts(
            phase=nest.state.phase,
            drone_link_up=nest.drone.link_up,
            dock_link_up=nest.dock.link_up,
            armed=nest.drone.armed,
            in_air=nest.state.obs.in_air,
            mode_armable=None if mode is FlightMode.UNKNOWN else mode in ARMABLE_MODES,
            drone_in_dock=status.drone_in_dock if status is not None else None,
            cover=nest.state.obs.cover,
            cover_jam_latched=status is not None
            and (DockFault.COVER_JAMMED in status.faults or status.cover is CoverState.JAMMED),
            charger_idle=status.charger is ChargerState.IDLE if status is not None else None,
            battery_pct=nest.drone.battery_pct,
        )

    async def run(self) -> None:
        nest = self._nest
        while True:
            period = RETRY_PERIOD_S if self._failures else RECOVERY_PERIOD_S
            with contextlib.suppress(CommandTimeout):
                await nest.wait_for(lambda: False, period, "recovery tick")
            await self.check()

    async def check(self) -> None:
        """One look at the nest, and the next step when there is one."""
        nest = self._nest
        nxt = next_step(self.facts())
        if nxt.step is None:
            if nxt.needs_operator:
                await self._show(nxt.waiting_for)
            elif not nxt.waiting_for:  # nothing left to do: back to ready
                self._failures.clear()
                await self._show(None)
            return
        step = nxt.step
        try:
            await self._take(step)
        except DronectlError as exc:
            self._failures[step] += 1
            nest.log.warning(
                "nest.recovery_failed", step=step.value, failures=self._failures[step], error=str(exc)
            )
            if self._failures[step] >= REPORT_AFTER_FAILURES:
                await self._show(OPERATOR_ACTION[step])
            return
        nest.log.info("nest.recovery_step", step=step.value)
        nest.event("recovery", _DONE[step], step=step.value)
        self._failures.pop(step, None)

    async def _take(self, step: RecoveryStep) -> None:
        nest = self._nest
        dock_link = lambda: nest.dock.link_up  # noqa: E731  # the dock's link, read at each retry
        if step is RecoveryStep.RESET_DOCK_FAULTS:
            await nest.resilient("reset dock faults", nest.hw.dock.reset_faults, None, dock_link)
        elif step is RecoveryStep.CLOSE_COVER:
            await nest.close_cover()
        elif step is RecoveryStep.LEAVE_MODE:
            await self._ops.into_armable_mode()
        else:
            await nest.resilient(
                "start charging",
                lambda: nest.hw.dock.set_charging(True),
                lambda: nest.dock.status is not None and nest.dock.status.charger is not ChargerState.IDLE,
                dock_link,
            )

    async def _show(self, problem: str | None) -> None:
        nest = self._nest
        if problem == nest.recovery_problem:
            return
        nest.recovery_problem = problem
        if problem is None:
            nest.log.info("nest.recovered")
        else:
            nest.log.warning("nest.recovery_blocked", problem=problem)
        await nest.notify()


_DONE = {
    RecoveryStep.RESET_DOCK_FAULTS: "dock faults reset",
    RecoveryStep.CLOSE_COVER: "dock cover closed",
    RecoveryStep.LEAVE_MODE: "drone put in Hold (armable) after its flight",
    RecoveryStep.CHARGER_ON: "charger switched on",
}
