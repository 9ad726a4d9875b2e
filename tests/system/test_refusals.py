"""Every launch blocker, one test each: the launch is refused with its reason, the nest stays
where it was, and nothing reaches the drone (the simulated autopilot never armed or took off,
the dock cover never moved)."""

from __future__ import annotations

import pytest

from dronectl.domain.errors import CommandFailed, CommandRefused
from dronectl.domain.geo import GeoPoint, destination
from dronectl.domain.nest_state import DOCKED, NestPhase
from dronectl.domain.safety import BlockerCode
from dronectl.nest.controller import NestController, NestEvent
from sitl.environment import FaultKind
from sitl.nest import SimNest
from tests.system.conftest import System

# Nests 1 (People's Square) and 6 (Culture Square) are 920 m apart, nest 1 is 800 m from the
# provincial government compound (a no-fly zone); nest 4 (Jingyuetan) is 5 km from the
# geofence's southern edge.
NESTS = [1, 4, 6]
# what would reach the drone or the dock if a refused launch leaked through
_TOUCHED = ("armed", "arm.denied", "takeoff", "reposition", "mode", "cover.opening", "charger.off")


@pytest.fixture
def nest_ids() -> list[int]:
    return NESTS


def untouched(sim: SimNest) -> None:
    leaked = [r for r in sim.ctx.recorder.all() if r.kind.startswith(_TOUCHED)]
    assert not leaked, leaked
    assert not sim.autopilot.armed and not sim.autopilot.airborne() and sim.on_pad()
    assert not sim.cover_open()


async def refused(nest: NestController, target: GeoPoint, alt_m: float = 60.0) -> set[BlockerCode]:
    """Launch, expect a refusal; return its blocker codes after checking it left the nest as it was."""
    before = nest.state.phase
    events: list[NestEvent] = []
    nest.listeners.append(events.append)
    with pytest.raises(CommandRefused) as info:
        await nest.launch(target, alt_m)
    nest.listeners.remove(events.append)
    assert nest.state.phase is before and nest.flight is None
    assert [e.kind for e in events] == ["refused"]
    assert all(b.message in events[0].message for b in info.value.blockers)
    assert all(b.message for b in info.value.blockers)
    return {b.code for b in info.value.blockers}


async def test_wind_above_the_limit(system: System) -> None:
    nest, sim = system.nest(1), system.world.nest(1)
    limit = system.config.weather_limits.max_wind_mps
    sim.set_weather(wind_speed_mps=limit + 3.0)
    await system.wait(1, lambda c: c.dock.weather is not None and c.dock.weather.wind_speed_mps > limit, 10)

    codes = await refused(nest, destination(nest.home, 180.0, 500.0))

    assert BlockerCode.WIND in codes
    # the station's gusts rise with the wind, and such a wind may also make the route too long
    assert codes <= {BlockerCode.WIND, BlockerCode.GUST, BlockerCode.WIND_TOO_STRONG_FOR_ROUTE}
    untouched(sim)


async def test_battery_short_for_the_distance(system: System) -> None:
    nest, sim = system.nest(1), system.world.nest(1)
    target = destination(nest.home, 200.0, 5000.0)
    assert not nest.blockers_for_launch(target, 60.0)  # the trip itself is fine on a full battery
    sim.autopilot.battery.soc = 0.45  # the dock's charger fills it slowly: 0.1 %/s simulated
    await system.wait(1, lambda c: c.drone.battery_pct is not None and c.drone.battery_pct < 50, 10)

    codes = await refused(nest, target)

    assert codes == {BlockerCode.BATTERY_SHORT}
    untouched(sim)


async def test_target_outside_the_geofence(system: System) -> None:
    nest, sim = system.nest(4), system.world.nest(4)
    target = destination(nest.home, 180.0, 5500.0)  # the fence's southern edge is 4.9 km away
    assert not system.fleet.policy.airspace.contains(target)

    codes = await refused(nest, target)

    assert BlockerCode.OUTSIDE_GEOFENCE in codes
    assert codes <= {BlockerCode.OUTSIDE_GEOFENCE, BlockerCode.PATH_LEAVES_GEOFENCE}
    untouched(sim)


async def test_target_in_a_no_fly_zone(system: System) -> None:
    nest, sim = system.nest(1), system.world.nest(1)
    compound = GeoPoint(43.8920, 125.3315)  # provincial government compound
    assert system.fleet.policy.airspace.zone_at(compound) is not None

    codes = await refused(nest, compound)

    assert BlockerCode.IN_NO_FLY_ZONE in codes
    assert codes <= {BlockerCode.IN_NO_FLY_ZONE, BlockerCode.PATH_CROSSES_NO_FLY}
    untouched(sim)


async def test_altitude_above_the_ceiling(system: System) -> None:
    nest, sim = system.nest(1), system.world.nest(1)
    ceiling = system.config.safety.altitude_ceiling_m

    codes = await refused(nest, destination(nest.home, 180.0, 500.0), alt_m=ceiling + 30.0)

    assert codes == {BlockerCode.ALTITUDE_CEILING}
    untouched(sim)


async def test_nest_in_maintenance(system: System) -> None:
    nest, sim = system.nest(1), system.world.nest(1)
    await nest.set_maintenance(True, "rotor inspection")
    assert nest.state.phase is NestPhase.MAINTENANCE

    codes = await refused(nest, destination(nest.home, 180.0, 500.0))

    assert BlockerCode.NEST_MAINTENANCE in codes
    assert codes <= {BlockerCode.NEST_MAINTENANCE, BlockerCode.NEST_NOT_READY}
    untouched(sim)
    await nest.set_maintenance(False)
    assert nest.state.phase in DOCKED


async def test_separation_conflict_with_another_nests_flight(system: System) -> None:
    first, other = system.nest(6), system.nest(1)
    station = destination(first.home, 0.0, 300.0)  # between the two nests, 620 m from nest 1
    await first.launch(station, 40.0)
    await system.wait_phase(6, NestPhase.ON_STATION, timeout_s=60)

    near = destination(station, 90.0, 100.0)  # within the 150 m separation
    codes = await refused(other, near)

    assert codes == {BlockerCode.SEPARATION}
    untouched(system.world.nest(1))
    # the same flight is allowed once it keeps its distance
    assert not other.blockers_for_launch(destination(other.home, 0.0, 400.0), 40.0)


async def test_a_launch_failing_on_the_ground_is_reported_and_the_nest_goes_on(system: System) -> None:
    """Not a refusal but its neighbour: the checks pass, then the cover jams as it starts to open.
    The launch fails with the dock's reason, the drone never arms, the nest's controller keeps
    running (its watchers are not restarted), and the next launch is refused for the jam."""
    nest, sim = system.nest(1), system.world.nest(1)
    watchers = nest._tg
    events: list[NestEvent] = []
    nest.listeners.append(events.append)
    sim.inject(FaultKind.COVER_JAM)

    op = await nest.launch(destination(nest.home, 180.0, 500.0), 60.0)
    with pytest.raises(CommandFailed, match="jammed"):
        await op

    assert [e for e in events if e.kind == "operation_failed"]
    assert [e for e in events if e.kind == "launch_aborted"]
    assert nest.flight is None
    assert not sim.autopilot.armed and not sim.autopilot.airborne()
    assert not [r for r in sim.ctx.recorder.all() if r.kind.startswith(("armed", "takeoff"))]
    # it then tries to close the cover again, and says why it cannot
    await system.wait(1, lambda c: any(e.kind == "fault" and "close" in e.message for e in events), 10)
    await system.wait(1, lambda c: "cover jammed" in c.snapshot().device_faults, 10)
    codes = await refused(nest, destination(nest.home, 180.0, 500.0))
    assert BlockerCode.DEVICE_FAULT in codes
    assert nest._tg is watchers  # the same run of the nest's controller throughout
