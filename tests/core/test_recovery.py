"""Back to ready (``dronectl.domain.recovery``): the next step a nest on the ground takes by itself,
whatever its last flight ended with, and the cases only people can move on."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dronectl.domain.nest_state import AIRBORNE, CoverState, NestPhase
from dronectl.domain.recovery import OPERATOR_ACTION, GroundFacts, RecoveryStep, next_step

READY = GroundFacts(
    phase=NestPhase.READY,
    drone_link_up=True,
    dock_link_up=True,
    armed=False,
    in_air=False,
    mode_armable=True,
    drone_in_dock=True,
    cover=CoverState.CLOSED,
    cover_jam_latched=False,
    charger_idle=False,
    battery_pct=99.0,
)
# landed in the dock after a return: the cover open, the drone left in Return, the charger off
AFTER_RTL = replace(
    READY,
    phase=NestPhase.POST_FLIGHT,
    mode_armable=False,
    cover=CoverState.OPEN,
    charger_idle=True,
    battery_pct=60.0,
)


def steps_to_ready(facts: GroundFacts) -> list[RecoveryStep]:
    """Take each step as if it worked, until there is none left."""
    done: list[RecoveryStep] = []
    while (step := next_step(facts).step) is not None:
        assert step not in done, f"{step} again"
        done.append(step)
        if step is RecoveryStep.RESET_DOCK_FAULTS:
            facts = replace(facts, cover_jam_latched=False)
        elif step is RecoveryStep.CLOSE_COVER:
            facts = replace(facts, cover=CoverState.CLOSED)
        elif step is RecoveryStep.LEAVE_MODE:
            facts = replace(facts, mode_armable=True)
        else:
            facts = replace(facts, charger_idle=False)
    return done


def test_a_ready_nest_has_nothing_to_do() -> None:
    nxt = next_step(READY)
    assert nxt.step is None and nxt.waiting_for == "" and not nxt.needs_operator


def test_after_an_rtl_landing_cover_then_mode_then_charger() -> None:
    assert steps_to_ready(AFTER_RTL) == [
        RecoveryStep.CLOSE_COVER,
        RecoveryStep.LEAVE_MODE,
        RecoveryStep.CHARGER_ON,
    ]


def test_a_jammed_cover_is_reset_before_it_is_closed() -> None:
    jammed = replace(AFTER_RTL, cover=CoverState.STOPPED, cover_jam_latched=True)
    assert steps_to_ready(jammed)[:2] == [RecoveryStep.RESET_DOCK_FAULTS, RecoveryStep.CLOSE_COVER]


def test_a_full_battery_needs_no_charger() -> None:
    assert next_step(replace(READY, charger_idle=True, battery_pct=97.0)).step is None
    assert next_step(replace(READY, charger_idle=True, battery_pct=80.0)).step is RecoveryStep.CHARGER_ON


@pytest.mark.parametrize("phase", sorted(AIRBORNE | {NestPhase.PREFLIGHT, NestPhase.LAUNCHING}, key=str))
def test_nothing_is_touched_during_a_flight(phase: NestPhase) -> None:
    nxt = next_step(replace(AFTER_RTL, phase=phase))
    assert nxt.step is None and "flight" in nxt.waiting_for


def test_in_maintenance_the_operator_is_in_charge() -> None:
    nxt = next_step(replace(AFTER_RTL, phase=NestPhase.MAINTENANCE))
    assert nxt.step is None and "maintenance" in nxt.waiting_for and not nxt.needs_operator


def test_an_armed_drone_or_a_lost_link_is_waited_for() -> None:
    assert next_step(replace(AFTER_RTL, armed=True)).step is None
    assert "dock" in next_step(replace(AFTER_RTL, dock_link_up=False)).waiting_for
    assert "drone" in next_step(replace(AFTER_RTL, drone_link_up=False)).waiting_for


def test_a_drone_landed_away_needs_people_once_the_cover_is_shut() -> None:
    away = replace(AFTER_RTL, phase=NestPhase.FAULT, drone_in_dock=False)
    assert next_step(away).step is RecoveryStep.CLOSE_COVER
    nxt = next_step(replace(away, cover=CoverState.CLOSED))
    assert nxt.step is None and nxt.needs_operator
    assert "maintenance" in nxt.waiting_for and "pad" in nxt.waiting_for


def test_every_step_says_what_an_operator_can_do() -> None:
    for step in RecoveryStep:
        assert "maintenance" in OPERATOR_ACTION[step]


@given(
    phase=st.sampled_from([NestPhase.POST_FLIGHT, NestPhase.FAULT, NestPhase.STANDBY, NestPhase.OFFLINE]),
    mode_armable=st.booleans(),
    cover=st.sampled_from(list(CoverState)),
    jam=st.booleans(),
    charger_idle=st.booleans(),
    battery_pct=st.floats(0.0, 100.0),
)
def test_from_any_ground_state_in_the_dock_the_steps_end_ready(
    phase: NestPhase, mode_armable: bool, cover: CoverState, jam: bool, charger_idle: bool, battery_pct: float
) -> None:
    facts = replace(
        READY,
        phase=phase,
        mode_armable=mode_armable,
        cover=cover,
        cover_jam_latched=jam,
        charger_idle=charger_idle,
        battery_pct=battery_pct,
    )
    steps = steps_to_ready(facts)
    assert len(steps) <= len(RecoveryStep)
