"""Launch a nest to a point, hold on station, return: cover, climb, flight, landing in the dock,
cover closing and charging, asserted from the controller's state and the simulator's records."""

from __future__ import annotations

from dronectl.audit import AuditStore
from dronectl.domain.geo import GeoPoint, destination, distance_m
from dronectl.domain.nest_state import NestPhase
from tests.system.conftest import System


async def test_launch_nest_3_to_a_point_1_5_km_away_and_back(system: System) -> None:
    nest = system.nest(3)
    sim = system.world.nest(3)
    target = destination(nest.home, 20.0, 1500.0)
    assert 1490 < distance_m(nest.home, target) < 1510

    await nest.launch(target, 60.0, command_id="cmd-launch-3")
    await system.wait_phase(3, NestPhase.ON_STATION, timeout_s=120)

    pos = nest.drone.position
    assert pos is not None
    assert distance_m(GeoPoint(pos.lat_deg, pos.lon_deg), target) < 10
    assert 50 < pos.alt_rel_m < 70
    kinds = [r.kind for r in sim.ctx.recorder.all()]
    assert "cover.opened" in kinds
    assert sim.autopilot.armed and sim.autopilot.airborne()
    # the drone flies (and returns at) the speed the battery checks plan with
    assert sim.autopilot.params["MPC_XY_CRUISE"] == nest.policy.model.cruise_airspeed_mps

    await nest.return_home("test over")
    await system.wait_phase(3, NestPhase.CHARGING, timeout_s=180)

    assert sim.on_pad() and not sim.autopilot.armed
    kinds = [r.kind for r in sim.ctx.recorder.all()]
    assert kinds.index("cover.opened") < kinds.index("cover.closed")
    assert "charger.on" in kinds[kinds.index("cover.closed") :]
    assert nest.flight is None

    async with await AuditStore.open(system.audit_path) as audit:
        [flight] = await audit.flights(nest_id=3)
        assert flight["outcome"] == "completed" and flight["command_id"] == "cmd-launch-3"
        detail = await audit.flight(flight["flight_id"])
        assert detail is not None and len(detail["track"]) > 10
        phases = [t["to_state"] for t in await audit.transitions(3)]
    for phase in ("preflight", "launching", "en_route", "on_station", "returning", "post_flight", "charging"):
        assert phase in phases, (phase, phases)
