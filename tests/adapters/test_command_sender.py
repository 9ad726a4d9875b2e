"""The command micro-service against a scripted fake component over loopback UDP."""

from __future__ import annotations

import asyncio

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import RetryPolicy
from adapters.mavlink.link import ComponentLink
from adapters.protocols import CommandResult
from tests.adapters.conftest import FAST, NEST_SYSID, Loopback
from tests.adapters.fake_peer import wait_until

DOCK = 25
CMD = mav.MAV_CMD_DRONECTL_DOCK_COVER


async def connected_link(lb: Loopback, policy: RetryPolicy = FAST) -> ComponentLink:
    link = lb.router.component(NEST_SYSID, DOCK, "dock", policy)
    lb.nest.start_heartbeats(DOCK)
    await link.watchdog.state.wait_for(lambda s: s.connected, 2.0)
    return link


async def test_accepted_at_first_attempt(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    loopback.nest.on_command = lambda cmd: loopback.nest.ack(cmd, mav.MAV_RESULT_ACCEPTED)
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.SUCCESS
    assert ack.attempts == 1
    sent = loopback.nest.of_type("COMMAND_LONG")
    assert len(sent) == 1
    assert (sent[0].target_system, sent[0].target_component, sent[0].param1) == (NEST_SYSID, DOCK, 1.0)
    assert (sent[0].get_srcSystem(), sent[0].get_srcComponent()) == (245, 26)


async def test_retries_count_up_the_confirmation_field(loopback: Loopback) -> None:
    link = await connected_link(loopback)

    def answer_third(cmd: object) -> None:
        if len(loopback.nest.of_type("COMMAND_LONG")) == 3:
            loopback.nest.ack(cmd, mav.MAV_RESULT_ACCEPTED)

    loopback.nest.on_command = answer_third
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.SUCCESS
    assert ack.attempts == 3
    assert [m.confirmation for m in loopback.nest.of_type("COMMAND_LONG")] == [0, 1, 2]


async def test_silence_times_out_after_every_attempt(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.TIMEOUT
    assert ack.attempts == FAST.attempts
    assert len(loopback.nest.of_type("COMMAND_LONG")) == FAST.attempts
    assert (
        FAST.attempts * FAST.ack_timeout_s * 0.9 <= ack.elapsed_s < FAST.attempts * FAST.ack_timeout_s + 0.5
    )


async def test_in_progress_stops_resending_and_waits_for_the_final_answer(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    loop = asyncio.get_running_loop()

    def slow(cmd: object) -> None:
        # progress every 0.3 s (longer than ack_timeout_s, shorter than progress_timeout_s), done at 1.2 s
        for i, t in enumerate((0.0, 0.3, 0.6, 0.9)):
            loop.call_later(t, loopback.nest.ack, cmd, mav.MAV_RESULT_IN_PROGRESS, 25 * i)
        loop.call_later(1.2, loopback.nest.ack, cmd, mav.MAV_RESULT_ACCEPTED, 100)

    loopback.nest.on_command = slow
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.SUCCESS
    assert ack.progress_pct == 100
    assert ack.elapsed_s >= 1.1
    assert len(loopback.nest.of_type("COMMAND_LONG")) == 1


async def test_progress_that_stops_is_asked_again_then_a_timeout(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    answered: list[object] = []

    def first_only(cmd: object) -> None:
        if not answered:
            answered.append(cmd)
            loopback.nest.ack(cmd, mav.MAV_RESULT_IN_PROGRESS, 10)

    loopback.nest.on_command = first_only
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.TIMEOUT
    assert ack.progress_pct == 10
    assert len(loopback.nest.of_type("COMMAND_LONG")) == 1 + FAST.attempts


async def test_lost_final_answer_is_recovered_by_asking_again(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    sent: list[object] = []

    def progress_then_done(cmd: object) -> None:
        sent.append(cmd)
        if len(sent) == 1:
            loopback.nest.ack(cmd, mav.MAV_RESULT_IN_PROGRESS, 50)  # its final ACCEPTED is "lost"
        else:
            loopback.nest.ack(cmd, mav.MAV_RESULT_ACCEPTED)  # already there: answers at once

    loopback.nest.on_command = progress_then_done
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.SUCCESS
    assert len(sent) == 2


async def test_refusal_carries_the_components_reason(loopback: Loopback) -> None:
    link = await connected_link(loopback)

    def refuse(cmd: object) -> None:
        loopback.nest.statustext(DOCK, "Dock cover not closing: drone in the way")
        loopback.nest.ack(cmd, mav.MAV_RESULT_DENIED)

    loopback.nest.on_command = refuse
    ack = await link.commands.command_long(CMD, (0.0,))
    assert ack.result is CommandResult.DENIED
    assert ack.text == "Dock cover not closing: drone in the way"


async def test_long_reasons_are_put_together_from_their_chunks(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    text = "Dock cover not closing: drone hovering over the pad (2.4 m up), clear the pad first"
    raw = text.encode()

    def refuse(cmd: object) -> None:
        for seq, start in enumerate(range(0, len(raw), 50)):
            chunk = raw[start : start + 50]
            loopback.nest.send(DOCK, mav.MAVLink_statustext_message(mav.MAV_SEVERITY_WARNING, chunk, 42, seq))
        loopback.nest.ack(cmd, mav.MAV_RESULT_DENIED)

    loopback.nest.on_command = refuse
    ack = await link.commands.command_long(CMD, (0.0,))
    assert ack.result is CommandResult.DENIED
    assert ack.text == text


async def test_reason_sent_after_the_ack_is_awaited_when_asked(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    loop = asyncio.get_running_loop()

    def refuse_then_explain(cmd: object) -> None:  # as PX4 does, 1.5 s later in real life
        loopback.nest.ack(cmd, mav.MAV_RESULT_TEMPORARILY_REJECTED)
        loop.call_later(0.2, loopback.nest.statustext, DOCK, "Arming denied: heading estimate not stable")

    loopback.nest.on_command = refuse_then_explain
    policy = RetryPolicy(ack_timeout_s=0.2, attempts=2, reason_wait_s=1.0)
    ack = await link.commands.command_long(mav.MAV_CMD_COMPONENT_ARM_DISARM, (1.0,), policy)
    assert ack.result is CommandResult.TEMPORARILY_REJECTED
    assert ack.result.retryable
    assert ack.text == "Arming denied: heading estimate not stable"


async def test_answers_for_someone_else_are_ignored(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    nest = loopback.nest

    def confuse(cmd: object) -> None:
        ack = mav.MAVLink_command_ack_message
        nest.send(DOCK, ack(CMD, mav.MAV_RESULT_DENIED, 0, 0, 245, 190))  # MAVSDK's, beside us
        nest.send(DOCK, ack(CMD, mav.MAV_RESULT_DENIED, 0, 0, 255, 190))  # another station
        nest.send(DOCK, ack(CMD + 1, mav.MAV_RESULT_DENIED, 0, 0, 245, 26))  # another command
        nest.send(99, ack(CMD, mav.MAV_RESULT_DENIED, 0, 0, 245, 26))  # another component
        nest.ack(cmd, mav.MAV_RESULT_ACCEPTED)

    nest.on_command = confuse
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.SUCCESS


async def test_same_command_twice_at_once_is_busy(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    loop = asyncio.get_running_loop()

    def answer_later(cmd: object) -> None:
        loop.call_later(0.3, loopback.nest.ack, cmd, mav.MAV_RESULT_ACCEPTED)

    loopback.nest.on_command = answer_later
    first = asyncio.create_task(link.commands.command_long(CMD, (1.0,)))
    await wait_until(lambda: len(loopback.nest.of_type("COMMAND_LONG")) == 1, what="first command sent")
    second = await link.commands.command_long(CMD, (1.0,))
    assert second.result is CommandResult.BUSY
    assert (await first).result is CommandResult.SUCCESS


async def test_command_int_carries_frame_and_coordinates(loopback: Loopback) -> None:
    link = await connected_link(loopback)
    loopback.nest.on_command = lambda cmd: loopback.nest.ack(cmd, mav.MAV_RESULT_ACCEPTED)
    ack = await link.commands.command_int(
        mav.MAV_CMD_DO_REPOSITION,
        frame=mav.MAV_FRAME_GLOBAL_INT,
        params=(-1.0, 1.0, 0.0, float("nan")),
        x=438859000,
        y=1253245000,
        z=265.0,
    )
    assert ack.result is CommandResult.SUCCESS
    sent = loopback.nest.of_type("COMMAND_INT")[0]
    assert (sent.frame, sent.x, sent.y, sent.z) == (mav.MAV_FRAME_GLOBAL_INT, 438859000, 1253245000, 265.0)


async def test_unheard_component_fails_at_once(loopback: Loopback) -> None:
    link = loopback.router.component(NEST_SYSID, DOCK, "dock", FAST)
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.NO_SYSTEM
    assert ack.attempts == 0
    assert loopback.nest.of_type("COMMAND_LONG") == []


async def test_link_lost_while_waiting_ends_the_command_early(loopback: Loopback) -> None:
    slow = RetryPolicy(ack_timeout_s=5.0, attempts=3)
    link = await connected_link(loopback, slow)
    loopback.nest.on_command = lambda cmd: loopback.nest.stop_heartbeats(DOCK)
    ack = await link.commands.command_long(CMD, (1.0,))
    assert ack.result is CommandResult.LINK_LOST
    assert ack.elapsed_s < 1.5  # the watchdog's 0.6 s, not the 15 s of retries
    again = await link.commands.command_long(CMD, (1.0,))
    assert again.result is CommandResult.LINK_LOST
    assert again.attempts == 0
