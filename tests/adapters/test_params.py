"""Parameter sets on our own link: against the simulated PX4, and a scripted component."""

from __future__ import annotations

import asyncio

import pytest

from adapters.errors import CommandRejected, CommandTimeout, LinkLost
from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.ids import AUTOPILOT_COMPID
from adapters.mavlink.link import ComponentLink
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.params import set_param
from tests.adapters.conftest import NEST_SYSID, Loopback, SimulatedNest
from tests.adapters.fake_peer import wait_until


async def _autopilot(lb: Loopback) -> ComponentLink:
    link = lb.router.component(NEST_SYSID, AUTOPILOT_COMPID, "autopilot")
    lb.nest.start_heartbeats(AUTOPILOT_COMPID)
    await link.watchdog.state.wait_for(lambda s: s.connected, 2.0)
    return link


def _param_sets(lb: Loopback) -> list[MAVLinkMessage]:
    return lb.nest.of_type("PARAM_SET")


def _answer(lb: Loopback, name: str, value: float, param_type: int = mav.MAV_PARAM_TYPE_REAL32) -> None:
    lb.nest.send(AUTOPILOT_COMPID, mav.MAVLink_param_value_message(name.encode(), value, param_type, 100, 3))


async def test_the_simulated_px4_takes_the_value(simulated: SimulatedNest) -> None:
    sysid = simulated.system_id
    link = simulated.router.component(sysid, AUTOPILOT_COMPID, "autopilot")
    await link.watchdog.state.wait_for(lambda s: s.connected, 10.0)
    assert simulated.nest.autopilot.params["MPC_XY_CRUISE"] != 7.5
    assert await set_param(link, "MPC_XY_CRUISE", 7.5) == 7.5
    assert simulated.nest.autopilot.params["MPC_XY_CRUISE"] == 7.5
    # an integer goes bytewise, as PX4 sends it
    assert await set_param(link, "COM_DL_LOSS_T", 25, mav.MAV_PARAM_TYPE_INT32) == 25
    assert simulated.nest.autopilot.params.get_int("COM_DL_LOSS_T") == 25


async def test_resent_until_the_component_answers(loopback: Loopback) -> None:
    link = await _autopilot(loopback)
    task_result: list[float] = []

    async def run() -> None:
        task_result.append(await set_param(link, "MPC_XY_CRUISE", 6.0, resend_s=0.1, timeout_s=3.0))

    task = asyncio.create_task(run())
    await wait_until(lambda: len(_param_sets(loopback)) >= 3, 3.0, "three PARAM_SETs")
    sent = _param_sets(loopback)[0]
    assert (sent.target_system, sent.target_component, sent.param_type) == (
        NEST_SYSID,
        AUTOPILOT_COMPID,
        mav.MAV_PARAM_TYPE_REAL32,
    )
    _answer(loopback, "OTHER_PARAM", 6.0)  # another parameter's value does not count
    _answer(loopback, "MPC_XY_CRUISE", 6.0)
    await task
    assert task_result == [6.0]


async def test_a_value_the_component_kept_is_a_refusal_naming_it(loopback: Loopback) -> None:
    link = await _autopilot(loopback)

    task = asyncio.create_task(set_param(link, "MPC_XY_CRUISE", 30.0, resend_s=0.1, timeout_s=0.6))
    await wait_until(lambda: len(_param_sets(loopback)) >= 1, 2.0, "a PARAM_SET")
    _answer(loopback, "MPC_XY_CRUISE", 12.0)
    with pytest.raises(CommandRejected) as refused:
        await task
    assert "kept MPC_XY_CRUISE = 12" in str(refused.value)


async def test_silence_times_out_after_resending(loopback: Loopback) -> None:
    link = await _autopilot(loopback)
    with pytest.raises(CommandTimeout) as timed_out:
        await set_param(link, "MPC_XY_CRUISE", 6.0, resend_s=0.1, timeout_s=0.5)
    assert timed_out.value.attempts >= 3
    assert len(_param_sets(loopback)) == timed_out.value.attempts


async def test_a_lost_link_sends_nothing(loopback: Loopback) -> None:
    link = loopback.router.component(NEST_SYSID, AUTOPILOT_COMPID, "autopilot")  # never heard
    with pytest.raises(LinkLost):
        await set_param(link, "MPC_XY_CRUISE", 6.0)
    assert _param_sets(loopback) == []


@pytest.mark.parametrize("name", ["", "A_NAME_OF_17_CHAR"])
async def test_names_past_mavlinks_16_bytes_are_refused(loopback: Loopback, name: str) -> None:
    link = await _autopilot(loopback)
    with pytest.raises(ValueError, match="1 to 16"):
        await set_param(link, name, 1.0)
    assert _param_sets(loopback) == []
