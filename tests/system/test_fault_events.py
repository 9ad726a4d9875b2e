"""Every fault the simulator injects is told as its own event, with what the drone did about it
(issue 19): a GPS loss and a battery failure in flight each give a ``fault`` event naming it, kept
with the flight in the audit store; the drone lands where it is, and the nest says what people
must do to get it back to ready."""

from __future__ import annotations

import pytest

from dronectl.audit import AuditStore
from dronectl.domain.geo import destination
from dronectl.domain.nest_state import NestPhase
from dronectl.nest.controller import NestController, NestEvent
from dronectl.nest.types import Flight
from sitl.environment import FaultKind
from sitl.nest import SimNest
from tests.system.conftest import System


async def _on_station(
    system: System, bearing_deg: float, distance_m: float
) -> tuple[NestController, SimNest, list[NestEvent], Flight]:
    """Nest 3's drone launched and on station; its events as they come, and its flight."""
    nest, sim = system.nest(3), system.world.nest(3)
    events: list[NestEvent] = []
    nest.listeners.append(events.append)
    await nest.launch(destination(nest.home, bearing_deg, distance_m), 30.0)
    await system.wait_phase(3, NestPhase.ON_STATION, timeout_s=120)
    flight = nest.flight
    assert flight is not None
    return nest, sim, events, flight


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (FaultKind.GPS_LOSS, "gps_loss", "GPS"),
        (FaultKind.BATTERY_FAILURE, "battery_failure", "battery failed"),
    ],
)
async def test_a_fault_in_flight_is_its_own_event_with_what_the_drone_did(
    system: System, fault: FaultKind, kind: str, words: str
) -> None:
    nest, sim, events, flight = await _on_station(system, 0.0, 200.0)

    sim.inject(fault, duration_s=120.0)

    def told() -> list[NestEvent]:
        return [e for e in events if e.kind == "fault" and e.data.get("fault") == kind]

    await system.wait(3, lambda c: bool(told()), 30)
    [event] = told()
    assert words in event.message
    assert "landing where it is" in event.message, event.message  # PX4's failsafe: Land
    assert event.data["mode"] == "land"
    battery = sim.autopilot.battery_pct
    assert event.data["battery_pct"] == pytest.approx(battery, abs=2.0)  # what the drone reports

    # landed away from the pad: the nest says so, and what people can do
    await system.wait(3, lambda c: c.state.phase is NestPhase.FAULT, 120)
    await system.wait(3, lambda c: c.recovery_problem is not None, 30)
    assert nest.recovery_problem is not None and "outside the dock" in nest.recovery_problem
    async with await AuditStore.open(system.audit_path) as audit:
        detail = await audit.flight(flight.flight_id)
    assert detail is not None
    assert any(e["kind"] == "fault" and kind in (e["data"] or {}).get("fault", "") for e in detail["events"])


async def test_a_link_blackout_in_flight_is_told_and_a_landing_on_the_pad_is_not_landed_away(
    system: System,
) -> None:
    _, sim, events, flight = await _on_station(system, 90.0, 150.0)

    # past PX4's COM_DL_LOSS_T (10 s): it returns by itself and lands on its pad while unheard
    sim.inject(FaultKind.LINK_LOSS, duration_s=120.0)
    await system.wait(3, lambda c: not c.drone.link_up, 10)
    await system.wait(3, lambda c: c.drone.link_up, 60)

    def told() -> list[NestEvent]:
        return [e for e in events if e.kind == "fault" and e.data.get("fault") == "link_blackout"]

    await system.wait(3, lambda c: bool(told()), 30)
    [event] = told()
    assert "link blackout of" in event.message and "landed" in event.message, event.message
    await system.wait(3, lambda c: c.state.phase in (NestPhase.READY, NestPhase.CHARGING), 90)
    assert sim.on_pad() and not sim.cover_open()
    async with await AuditStore.open(system.audit_path) as audit:
        [row] = [f for f in await audit.flights(nest_id=3) if f["flight_id"] == flight.flight_id]
    assert row["outcome"] == "completed", row


async def test_a_gust_above_the_limit_is_told_with_what_the_drone_does_and_when_it_eases(
    system: System,
) -> None:
    nest, sim, events, flight = await _on_station(system, 0.0, 150.0)
    limit = nest.policy.limits.max_gust_mps

    sim.inject(FaultKind.WIND_GUST, value=limit + 6.0, duration_s=30.0)

    def told(kind: str) -> list[NestEvent]:
        return [e for e in events if e.kind == kind and e.data.get("fault") == "gust"]

    await system.wait(3, lambda c: bool(told("fault")), 30)
    [event] = told("fault")  # once per spell, however many readings it lasts
    assert event.data["gust_mps"] > limit and event.data["limit_mps"] == limit
    assert "no launch until it eases" in event.message
    assert "the drone" in event.message and event.data["mode"] == nest.drone.mode.value
    await system.wait(3, lambda c: bool(told("fault_cleared")), 90)
    [eased] = told("fault_cleared")
    assert eased.data["peak_mps"] >= event.data["gust_mps"] and eased.data["gust_mps"] <= limit
    assert len(told("fault")) == 1
    async with await AuditStore.open(system.audit_path) as audit:
        detail = await audit.flight(flight.flight_id)
    assert detail is not None
    assert any(e["kind"] == "fault" and (e["data"] or {}).get("fault") == "gust" for e in detail["events"])
