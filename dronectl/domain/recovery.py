"""Back to ready: what a nest on the ground still has to do before it can launch again.

Pure: :func:`next_step` takes what the nest knows (:class:`GroundFacts`) and answers with the one
thing the nest can do by itself next (:class:`RecoveryStep`), or why it cannot: a flight or an
operator is in charge, a link is down, or something needs hands (a drone landed away from its
pad). Whatever the flight ended with (landed in the dock after a return, landed away, a launch
aborted, a link regained, a fault cleared), the same facts lead back to ``ready``: the drone out
of a mode PX4 will not arm in, the dock's latched jam reset once its cause is gone, the cover
closed, the charger on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dronectl.domain.nest_state import AIRBORNE, CoverState, NestPhase

RECHARGE_BELOW_PCT = 95.0  # the dock tops up below this; above it an idle charger is fine


class RecoveryStep(enum.Enum):
    RESET_DOCK_FAULTS = "reset_dock_faults"  # a latched cover jam: the dock clears it once it is gone
    CLOSE_COVER = "close_cover"
    LEAVE_MODE = "leave_mode"  # the drone in Return/Land/Orbit: PX4 refuses to arm in them; to Hold
    CHARGER_ON = "charger_on"


@dataclass(frozen=True)
class GroundFacts:
    """What the nest knows that matters for getting back to ready; None where not reported."""

    phase: NestPhase
    drone_link_up: bool
    dock_link_up: bool
    armed: bool | None
    in_air: bool | None
    mode_armable: bool | None
    drone_in_dock: bool | None
    cover: CoverState
    cover_jam_latched: bool
    charger_idle: bool | None  # on, full or in fault: False
    battery_pct: float | None


@dataclass(frozen=True)
class Next:
    """The step to take now, or None with what the nest waits for (``waiting_for``); ``needs_operator``
    when only people can move it on, with what they can do."""

    step: RecoveryStep | None
    waiting_for: str = ""
    needs_operator: bool = False


_LAUNCH = frozenset({NestPhase.PREFLIGHT, NestPhase.LAUNCHING})


def next_step(f: GroundFacts) -> Next:
    """The next thing the nest does by itself on its way back to ready."""
    if f.phase in AIRBORNE or f.phase in _LAUNCH:
        return Next(None, f"flight in progress ({f.phase.value})")
    if f.phase is NestPhase.MAINTENANCE:
        return Next(None, "in maintenance: the operator is in charge (end maintenance to recover)")
    if not f.drone_link_up or not f.dock_link_up:
        return Next(None, "waiting for the link to the " + ("drone" if not f.drone_link_up else "dock"))
    if f.armed is None or f.in_air is None or f.drone_in_dock is None:
        return Next(None, "waiting for the drone's and the dock's status")
    if f.armed or f.in_air:
        return Next(None, "drone armed: waiting for the autopilot to disarm")
    if not f.drone_in_dock:
        if f.cover is not CoverState.CLOSED and not f.cover_jam_latched:
            return Next(RecoveryStep.CLOSE_COVER)  # the dock shut against the weather meanwhile
        return Next(
            None,
            "drone on the ground outside the dock: put the nest in maintenance, bring the drone "
            "back onto the pad, then end maintenance",
            needs_operator=True,
        )
    if f.cover_jam_latched:
        return Next(RecoveryStep.RESET_DOCK_FAULTS)
    if f.cover is not CoverState.CLOSED:
        return Next(RecoveryStep.CLOSE_COVER)
    if f.mode_armable is False:
        return Next(RecoveryStep.LEAVE_MODE)
    if f.charger_idle and f.battery_pct is not None and f.battery_pct < RECHARGE_BELOW_PCT:
        return Next(RecoveryStep.CHARGER_ON)
    return Next(None, "")


OPERATOR_ACTION = {
    RecoveryStep.RESET_DOCK_FAULTS: (
        "dock cover jammed: the nest retries by itself; if it stays, put the nest in maintenance, "
        "free the cover, then end maintenance"
    ),
    RecoveryStep.CLOSE_COVER: (
        "dock cover does not close: the nest retries by itself; if it stays, put the nest in "
        "maintenance, check the cover and the pad, then end maintenance"
    ),
    RecoveryStep.LEAVE_MODE: (
        "drone does not leave Return/Land for Hold: the nest retries by itself; if it stays, put the "
        "nest in maintenance, check the autopilot, then end maintenance"
    ),
    RecoveryStep.CHARGER_ON: (
        "dock charger does not start: the nest retries by itself; if it stays, put the nest in "
        "maintenance, check the charger and the drone's contacts, then end maintenance"
    ),
}
