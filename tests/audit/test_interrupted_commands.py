"""Commands a crash interrupted are closed at the next start (issue 19): each command left
accepted or in progress gets a final ``failed`` outcome with the code ``interrupted`` and the
reason; finished commands and open incidents (dispatch picks those up) are left as they are."""

from __future__ import annotations

from pathlib import Path

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord, OutcomeRecord
from dronectl.domain.clock import SystemClock
from dronectl.nest.service import INTERRUPTED, close_interrupted_commands


def command(command_id: str, method: str, outcome: CommandOutcome, at: float) -> CommandRecord:
    return CommandRecord(command_id, at, "pilot-1", "pilot", 3, method, {"x": 1}, outcome)


async def test_open_commands_are_closed_as_interrupted_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    async with await AuditStore.open(path) as audit:
        await audit.record_command(command("launch-1", "launch", CommandOutcome.ACCEPTED, 100.0))
        await audit.record_outcome(OutcomeRecord("launch-1", 101.0, CommandOutcome.IN_PROGRESS))
        await audit.record_command(command("goto-1", "goto", CommandOutcome.ACCEPTED, 102.0))
        await audit.record_command(command("hold-1", "hold", CommandOutcome.ACCEPTED, 103.0))
        await audit.record_outcome(OutcomeRecord("hold-1", 104.0, CommandOutcome.SUCCEEDED))
        await audit.record_command(command("refused-1", "launch", CommandOutcome.REFUSED, 105.0))
        await audit.record_command(command("inc-1", "incident", CommandOutcome.ACCEPTED, 106.0))

    # the next start
    async with await AuditStore.open(path) as audit:
        closed = await close_interrupted_commands(audit, SystemClock(), [3])
        assert closed == ["launch-1", "goto-1"]
        assert await audit.open_commands(3) == []
        launch = await audit.command("launch-1")
        assert launch is not None
        last = launch["outcomes"][-1]
        assert last["outcome"] == "failed" and last["code"] == INTERRUPTED
        assert last["message"] is not None and "in_progress" in last["message"]
        first = await audit.first_outcome("launch-1")  # a repeat of the id is still answered "accepted"
        assert first is not None and first["outcome"] == "accepted"
        hold = await audit.command("hold-1")
        assert hold is not None and [o["outcome"] for o in hold["outcomes"]] == ["accepted", "succeeded"]
        assert [c["command_id"] for c in await audit.open_incidents()] == ["inc-1"]
        assert await close_interrupted_commands(audit, SystemClock(), [3]) == []  # once
