"""Back to ready after every flight (issue 19): the nest flies again after a flight that ended in
Return, with the drone's mode left for one PX4 arms in. Real MAVSDK, real pymavlink, real UDP."""

from __future__ import annotations

import asyncio

import pytest

from adapters.protocols import FlightMode
from dronectl.domain.errors import DronectlError
from dronectl.domain.geo import destination
from dronectl.domain.nest_state import NestPhase
from sitl.environment import FaultKind
from tests.system.conftest import System

ON_THE_GROUND_READY = (NestPhase.READY, NestPhase.CHARGING)


async def test_three_flights_in_a_row_each_ending_in_rtl_all_launch(system: System) -> None:
    nest = system.nest(3)
    sim = system.world.nest(3)
    for flight in range(3):
        target = destination(nest.home, 90.0 * flight, 300.0)
        await nest.launch(target, 40.0, command_id=f"rtl-{flight}")
        await system.wait_phase(3, NestPhase.ON_STATION, timeout_s=120)
        await nest.return_home("test: end in Return")
        await system.wait(3, lambda c: c.drone.mode is FlightMode.RETURN_TO_LAUNCH, 30)
        await system.wait(3, lambda c: c.state.phase in ON_THE_GROUND_READY, 180)
        assert sim.on_pad() and not sim.autopilot.armed
    denied = [r for r in sim.ctx.recorder.all("arm.denied")]
    assert denied == []
    assert len(sim.ctx.recorder.all("armed")) == 3


async def test_a_drone_put_in_return_on_the_ground_is_put_in_hold_and_launches(system: System) -> None:
    nest = system.nest(3)
    # a ground station may select Return on the ground (PX4 accepts it, and then refuses to arm)
    await nest.hw.flight.return_to_launch()
    await system.wait(3, lambda c: c.drone.mode is FlightMode.RETURN_TO_LAUNCH, 10)
    await nest.launch(destination(nest.home, 0.0, 200.0), 30.0)
    await system.wait_phase(3, NestPhase.ON_STATION, timeout_s=120)
    assert system.world.nest(3).autopilot.armed


async def test_a_cover_jam_once_cleared_leaves_the_nest_ready_without_a_restart(system: System) -> None:
    nest = system.nest(3)
    sim = system.world.nest(3)
    sim.inject(FaultKind.COVER_JAM)
    launch = await nest.launch(destination(nest.home, 0.0, 200.0), 30.0)
    with pytest.raises(DronectlError, match="jammed"):
        await asyncio.wait_for(launch, 60)
    assert sim.ctx.recorder.all("cover.jammed")
    # the nest tries by itself (the dock refuses while the jam lasts), and says what people can do
    await system.wait(3, lambda c: c.recovery_problem is not None, 60)
    assert nest.recovery_problem is not None and "maintenance" in nest.recovery_problem
    blockers = nest.blockers_for_launch(destination(nest.home, 0.0, 200.0), 30.0)
    assert any("jammed" in b.message for b in blockers)
    assert nest.state.phase not in ON_THE_GROUND_READY

    sim.inject(FaultKind.CLEAR)  # someone freed the cover
    await system.wait(3, lambda c: c.state.phase in ON_THE_GROUND_READY, 90)
    await system.wait(3, lambda c: c.recovery_problem is None, 30)
    assert not sim.cover_open()
    assert sim.ctx.recorder.all("faults.reset")
    assert not nest.blockers_for_launch(destination(nest.home, 0.0, 200.0), 30.0)


async def test_maintenance_then_its_end_is_the_operators_recover(system: System) -> None:
    nest = system.nest(3)
    sim = system.world.nest(3)
    sim.inject(FaultKind.COVER_JAM)
    launch = await nest.launch(destination(nest.home, 0.0, 200.0), 30.0)
    with pytest.raises(DronectlError, match="jammed"):
        await asyncio.wait_for(launch, 60)
    await system.wait(3, lambda c: c.recovery_problem is not None, 60)

    await nest.set_maintenance(True, "freeing the dock cover")  # the operator takes the nest
    assert nest.state.phase is NestPhase.MAINTENANCE
    sim.inject(FaultKind.CLEAR)
    resets = len(sim.ctx.recorder.all("faults.reset"))
    await nest.set_maintenance(False, "cover freed")  # and hands it back: the nest recovers
    await system.wait(3, lambda c: c.state.phase in ON_THE_GROUND_READY and c.recovery_problem is None, 90)
    assert len(sim.ctx.recorder.all("faults.reset")) > resets and not sim.cover_open()
