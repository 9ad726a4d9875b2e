"""The nest state machine: the happy path, rejections, restart derivation, and invariants under
random event sequences."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dronectl.domain.nest_state import (
    AIRBORNE,
    DOCKED,
    CoverClosed,
    CoverOpened,
    CoverState,
    DockLinkLost,
    DockStatus,
    DroneStatus,
    Event,
    FaultCleared,
    FaultRaised,
    FlightMode,
    GotoRequested,
    Landed,
    LandingStarted,
    LaunchAborted,
    LaunchRequested,
    LinkLost,
    LinkUp,
    MaintenanceSet,
    NestPhase,
    NestState,
    Observations,
    PreflightFailed,
    PreflightPassed,
    ReachedStation,
    ReturnRequested,
    TookOff,
    Transition,
    derive_phase,
    recover,
    transition,
)

P = NestPhase
DOCK_CLOSED = DockStatus(CoverState.CLOSED, drone_in_dock=True, charging=False)
DOCK_CHARGING = DockStatus(CoverState.CLOSED, drone_in_dock=True, charging=True)
ON_PAD_READY = DroneStatus(armed=False, in_air=False, ready_to_arm=True)


def run(events: Sequence[Event], state: NestState | None = None) -> tuple[NestState, list[Transition]]:
    state = state or NestState()
    log = []
    for event in events:
        t = transition(state, event)
        log.append(t)
        state = t.state
    return state, log


def ready() -> NestState:
    state, _ = run([LinkUp(), DOCK_CLOSED, ON_PAD_READY])
    assert state.phase is P.READY
    return state


def test_a_whole_flight() -> None:
    state, log = run(
        [
            LinkUp(),
            DOCK_CLOSED,
            ON_PAD_READY,
            LaunchRequested("incident 42"),
            PreflightPassed(),
            DockStatus(CoverState.OPENING, True, False),
            CoverOpened(),
            DroneStatus(armed=True, in_air=False, ready_to_arm=True, mode=FlightMode.TAKEOFF),
            TookOff(),
            DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=FlightMode.POSITION),
            ReachedStation(),
            DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=FlightMode.HOLD),
            ReturnRequested("operator"),
            DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=FlightMode.RETURN),
            DroneStatus(armed=False, in_air=False, ready_to_arm=False, mode=FlightMode.LAND),
            DockStatus(CoverState.CLOSING, True, False),
            CoverClosed(),
            DOCK_CHARGING,
        ]
    )
    phases = [t.state.phase for t in log if t.phase_changed]
    assert phases == [
        P.READY,
        P.PREFLIGHT,
        P.LAUNCHING,
        P.EN_ROUTE,
        P.ON_STATION,
        P.RETURNING,
        P.POST_FLIGHT,
        P.STANDBY,
        P.CHARGING,
    ]
    assert all(t.accepted and t.cause for t in log)
    assert state.phase is P.CHARGING
    assert "incident 42" in log[3].cause


def test_invalid_events_change_nothing_and_say_why() -> None:
    state = ready()
    for event in (
        TookOff(),
        ReachedStation(),
        Landed(),
        CoverClosed(),
        ReturnRequested("x"),
        PreflightPassed(),
    ):
        t = transition(state, event)
        assert not t.accepted
        assert t.state == state
        assert type(event).__name__ in t.cause and "ready" in t.cause


def test_no_launch_in_maintenance_or_fault() -> None:
    state = transition(ready(), MaintenanceSet(True, "rotor swap")).state
    assert state.phase is P.MAINTENANCE
    t = transition(state, LaunchRequested())
    assert not t.accepted and "maintenance" in t.cause
    state = transition(state, MaintenanceSet(False)).state
    assert state.phase is P.READY

    state = transition(state, FaultRaised("cover jammed")).state
    assert state.phase is P.FAULT and state.fault == "cover jammed"
    assert not transition(state, LaunchRequested()).accepted
    t = transition(state, FaultCleared())
    assert t.state.phase is P.READY and "cover jammed" in t.cause


def test_maintenance_refused_in_flight() -> None:
    state, _ = run([LaunchRequested(), PreflightPassed(), TookOff()], ready())
    t = transition(state, MaintenanceSet(True))
    assert not t.accepted and "en_route" in t.cause


def test_fault_in_flight_keeps_the_drone_airborne_until_it_lands() -> None:
    state, _ = run([LaunchRequested(), PreflightPassed(), TookOff()], ready())
    t = transition(state, FaultRaised("cover jammed"))
    assert t.state.phase is P.EN_ROUTE and t.state.fault == "cover jammed"
    state, _ = run([ReturnRequested("fault"), Landed()], t.state)
    assert state.phase is P.POST_FLIGHT
    # the autopilot disarms; the nest shows its fault (the controller closes the cover from there)
    state = transition(state, DroneStatus(armed=False, in_air=False, ready_to_arm=False)).state
    assert state.phase is P.FAULT


def test_autopilot_failsafe_rtl_is_followed() -> None:
    state, _ = run([LaunchRequested(), PreflightPassed(), TookOff(), ReachedStation(), LinkLost()], ready())
    assert state.phase is P.ON_STATION  # link lost in flight: the drone is still up
    t = transition(state, DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=FlightMode.RETURN))
    assert t.state.phase is P.RETURNING and "return" in t.cause
    t = transition(t.state, DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=FlightMode.LAND))
    assert t.state.phase is P.LANDING


def test_link_lost_on_the_ground_is_offline_and_recovers() -> None:
    state = transition(ready(), LinkLost()).state
    assert state.phase is P.OFFLINE
    assert transition(state, LinkUp()).state.phase is P.READY


def test_launch_abort_with_cover_open_goes_to_post_flight() -> None:
    state, _ = run([LaunchRequested(), PreflightPassed(), CoverOpened()], ready())
    t = transition(state, LaunchAborted("wind rose"))
    assert t.state.phase is P.POST_FLIGHT and "wind rose" in t.cause
    assert transition(t.state, CoverClosed()).state.phase is P.READY
    state, _ = run([LaunchRequested(), PreflightFailed("compass")], ready())
    assert state.phase is P.READY


def test_landing_outside_the_dock_is_a_fault() -> None:
    state, _ = run([LaunchRequested(), PreflightPassed(), TookOff(), LandingStarted()], ready())
    t = transition(state, Landed(in_dock=False))
    assert t.state.phase is P.FAULT and "outside the dock" in t.cause


def test_goto_from_station_and_returning() -> None:
    state, _ = run([LaunchRequested(), PreflightPassed(), TookOff(), ReachedStation()], ready())
    assert transition(state, GotoRequested()).state.phase is P.EN_ROUTE
    state = transition(state, ReturnRequested("battery")).state
    assert transition(state, GotoRequested()).state.phase is P.EN_ROUTE


@pytest.mark.parametrize(
    ("mode", "phase"),
    [
        (FlightMode.MISSION, P.EN_ROUTE),
        (FlightMode.POSITION, P.EN_ROUTE),
        (FlightMode.HOLD, P.ON_STATION),
        (FlightMode.ORBIT, P.ON_STATION),
        (FlightMode.RETURN, P.RETURNING),
        (FlightMode.LAND, P.LANDING),
        (FlightMode.UNKNOWN, P.EN_ROUTE),
    ],
)
def test_restart_with_the_drone_airborne_reattaches(mode: FlightMode, phase: NestPhase) -> None:
    """kill -9 and restart: the first observations put the nest in the air, never 'ready'."""
    state, _ = run(
        [
            LinkUp(),
            DockStatus(CoverState.OPEN, False, False),
            DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=mode),
        ]
    )
    assert state.phase is phase
    assert not transition(state, LaunchRequested()).accepted
    obs = Observations(
        link_up=True,
        armed=True,
        in_air=True,
        ready_to_arm=True,
        mode=mode,
        cover=CoverState.OPEN,
        drone_in_dock=False,
        charging=False,
    )
    assert recover(obs).state.phase is phase
    assert recover(replace_link(obs, False)).state.phase is phase  # even with the link down


def replace_link(obs: Observations, up: bool) -> Observations:
    from dataclasses import replace

    return replace(obs, link_up=up)


def test_restart_with_persisted_maintenance() -> None:
    obs = Observations(
        link_up=True,
        armed=False,
        in_air=False,
        ready_to_arm=True,
        cover=CoverState.CLOSED,
        drone_in_dock=True,
        charging=False,
    )
    assert recover(obs).state.phase is P.READY
    assert recover(obs, maintenance=True).state.phase is P.MAINTENANCE
    assert recover(obs, fault="charger").state.phase is P.FAULT
    assert recover(Observations(link_up=True)).state.phase is P.OFFLINE  # nothing known yet


def test_derive_phase_on_the_ground() -> None:
    base = Observations(
        link_up=True,
        armed=False,
        in_air=False,
        ready_to_arm=False,
        cover=CoverState.CLOSED,
        drone_in_dock=True,
        charging=False,
    )
    from dataclasses import replace

    assert derive_phase(base)[0] is P.STANDBY
    assert derive_phase(replace(base, charging=True))[0] is P.CHARGING
    assert derive_phase(replace(base, cover=CoverState.OPEN))[0] is P.POST_FLIGHT
    assert derive_phase(replace(base, drone_in_dock=False))[0] is P.FAULT
    assert derive_phase(replace(base, armed=True))[0] is P.LANDING
    assert derive_phase(replace(base, link_up=False))[0] is P.OFFLINE


# --- invariants under random sequences --------------------------------------------------------

modes = st.sampled_from(FlightMode)
# the likely facts are drawn often, so random sequences reach every phase, not only 'offline'
observations = st.one_of(
    st.sampled_from([DOCK_CLOSED, DOCK_CHARGING, ON_PAD_READY, LinkUp()]),
    st.just(LinkUp()),
    st.just(LinkLost()),
    st.builds(DockStatus, st.sampled_from(CoverState), st.booleans(), st.booleans()),
    st.builds(DroneStatus, st.booleans(), st.booleans(), st.booleans(), modes),
)
operations = st.one_of(
    st.just(LaunchRequested()),
    st.just(PreflightPassed()),
    st.just(PreflightFailed("x")),
    st.just(CoverOpened()),
    st.just(TookOff()),
    st.just(ReachedStation()),
    st.just(GotoRequested()),
    st.just(ReturnRequested("r")),
    st.just(LandingStarted()),
    st.builds(Landed, st.booleans()),
    st.just(LaunchAborted("a")),
    st.just(CoverClosed()),
    st.just(FaultRaised("f")),
    st.just(FaultCleared()),
    st.builds(MaintenanceSet, st.booleans()),
)
events = st.lists(st.one_of(observations, operations, operations), max_size=60)


def check_invariants(before: NestState, t: Transition, event: Event) -> None:
    s = t.state
    assert t.cause, "every transition has a cause"
    if not t.accepted:
        assert s == before
    if s.obs.in_air:
        assert s.phase in AIRBORNE, f"drone in the air but {s.phase}"
    if s.phase in DOCKED:
        assert not s.obs.in_air and not s.obs.armed
        assert s.obs.link_up and s.obs.drone_in_dock and s.obs.cover is CoverState.CLOSED
        assert not s.maintenance and s.fault is None
    if s.phase is P.READY:
        assert s.obs.ready_to_arm and not s.obs.charging
    if s.phase in (P.PREFLIGHT, P.LAUNCHING):
        assert not s.maintenance and s.fault is None
        assert not s.obs.in_air
    if s.phase is P.MAINTENANCE:
        assert s.maintenance and not s.obs.in_air
    if s.phase is P.PREFLIGHT:
        assert before.phase in (P.READY, P.CHARGING, P.PREFLIGHT)
    if s.phase is P.LAUNCHING and before.phase is not P.LAUNCHING:
        assert before.phase is P.PREFLIGHT and isinstance(event, PreflightPassed)
    if s.phase in AIRBORNE and before.phase not in AIRBORNE:
        assert s.obs.in_air or isinstance(event, TookOff) or s.obs.armed


@settings(max_examples=400)
@given(events)
def test_random_sequences_never_reach_an_inconsistent_state(seq: list[Event]) -> None:
    state = NestState()
    phases = set()
    for event in seq:
        t = transition(state, event)
        check_invariants(state, t, event)
        state = t.state
        phases.add(state.phase)
    event_count(phases)


def event_count(phases: set[NestPhase]) -> None:
    from hypothesis import event

    for phase in phases:
        event(f"reached {phase.value}")


@settings(max_examples=200)
@given(events, st.builds(DroneStatus, st.booleans(), st.just(True), st.booleans(), modes))
def test_after_any_history_an_airborne_report_is_airborne(seq: list[Event], airborne: DroneStatus) -> None:
    state, _ = run(seq)
    assert transition(state, airborne).state.phase in AIRBORNE


@settings(max_examples=200)
@given(events)
def test_recover_from_the_observations_of_any_history_is_consistent(seq: list[Event]) -> None:
    state, _ = run(seq)
    t = recover(state.obs, state.fault, state.maintenance)
    check_invariants(t.before, t, LinkUp())
    if state.obs.in_air:
        assert t.state.phase in AIRBORNE


flight_events = st.lists(st.one_of(operations, operations, operations, observations), max_size=40)


@settings(max_examples=400)
@given(flight_events)
def test_random_sequences_from_ready_never_reach_an_inconsistent_state(seq: list[Event]) -> None:
    """Starting on the pad, ready: operations dominate, so launches and flights are exercised."""
    state = ready()
    phases = set()
    for event in seq:
        t = transition(state, event)
        check_invariants(state, t, event)
        state = t.state
        phases.add(state.phase)
    event_count(phases)


def _away_on_station() -> NestState:
    state, _ = run(
        [
            LaunchRequested(),
            PreflightPassed(),
            CoverOpened(),
            TookOff(),
            DroneStatus(armed=True, in_air=True, ready_to_arm=True, mode=FlightMode.HOLD),
            DockStatus(CoverState.OPEN, drone_in_dock=False, charging=False),  # it left the pad
        ],
        ready(),
    )
    assert state.phase is P.EN_ROUTE
    return state


@pytest.mark.parametrize(("on_pad", "phase"), [(True, P.POST_FLIGHT), (False, P.FAULT)])
def test_a_landing_while_the_dock_was_unheard_waits_for_its_word(on_pad: bool, phase: NestPhase) -> None:
    """A blackout of the whole nest: PX4 returned and landed; the dock's last word (drone not in
    the dock, from the take-off) is stale and must not make the landing one away from the pad."""
    state, log = run(
        [
            DockLinkLost(),
            LinkLost(),
            LinkUp(),
            DroneStatus(armed=False, in_air=False, ready_to_arm=True, mode=FlightMode.HOLD),
        ],
        _away_on_station(),
    )
    assert state.phase is P.EN_ROUTE and "waiting for the dock" in log[-1].cause
    state, _ = run([DockStatus(CoverState.OPEN, drone_in_dock=on_pad, charging=False)], state)
    assert state.phase is phase
