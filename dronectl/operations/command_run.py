"""One command's course, shared by the runner (``commands``) and its handlers (``flight_commands``,
``fleet_commands``).

- :class:`Run`: a command's audit records and its updates, in that order (refused, accepted,
  in progress, succeeded, failed, cancelled);
- :class:`Refusal`, raised by a check that refuses a command before anything is sent, and the
  checks the handlers share (:func:`require_link`, :func:`require_airborne`);
- :class:`Following`: the flight command followed at each nest (a newer one supersedes it) and
  the acceptance of a command to a nest (:meth:`Following.start`);
- :func:`wait`: until a nest reaches a state, the command is superseded, or time runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from dronectl.audit import AuditError, CommandOutcome, CommandRecord, DuplicateCommandError, OutcomeRecord
from dronectl.domain import nest_state as ns
from dronectl.domain.control_authority import Change
from dronectl.domain.errors import CommandFailed, CommandRefused, CommandTimeout, DronectlError, LinkLost
from dronectl.domain.safety import Blocker, BlockerCode
from dronectl.nest.controller import NestController
from dronectl.operations.models import ErrorCode, Method, ProgressState
from dronectl.operations.port import Command, CommandUpdate, Operations

log = structlog.get_logger("dronectl.operations.commands")


class RunnerOwner(Operations, Protocol):
    """What the command runner needs of the port that owns it (``FleetOperations``)."""

    def wall(self) -> float: ...

    def announce_control(self, change: Change) -> None: ...

    def flight_started(self, flight_id: str, at_unix_s: float) -> None: ...

    def refusal_event(self, command: Command, message: str, code: str, reasons: Sequence[str]) -> None: ...


FLIGHT_TIMEOUT_S = 3600.0  # longest a launch, goto or return is followed (simulated seconds)

# commands to the drone: refused while someone else holds manual control of the nest
CONTROLLED = frozenset(
    {
        Method.LAUNCH,
        Method.GOTO,
        Method.ORBIT,
        Method.HOLD,
        Method.RETURN_HOME,
        Method.LAND,
        Method.ABORT,
        Method.SPEAKER_SAY,
        Method.SPEAKER_STOP,
        Method.LIGHT_SET,
    }
)
# commands that change the flight: a newer one supersedes the one being followed
FLIGHT = frozenset(
    {Method.LAUNCH, Method.GOTO, Method.ORBIT, Method.HOLD, Method.RETURN_HOME, Method.LAND, Method.ABORT}
)

Emit = Callable[[CommandUpdate], None]


def error_code(exc: BaseException) -> ErrorCode:
    if isinstance(exc, LinkLost):
        return ErrorCode.LINK_LOST
    if isinstance(exc, CommandTimeout):
        return ErrorCode.TIMEOUT
    if isinstance(exc, CommandRefused):
        return _refusal_code(exc.blockers)
    if isinstance(exc, CommandFailed | DronectlError):
        return ErrorCode.FAILED
    return ErrorCode.INTERNAL


def _refusal_code(blockers: Sequence[Blocker]) -> ErrorCode:
    codes = {b.code for b in blockers}
    if BlockerCode.LINK_LOST in codes:
        return ErrorCode.LINK_LOST
    if codes <= {BlockerCode.NEST_BUSY}:
        return ErrorCode.BUSY
    return ErrorCode.REFUSED


class Refusal(Exception):
    """Raised by a check: the command is refused, nothing was sent."""

    def __init__(self, code: ErrorCode, message: str, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reasons = tuple(reasons)

    @classmethod
    def of(cls, action: str, blockers: Sequence[Blocker]) -> Refusal:
        return cls(_refusal_code(blockers), f"{action} refused", [b.message for b in blockers])


@dataclass
class Run:
    """One command's course: its audit records and its updates, in that order."""

    command: Command
    emit: Emit
    owner: RunnerOwner
    accepted: bool = False
    done: bool = False
    superseded: asyncio.Event = field(default_factory=asyncio.Event)
    superseded_by: str = ""

    def _record(self, outcome: CommandOutcome, code: ErrorCode | None, message: str) -> CommandRecord:
        c = self.command
        return CommandRecord(
            command_id=c.id,
            at_unix_s=self.owner.wall(),
            actor_id=c.actor_id,
            actor_role=c.actor_role.value,
            nest_id=c.nest_id,
            method=c.method.value,
            args=c.args.model_dump(mode="json"),
            outcome=outcome,
            code=code.value if code is not None else None,
            message=message or None,
            channel=c.channel.value,
        )

    async def refuse(self, code: ErrorCode, message: str, reasons: Sequence[str] = ()) -> None:
        text = message + (": " + "; ".join(reasons) if reasons else "")
        try:
            await self.owner.fleet.audit.record_command(self._record(CommandOutcome.REFUSED, code, text))
        except DuplicateCommandError as exc:
            first = exc.first_outcome["outcome"]
            message, code = f"command id already used ({first}); not executed", ErrorCode.MALFORMED
        except AuditError as exc:
            log.error("api.audit_failed", id=self.command.id, error=str(exc))
        self.done = True
        if code in (ErrorCode.REFUSED, ErrorCode.BUSY, ErrorCode.LINK_LOST):
            self.owner.refusal_event(self.command, message, code.value, reasons)
        self.emit(CommandUpdate(ProgressState.FAILED, message, code, tuple(reasons)))

    async def accept(self, message: str = "") -> bool:
        try:
            await self.owner.fleet.audit.record_command(
                self._record(CommandOutcome.ACCEPTED, None, message or "accepted")
            )
        except DuplicateCommandError as exc:
            self.done = True
            first = exc.first_outcome["outcome"]
            self.emit(
                CommandUpdate(
                    ProgressState.FAILED,
                    f"command id already used ({first}); not executed",
                    ErrorCode.MALFORMED,
                )
            )
            return False
        except AuditError as exc:
            log.error("api.audit_failed", id=self.command.id, error=str(exc))
            self.done = True
            self.emit(
                CommandUpdate(
                    ProgressState.FAILED,
                    f"the audit store cannot record commands ({exc}); not executed",
                    ErrorCode.UNAVAILABLE,
                )
            )
            return False
        self.accepted = True
        self.emit(CommandUpdate(ProgressState.ACCEPTED, message))
        return True

    async def _outcome(self, outcome: CommandOutcome, code: ErrorCode | None, message: str) -> None:
        try:
            await self.owner.fleet.audit.record_outcome(
                OutcomeRecord(
                    self.command.id, self.owner.wall(), outcome, code.value if code else None, message
                )
            )
        except AuditError as exc:
            log.error("api.audit_failed", id=self.command.id, outcome=outcome.value, error=str(exc))

    async def step(self, message: str) -> None:
        if self.done:
            return
        await self._outcome(CommandOutcome.IN_PROGRESS, None, message)
        self.emit(CommandUpdate(ProgressState.IN_PROGRESS, message))

    async def succeed(self, message: str, result: dict[str, Any] | None = None) -> None:
        await self._finish(ProgressState.SUCCEEDED, None, message, (), result)

    async def fail(self, code: ErrorCode, message: str, reasons: Sequence[str] = ()) -> None:
        await self._finish(ProgressState.FAILED, code, message, reasons)

    async def cancel(self, message: str) -> None:
        await self._finish(ProgressState.CANCELLED, ErrorCode.FAILED, message)

    async def fail_with(self, exc: BaseException) -> None:
        reasons = exc.reasons if isinstance(exc, CommandRefused) else ()
        await self.fail(error_code(exc), str(exc), reasons)

    async def attempt(self, action: Awaitable[object]) -> bool:
        """Await ``action``; when the service says no (DronectlError), fail the command with it."""
        try:
            await action
        except DronectlError as exc:
            await self.fail_with(exc)
            return False
        return True

    async def _finish(
        self,
        state: ProgressState,
        code: ErrorCode | None,
        message: str,
        reasons: Sequence[str] = (),
        result: dict[str, Any] | None = None,
    ) -> None:
        if self.done:
            return
        self.done = True
        text = message + (": " + "; ".join(reasons) if reasons else "")
        await self._outcome(CommandOutcome(state.value), code, text)
        self.emit(CommandUpdate(state, message, code, tuple(reasons), result))


def require_link(controller: NestController, action: str) -> None:
    if not controller.drone.link_up:
        raise Refusal(
            ErrorCode.LINK_LOST, f"{action}: nest {controller.nest_id} drone link lost; nothing was sent"
        )


def require_airborne(controller: NestController, action: str) -> None:
    phase = controller.state.phase
    if not controller.state.flying or phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING):
        raise Refusal(ErrorCode.REFUSED, f"{action} refused", [f"drone is {phase.value}"])
    if controller.drone_position() is None:
        raise Refusal(ErrorCode.REFUSED, f"{action} refused", ["drone position not known"])


class Following:
    """The flight command being followed at each nest; a newer flight command supersedes it."""

    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}  # nest -> the flight command being followed

    def supersede(self, run: Run, nest_id: int) -> None:
        previous = self._runs.get(nest_id)
        if previous is not None and previous is not run:
            previous.superseded_by = f"{run.command.method.value} {run.command.id}"
            previous.superseded.set()
        self._runs[nest_id] = run

    def forget(self, run: Run) -> None:
        """The command's course is over: no longer followed at its nest."""
        nest_id = run.command.nest_id
        if nest_id is not None and self._runs.get(nest_id) is run:
            del self._runs[nest_id]

    async def start(self, run: Run, controller: NestController, message: str = "") -> bool:
        """Record and announce acceptance; the caller sends the command right after."""
        if not await run.accept(message):
            return False
        run.owner.authority.touch(controller.nest_id, run.command.actor_id, run.owner.wall())
        if run.command.method in FLIGHT:
            self.supersede(run, controller.nest_id)
        return True


Wake = Literal["ok", "superseded", "op_done", "timeout"]


async def wait(
    c: NestController,
    predicate: Callable[[], bool],
    run: Run,
    op: asyncio.Task[None] | None,
    timeout_s: float,
) -> Wake:
    """Until ``predicate`` holds (checked on each change of the nest), the command is
    superseded, ``op`` ends, or ``timeout_s`` passes."""
    if run.superseded.is_set():
        return "superseded"
    if predicate():
        return "ok"
    loop = asyncio.get_running_loop()
    waiter = loop.create_task(c.wait_for(predicate, timeout_s, "progress"), name="api.wait")
    superseded = loop.create_task(run.superseded.wait(), name="api.superseded")
    watched: set[asyncio.Future[Any]] = {waiter, superseded}
    if op is not None:
        watched.add(op)
    try:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, superseded):
            task.cancel()
        await asyncio.gather(waiter, superseded, return_exceptions=True)
    if superseded in done:
        return "superseded"
    if waiter in done and not waiter.cancelled():
        return "ok" if waiter.exception() is None else "timeout"
    return "op_done"
