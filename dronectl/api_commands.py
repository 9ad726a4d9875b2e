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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from adapters.protocols import LightPattern
from dronectl import nest_state as ns
from dronectl.api.controller import Command, CommandUpdate
from dronectl.api.models import (
    AbortArgs,
    ErrorCode,
    GotoArgs,
    IncidentConfirmArgs,
    LaunchArgs,
    LightSetArgs,
    MaintenanceSetArgs,
    Method,
    OrbitArgs,
    PatrolListArgs,
    PatrolStartArgs,
    PatrolStopArgs,
    ProgressState,
    ReturnAllArgs,
    SpeakerSayArgs,
)
from dronectl.audit import AuditError, CommandOutcome, CommandRecord, DuplicateCommandError, OutcomeRecord
from dronectl.errors import CommandFailed, CommandRefused, CommandTimeout, DronectlError, LinkLost
from dronectl.geo import GeoPoint
from dronectl.nest_controller import NestController
from dronectl.patrols.missions import MissionKind
from dronectl.patrols.service import PatrolError
from dronectl.patrols.store import mission_data
from dronectl.safety import Blocker, BlockerCode, GotoRequest, OrbitRequest

if TYPE_CHECKING:
    from dronectl.api_controller import FleetApiController

log = structlog.get_logger("dronectl.api_commands")

FLIGHT_TIMEOUT_S = 3600.0  # longest a launch, goto or return is followed (simulated seconds)
ORBIT_DEFAULT_SPEED_MPS = 5.0

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
_DOCKED_OR_DOWN = ns.DOCKED | {ns.NestPhase.POST_FLIGHT}

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
class _Run:
    """One command's course: its audit records and its updates, in that order."""

    command: Command
    emit: Emit
    owner: FleetApiController
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


Wake = Literal["ok", "superseded", "op_done", "timeout"]


def _phase_left(c: NestController, phase: ns.NestPhase) -> Callable[[], bool]:
    return lambda: c.state.phase is not phase


class CommandRunner:
    def __init__(self, owner: FleetApiController) -> None:
        self.owner = owner
        self._following: dict[int, _Run] = {}  # nest -> the flight command being followed

    async def run(self, command: Command, emit: Emit) -> None:
        run = _Run(command, emit, self.owner)
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
            if command.nest_id is not None and self._following.get(command.nest_id) is run:
                del self._following[command.nest_id]

    # --- checks ---------------------------------------------------------------------------

    def _check_common(self, run: _Run) -> NestController | None:
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

    @staticmethod
    def _require_link(controller: NestController, action: str) -> None:
        if not controller.drone.link_up:
            raise Refusal(
                ErrorCode.LINK_LOST, f"{action}: nest {controller.nest_id} drone link lost; nothing was sent"
            )

    @staticmethod
    def _require_airborne(controller: NestController, action: str) -> None:
        phase = controller.state.phase
        if not controller.state.flying or phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING):
            raise Refusal(ErrorCode.REFUSED, f"{action} refused", [f"drone is {phase.value}"])
        if controller.drone_position() is None:
            raise Refusal(ErrorCode.REFUSED, f"{action} refused", ["drone position not known"])

    def _supersede(self, run: _Run, nest_id: int) -> None:
        previous = self._following.get(nest_id)
        if previous is not None and previous is not run:
            previous.superseded_by = f"{run.command.method.value} {run.command.id}"
            previous.superseded.set()
        self._following[nest_id] = run

    # --- the methods ----------------------------------------------------------------------

    async def _perform(self, run: _Run) -> None:
        command = run.command
        controller = self._check_common(run)
        method = command.method
        if method is Method.RETURN_ALL:
            await self._return_all(run)
            return
        if method is Method.INCIDENT_CONFIRM:
            await self._incident_confirm(run)
            return
        if method in (Method.PATROL_START, Method.PATROL_STOP, Method.PATROL_LIST):
            await self._patrol(run)
            return
        assert controller is not None and command.nest_id is not None
        if method in FLIGHT:
            handler = {
                Method.LAUNCH: self._launch,
                Method.GOTO: self._goto,
                Method.ORBIT: self._orbit,
                Method.HOLD: self._hold,
                Method.RETURN_HOME: self._return_home,
                Method.LAND: self._land,
                Method.ABORT: self._abort,
            }[method]
            await handler(run, controller)
        elif method in (Method.SPEAKER_SAY, Method.SPEAKER_STOP, Method.LIGHT_SET):
            await self._payload(run, controller)
        elif method in (Method.CONTROL_TAKE, Method.CONTROL_RELEASE):
            await self._control(run, controller)
        elif method is Method.MAINTENANCE_SET:
            await self._maintenance(run, controller)
        else:  # pragma: no cover - every method is mapped above
            raise Refusal(ErrorCode.UNKNOWN_METHOD, f"{method.value} is not handled")

    async def _start(self, run: _Run, controller: NestController, message: str = "") -> bool:
        """Record and announce acceptance; the caller sends the command right after."""
        if not await run.accept(message):
            return False
        self.owner.authority.touch(controller.nest_id, run.command.actor_id, self.owner.wall())
        if run.command.method in FLIGHT:
            self._supersede(run, controller.nest_id)
        return True

    async def _launch(self, run: _Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, LaunchArgs)
        target = GeoPoint(args.target.lat, args.target.lon)
        blockers = c.blockers_for_launch(target, args.target.alt_m)
        if blockers:
            raise Refusal.of("launch", blockers)
        if not await self._start(run, c, "preflight checks passed"):
            return
        try:
            op = await c.launch(
                target, args.target.alt_m, command_id=run.command.id, speed_mps=args.speed_mps
            )
        except DronectlError as exc:
            await run.fail_with(exc)
            return
        if c.flight is not None:
            self.owner.flight_started(c.flight.flight_id, self.owner.wall())
        await self._follow_to_station(run, c, op, "launch")

    async def _goto(self, run: _Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, GotoArgs)
        self._require_link(c, "go to")
        self._require_airborne(c, "go to")
        drone = c.drone_position()
        assert drone is not None
        target = GeoPoint(args.target.lat, args.target.lon)
        blockers = c.policy.check_goto(
            c.snapshot(), drone, GotoRequest(target, args.target.alt_m), c.fleet.others(c.nest_id)
        )
        if blockers:
            raise Refusal.of("go to", blockers)
        if not await self._start(run, c):
            return
        try:
            op = await c.goto(target, args.target.alt_m, speed_mps=args.speed_mps)
        except DronectlError as exc:
            await run.fail_with(exc)
            return
        await self._follow_to_station(run, c, op, "go to")

    async def _follow_to_station(
        self, run: _Run, c: NestController, op: asyncio.Task[None], action: str
    ) -> None:
        last = c.state.phase
        await run.step(f"{last.value}")
        while not op.done():
            wake = await self._wait(c, _phase_left(c, last), run, op, FLIGHT_TIMEOUT_S)
            if wake == "superseded":
                await run.cancel(f"{action} superseded by {run.superseded_by}")
                return
            if wake == "timeout":
                await run.fail(ErrorCode.TIMEOUT, f"{action}: not on station after {FLIGHT_TIMEOUT_S:g} s")
                return
            if c.state.phase is not last:
                last = c.state.phase
                await run.step(last.value)
        if op.cancelled():
            by = f"superseded by {run.superseded_by}" if run.superseded_by else "superseded"
            await run.cancel(f"{action} cancelled ({by}; nest {c.state.phase.value})")
            return
        exc = op.exception()
        if exc is not None:
            await run.fail_with(exc)
            return
        if c.state.phase is ns.NestPhase.ON_STATION:
            pos = c.drone.position
            result: dict[str, Any] = {"flight_id": c.flight.flight_id if c.flight else None}
            if pos is not None:
                result["position"] = {
                    "lat": pos.lat_deg,
                    "lon": pos.lon_deg,
                    "alt_m": round(pos.alt_rel_m, 1),
                }
            await run.succeed("on station", result)
        else:
            await run.fail(
                ErrorCode.FAILED, f"{action}: the flight ended before station ({c.state.phase.value})"
            )

    async def _orbit(self, run: _Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, OrbitArgs)
        self._require_link(c, "orbit")
        self._require_airborne(c, "orbit")
        drone = c.drone_position()
        assert drone is not None
        centre = GeoPoint(args.center.lat, args.center.lon)
        blockers = c.policy.check_orbit(
            c.snapshot(),
            drone,
            OrbitRequest(centre, args.radius_m, args.center.alt_m),
            c.fleet.others(c.nest_id),
        )
        if blockers:
            raise Refusal.of("orbit", blockers)
        note = "" if args.clockwise else "counter-clockwise not supported yet: the orbit is flown clockwise"
        if not await self._start(run, c, note):
            return
        if not await run.attempt(
            c.orbit(centre, args.radius_m, args.center.alt_m, args.speed_mps or ORBIT_DEFAULT_SPEED_MPS)
        ):
            return
        await run.succeed(f"orbiting {centre} at {args.radius_m:g} m")

    async def _hold(self, run: _Run, c: NestController) -> None:
        self._require_link(c, "hold")
        self._require_airborne(c, "hold")
        if not await self._start(run, c):
            return
        if not await run.attempt(c.hold()):
            return
        await run.succeed("holding position")

    async def _return_home(self, run: _Run, c: NestController) -> None:
        if not c.state.flying:
            raise Refusal(ErrorCode.REFUSED, "return refused", [f"drone is {c.state.phase.value}"])
        self._require_link(c, "return")
        if not await self._start(run, c):
            return
        if not await run.attempt(c.return_home(f"{run.command.actor_id}: return home")):
            return
        await self._follow_home(run, c, "return")

    async def _follow_home(self, run: _Run, c: NestController, action: str) -> None:
        """Until the drone is down: succeeded in its dock, failed elsewhere."""
        last = c.state.phase
        await run.step(last.value)
        while c.state.flying:
            wake = await self._wait(c, _phase_left(c, last), run, None, FLIGHT_TIMEOUT_S)
            if wake == "superseded":
                await run.cancel(f"{action} superseded by {run.superseded_by}")
                return
            if wake == "timeout":
                await run.fail(ErrorCode.TIMEOUT, f"{action}: not down after {FLIGHT_TIMEOUT_S:g} s")
                return
            last = c.state.phase
            if c.state.flying:
                await run.step(last.value)
        if c.state.phase in _DOCKED_OR_DOWN:
            await run.succeed("landed in the dock", {"phase": c.state.phase.value})
        else:
            await run.fail(
                ErrorCode.FAILED, f"{action}: the drone came down outside its dock ({c.state.phase.value})"
            )

    async def _land(self, run: _Run, c: NestController) -> None:
        self._require_link(c, "land")
        self._require_airborne(c, "land")
        if not await self._start(run, c):
            return
        if not await run.attempt(c.land()):
            return
        await run.step("landing")
        while not (c.drone.armed is False and not c.drone_in_air()):
            wake = await self._wait(
                c, lambda: c.drone.armed is False and not c.drone_in_air(), run, None, FLIGHT_TIMEOUT_S
            )
            if wake == "superseded":
                await run.cancel(f"land superseded by {run.superseded_by}")
                return
            if wake == "timeout":
                await run.fail(ErrorCode.TIMEOUT, "land: still not down")
                return
        status = c.dock.status
        in_dock = status is not None and status.drone_in_dock
        await run.succeed(
            "landed" + (" in the dock" if in_dock else " outside the dock"), {"in_dock": in_dock}
        )

    async def _abort(self, run: _Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, AbortArgs)
        if not c.state.flying:
            raise Refusal(ErrorCode.REFUSED, "abort refused", [f"nothing to abort ({c.state.phase.value})"])
        on_ground = c.state.phase in (ns.NestPhase.PREFLIGHT, ns.NestPhase.LAUNCHING) and not c.drone_in_air()
        if not await self._start(run, c):
            return
        if not await run.attempt(c.abort(args.reason or f"abort by {run.command.actor_id}")):
            return
        if on_ground:
            await run.succeed(f"launch stopped on the ground ({c.state.phase.value})")
        else:
            await self._follow_home(run, c, "abort")

    async def _payload(self, run: _Run, c: NestController) -> None:
        args = run.command.args
        self._require_link(c, run.command.method.value)
        if not await self._start(run, c):
            return
        try:
            if isinstance(args, SpeakerSayArgs):
                await c.say(args.text, lang=args.lang)
                message = "speaking"
            elif isinstance(args, LightSetArgs):
                await c.set_light(LightPattern(args.mode))
                message = f"light {args.mode}"
            else:
                await c.stop_speaker()
                message = "speaker stopped"
        except DronectlError as exc:
            await run.fail_with(exc)
            return
        await run.succeed(message)

    async def _control(self, run: _Run, c: NestController) -> None:
        command = run.command
        authority = self.owner.authority
        now = self.owner.wall()
        role = command.actor_role.value
        before = authority.holder(c.nest_id, now)
        if command.method is Method.CONTROL_TAKE:
            verdict = authority.take(c.nest_id, command.actor_id, role, now)
        else:
            verdict = authority.release(c.nest_id, command.actor_id, role, now)
        if verdict.refusal is not None:
            raise Refusal(ErrorCode.BUSY, verdict.refusal, [verdict.refusal])
        if not await run.accept():
            authority.restore(c.nest_id, before)  # not recorded, so not applied
            return
        if verdict.change is not None:
            self.owner.announce_control(verdict.change)
        holder = authority.holder(c.nest_id, now)
        result = {"holder": {"id": holder.actor_id, "role": holder.role} if holder else None}
        await run.succeed(verdict.change.describe() if verdict.change else "no change", result)

    async def _maintenance(self, run: _Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, MaintenanceSetArgs)
        t = ns.transition(c.state, ns.MaintenanceSet(args.on, args.reason))
        if not t.accepted:
            raise Refusal(ErrorCode.BUSY, "maintenance refused", [t.cause])
        if not await self._start(run, c):
            return
        if not await run.attempt(c.set_maintenance(args.on, args.reason or f"by {run.command.actor_id}")):
            return
        await run.succeed("maintenance on" if args.on else "maintenance off", {"phase": c.state.phase.value})

    async def _return_all(self, run: _Run) -> None:
        args = run.command.args
        assert isinstance(args, ReturnAllArgs)
        if not await run.accept():
            return
        flying = [c for c in self.owner.fleet.controllers.values() if c.state.flying]
        now = self.owner.wall()
        for c in flying:
            self._supersede(run, c.nest_id)
            held = self.owner.authority.holder(c.nest_id, now)
            if held is not None and held.actor_id != run.command.actor_id:
                log.info("api.return_all_overrides_control", nest=c.nest_id, holder=held.actor_id)
        result = await self.owner.fleet.return_all(args.reason or f"return all by {run.command.actor_id}")
        summary = {
            "returning": list(result.returning),
            "failed": [{"nest": n, "error": e} for n, e in result.failed],
        }
        await run.step(f"returning: {list(result.returning)}; failed: {[n for n, _ in result.failed]}")
        for nest_id in result.returning:
            c = self.owner.fleet.nest(nest_id)

            def down(c: NestController = c) -> bool:
                return not c.state.flying

            while c.state.flying:
                wake = await self._wait(c, down, run, None, FLIGHT_TIMEOUT_S)
                if wake == "timeout":
                    await run.fail(ErrorCode.TIMEOUT, f"nest {nest_id} not down after {FLIGHT_TIMEOUT_S:g} s")
                    return
                if wake == "superseded":
                    run.superseded.clear()  # a later command to one nest: follow the others
                    break
        if result.failed:
            await run.fail(
                ErrorCode.FAILED,
                f"{len(result.failed)} nest(s) could not be sent home",
                [f"nest {n}: {e}" for n, e in result.failed],
            )
        else:
            await run.succeed("every flying drone is down", summary)

    async def _incident_confirm(self, run: _Run) -> None:
        args = run.command.args
        assert isinstance(args, IncidentConfirmArgs)
        incidents = self.owner.incidents
        problem = incidents.check_confirm(args.incident_id, args.nest)
        if problem is not None:
            raise Refusal(ErrorCode.REFUSED, "incident.confirm refused", [problem])
        if not await run.accept():
            return
        option = incidents.confirm(args.incident_id, args.nest, run.command.actor_id)
        await run.succeed(
            f"incident {args.incident_id}: {option.describe()}",
            {"incident_id": args.incident_id, "nest_id": option.nest_id, "mode": option.mode.value},
        )

    async def _patrol(self, run: _Run) -> None:
        """patrol.start / patrol.stop / patrol.list, on the patrol service (``dronectl.patrols``)."""
        method, args = run.command.method, run.command.args
        patrols = self.owner.patrols
        if patrols is None:
            raise Refusal(
                ErrorCode.UNAVAILABLE, f"{method.value} refused", ["the patrol service is not running"]
            )
        if isinstance(args, PatrolListArgs):
            if not await run.accept():
                return
            listed = patrols.missions(active_only=args.active_only)
            lines = [f"{len(listed)} mission(s)", *(f"  {m.describe()}: {m.reason}" for m in listed)]
            await run.succeed("\n".join(lines), {"missions": [mission_data(m) for m in listed]})
            return
        if isinstance(args, PatrolStartArgs):
            kind = MissionKind(args.kind)
            problem = patrols.check_start(kind, args.stretch_id)
            if problem is not None:
                raise Refusal(ErrorCode.REFUSED, "patrol.start refused", [problem])
            if not await run.accept():
                return
            try:
                mission = await patrols.start(kind, args.stretch_id, actor_id=run.command.actor_id)
            except PatrolError as exc:
                await run.fail(ErrorCode.REFUSED, "patrol.start refused", [str(exc)])
                return
            await run.succeed(f"mission {mission.id} planned", {"mission": mission_data(mission)})
            return
        assert isinstance(args, PatrolStopArgs)
        problem = patrols.check_stop(args.mission_id)
        if problem is not None:
            raise Refusal(ErrorCode.REFUSED, "patrol.stop refused", [problem])
        if not await run.accept():
            return
        try:
            mission = patrols.stop(args.mission_id, by=run.command.actor_id)
        except PatrolError as exc:
            await run.fail(ErrorCode.REFUSED, "patrol.stop refused", [str(exc)])
            return
        await run.succeed(f"mission {mission.id} stopping", {"mission": mission_data(mission)})

    # --- waiting --------------------------------------------------------------------------

    @staticmethod
    async def _wait(
        c: NestController,
        predicate: Callable[[], bool],
        run: _Run,
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
