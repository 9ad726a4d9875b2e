"""Commands from the API, carried out on the nest controllers, every step recorded in the audit store.

One :class:`CommandRunner` per service. :meth:`CommandRunner.run` takes one validated command and
an ``emit`` callback for its updates:

1. checks that refuse it before anything is sent (expired, manual control held by someone else,
   link lost, the controller's safety checks with every reason, nest busy); a refusal is recorded
   (``record_command`` with outcome ``refused``) and then answered;
2. otherwise records it as accepted, says so, and starts the operation at once;
3. follows the operation to its end: ``in_progress`` on each phase change, then ``succeeded``
   (a launch or a goto: on station; return home: landed in the dock; land: on the ground;
   hold, orbit, payload: acknowledged by the vehicle), ``failed`` (with ``link_lost``, ``timeout``,
   ``refused`` or ``failed``) or ``cancelled`` (superseded by a later command). Each outcome is
   recorded (``record_outcome``) before it is emitted.

A newer flight command to a nest supersedes the one being followed there.

Here the runner itself: the checks every command passes and the dispatch of its method. A
command's course (records, updates, supersession, waiting) is in ``command_run``; the handlers
are in ``flight_commands`` (launch, goto, orbit, hold, return, land, abort) and
``fleet_commands`` (payload, manual control, maintenance, return all, incidents, patrols).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from dronectl.nest.controller import NestController
from dronectl.operations.command_run import CONTROLLED, FLIGHT, Emit, Following, Refusal, Run, RunnerOwner
from dronectl.operations.fleet_commands import FleetCommands
from dronectl.operations.flight_commands import FlightCommands
from dronectl.operations.models import ErrorCode, Method
from dronectl.operations.port import Command

log = structlog.get_logger("dronectl.operations.commands")


class CommandRunner:
    def __init__(self, owner: RunnerOwner) -> None:
        self.owner = owner
        self._following = Following()
        self._flight = FlightCommands(owner, self._following)
        self._fleet = FleetCommands(owner, self._following)

    async def run(self, command: Command, emit: Emit) -> None:
        run = Run(command, emit, self.owner)
        try:
            try:
                await self._perform(run)
            except Refusal as refusal:
                await run.refuse(refusal.code, refusal.message, refusal.reasons)
        except asyncio.CancelledError:
            if run.accepted:
                with contextlib.suppress(asyncio.CancelledError):
                    await run.cancel("the service stopped following this command")
            raise
        except Exception as exc:  # a bug must be answered and recorded, not leave the command hanging
            log.exception("api.command_crashed", id=command.id, method=command.method.value)
            if not run.accepted and not run.done:
                await run.refuse(ErrorCode.INTERNAL, f"internal error: {exc!r}; nothing was sent")
            else:
                await run.fail(ErrorCode.INTERNAL, f"internal error: {exc!r}")
        finally:
            self._following.forget(run)

    # --- checks ---------------------------------------------------------------------------

    def _check_common(self, run: Run) -> NestController | None:
        command = run.command
        now = self.owner.wall()
        if now > command.deadline_unix_s:
            late_s = now - command.deadline_unix_s
            raise Refusal(
                ErrorCode.EXPIRED, f"expired {late_s:.1f} s ago before it could start; not executed"
            )
        if command.nest_id is None:
            return None
        try:
            controller = self.owner.fleet.nest(command.nest_id)
        except KeyError as exc:
            raise Refusal(ErrorCode.UNKNOWN_NEST, str(exc)) from None
        if command.method in CONTROLLED:
            verdict = self.owner.authority.check(command.nest_id, command.actor_id, now)
            if verdict.refusal is not None:
                raise Refusal(ErrorCode.BUSY, verdict.refusal, [verdict.refusal])
        return controller

    # --- the methods ----------------------------------------------------------------------

    async def _perform(self, run: Run) -> None:
        command = run.command
        controller = self._check_common(run)
        method = command.method
        if method is Method.RETURN_ALL:
            await self._fleet.return_all(run)
            return
        if method is Method.INCIDENT_CONFIRM:
            await self._fleet.incident_confirm(run)
            return
        if method in (Method.PATROL_START, Method.PATROL_STOP, Method.PATROL_LIST):
            await self._fleet.patrol(run)
            return
        assert controller is not None and command.nest_id is not None
        if method in FLIGHT:
            handler = {
                Method.LAUNCH: self._flight.launch,
                Method.GOTO: self._flight.goto,
                Method.ORBIT: self._flight.orbit,
                Method.HOLD: self._flight.hold,
                Method.RETURN_HOME: self._flight.return_home,
                Method.LAND: self._flight.land,
                Method.ABORT: self._flight.abort,
            }[method]
            await handler(run, controller)
        elif method in (Method.SPEAKER_SAY, Method.SPEAKER_STOP, Method.LIGHT_SET):
            await self._fleet.payload(run, controller)
        elif method in (Method.CONTROL_TAKE, Method.CONTROL_RELEASE):
            await self._fleet.control(run, controller)
        elif method is Method.MAINTENANCE_SET:
            await self._fleet.maintenance(run, controller)
        else:  # pragma: no cover - every method is mapped above
            raise Refusal(ErrorCode.UNKNOWN_METHOD, f"{method.value} is not handled")
