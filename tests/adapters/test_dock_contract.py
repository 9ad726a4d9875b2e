"""What any ``Dock`` implementation must do, run here with ``MavlinkDock`` against the simulator.

Fault injection (``nest.inject``) is the simulator's; against real hardware those tests are the
ones to run by hand (pull the cable, block the cover)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from adapters.errors import CommandRejected, LinkLost
from adapters.mavlink.dock import MavlinkDock
from adapters.mavlink.ids import DOCK_COMPID
from adapters.mavlink.watch import Watch
from adapters.protocols import ChargerState, CommandResult, CoverState, Dock, DockFault, LinkState
from sitl.environment import FaultKind
from tests.adapters.conftest import SIM_SPEED, SimulatedNest

T = TypeVar("T")


@pytest.fixture
async def dock(simulated: SimulatedNest) -> AsyncIterator[MavlinkDock]:
    link = simulated.router.component(simulated.system_id, DOCK_COMPID, "dock")
    adapter = MavlinkDock(link)
    await link.watchdog.state.wait_for(lambda s: s.connected, 5.0)
    yield adapter
    adapter.close()


async def first(stream: AsyncIterator[T], predicate: Callable[[T], bool], timeout_s: float = 5.0) -> T:
    """The first value of ``stream`` for which ``predicate`` holds."""
    async with asyncio.timeout(timeout_s):
        async for value in stream:
            if predicate(value):
                return value
    raise AssertionError("stream ended")


def watch_of(stream: AsyncIterator[LinkState]) -> tuple[Watch[LinkState], asyncio.Task[None]]:
    """Mirror a stream into a Watch, so a test can wait for a state it may have missed."""
    watch: Watch[LinkState] = Watch()

    async def pump() -> None:
        async for value in stream:
            watch.set(value)

    return watch, asyncio.create_task(pump())


async def test_is_a_dock(dock: MavlinkDock) -> None:
    assert isinstance(dock, MavlinkDock)
    _: Dock = dock  # the protocol, checked by mypy


async def test_status_and_weather_stream(dock: MavlinkDock, simulated: SimulatedNest) -> None:
    status = await first(dock.status(), lambda s: True)
    assert status.cover is CoverState.CLOSED
    assert status.drone_in_dock
    assert not status.faults
    simulated.nest.set_weather(wind_speed_mps=14.0, wind_gust_mps=18.0)
    async with asyncio.timeout(10.0):
        async for weather in dock.weather():
            if weather.wind_speed_mps > 10.0:
                break
    assert weather.wind_gust_mps >= weather.wind_speed_mps


async def test_open_returns_when_fully_open_and_close_when_closed(
    dock: MavlinkDock, simulated: SimulatedNest
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await dock.open_cover()
    took_sim_s = (loop.time() - started) * SIM_SPEED
    assert simulated.nest.dock.cover_state.name == "OPEN"
    assert took_sim_s > 10.0  # it waited for the whole travel, not only the first answer
    assert (await first(dock.status(), lambda s: s.cover is CoverState.OPEN)).cover_position_pct == 100.0
    await dock.open_cover()  # already open: done at once
    await dock.close_cover()
    assert simulated.nest.dock.cover_state.name == "CLOSED"
    kinds = [r.kind for r in simulated.nest.ctx.recorder.all("cover.")]
    assert kinds == ["cover.opening", "cover.opened", "cover.closing", "cover.closed"]


async def test_charging_on_and_off(dock: MavlinkDock) -> None:
    await dock.set_charging(False)
    await first(dock.status(), lambda s: s.charger is ChargerState.IDLE)
    await dock.set_charging(True)
    status = await first(dock.status(), lambda s: s.charger is ChargerState.CHARGING)
    assert status.charge_current_a > 0


async def test_jammed_cover_is_reported_and_reset_once_cleared(
    dock: MavlinkDock, simulated: SimulatedNest
) -> None:
    simulated.nest.inject(FaultKind.COVER_JAM)
    with pytest.raises(CommandRejected) as refused:
        await dock.open_cover()
    assert refused.value.result is CommandResult.FAILED
    assert "jammed" in refused.value.text.lower()
    await first(dock.status(), lambda s: DockFault.COVER_JAMMED in s.faults)
    with pytest.raises(CommandRejected) as still:
        await dock.reset_faults()
    assert "cover jammed" in still.value.text
    simulated.nest.inject(FaultKind.CLEAR)
    await dock.reset_faults()
    await first(dock.status(), lambda s: not s.faults)
    await dock.open_cover()


async def test_link_cut_is_reported_within_3_s_fails_fast_and_recovers(
    dock: MavlinkDock, simulated: SimulatedNest
) -> None:
    loop = asyncio.get_running_loop()
    link, pump = watch_of(dock.link_state())
    try:
        await link.wait_for(lambda s: s.connected, 2.0)
        cut_at = loop.time()
        simulated.nest.inject(FaultKind.LINK_LOSS, duration_s=6.0 * SIM_SPEED)  # 6 s of real time
        await link.wait_for(lambda s: not s.connected, 3.0)
        assert loop.time() - cut_at <= 3.0
        tried_at = loop.time()
        with pytest.raises(LinkLost):
            await dock.open_cover()
        with pytest.raises(LinkLost):
            await dock.set_charging(True)
        assert loop.time() - tried_at < 0.1
        await link.wait_for(lambda s: s.connected, 8.0)
        assert loop.time() - cut_at >= 5.5
        await dock.set_charging(True)  # works again, nothing done by hand
    finally:
        pump.cancel()


async def test_link_cut_while_the_cover_moves_ends_the_command(
    dock: MavlinkDock, simulated: SimulatedNest
) -> None:
    loop = asyncio.get_running_loop()
    opening = asyncio.create_task(dock.open_cover())
    await first(dock.status(), lambda s: s.cover is CoverState.OPENING)
    simulated.nest.inject(FaultKind.LINK_LOSS, duration_s=30.0 * SIM_SPEED)
    cut_at = loop.time()
    with pytest.raises(LinkLost):
        await opening
    assert loop.time() - cut_at <= 3.0
