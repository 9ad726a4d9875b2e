"""The battery-reserve guard: a drone whose battery drains ten times too fast turns back on its
own, in time to land in its dock with its reserve, before PX4's low-battery failsafe would have
to act."""

from __future__ import annotations

from dronectl.audit import AuditStore
from dronectl.domain.geo import GeoPoint, destination, distance_m
from dronectl.domain.nest_state import NestPhase
from dronectl.nest.controller import NestEvent
from sitl.environment import FaultKind
from tests.system.conftest import System

DRAIN_FACTOR = 10.0
LANDING_TOLERANCE_PCT = 3.0


async def test_fast_drain_turns_the_drone_back_with_its_reserve(system: System) -> None:
    nest, sim = system.nest(3), system.world.nest(3)
    reserve = system.fleet.policy.limits.reserve_pct
    target = destination(nest.home, 20.0, 4000.0)
    events: list[NestEvent] = []
    nest.listeners.append(events.append)

    await nest.launch(target, 60.0)
    await system.wait_phase(3, NestPhase.EN_ROUTE, timeout_s=60)
    sim.inject(FaultKind.BATTERY_DRAIN, DRAIN_FACTOR)

    await system.wait_phase(3, NestPhase.RETURNING, timeout_s=120)
    pos = nest.drone.position
    assert pos is not None
    turned_at_m = distance_m(nest.home, GeoPoint(pos.lat_deg, pos.lon_deg))
    assert turned_at_m < 3900, "it turned back before reaching its station"
    guard = [e for e in events if e.kind == "returning" and e.data.get("automatic")]
    assert guard and "reserve" in guard[0].message, [e.message for e in events if e.kind == "returning"]

    await system.wait_phase(3, NestPhase.POST_FLIGHT, timeout_s=180)
    landed = [r for r in sim.ctx.recorder.all("landed")]
    assert landed and landed[-1].data["on_pad"] is True
    assert sim.on_pad()
    assert sim.autopilot.battery_pct >= reserve - LANDING_TOLERANCE_PCT, sim.autopilot.battery_pct

    # the return was ours: PX4 was asked to return (rtl) and its battery failsafe never fired
    kinds = [r.kind for r in sim.ctx.recorder.all()]
    assert "rtl" in kinds or any(
        r.kind == "mode" and r.data["mode"] == "RTL" for r in sim.ctx.recorder.all("mode")
    )
    failsafes = [r for r in sim.ctx.recorder.all("failsafe")]
    assert not failsafes, failsafes

    async with await AuditStore.open(system.audit_path) as audit:
        [flight] = await audit.flights(nest_id=3)
        detail = await audit.flight(flight["flight_id"])
    assert detail is not None
    returning = [e for e in detail["events"] if e["kind"] == "returning"]
    assert returning and "reserve" in returning[0]["message"]
