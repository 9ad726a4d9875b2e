"""The commands that are not flight: to one nest (speaker and light, manual control, maintenance)
and to the fleet (return all, incident.confirm, patrol.start / stop / list).

:class:`FleetCommands` checks each, records and announces its acceptance, and answers it; return
all follows every drone sent home until it is down.
"""

from __future__ import annotations

import structlog

from adapters.protocols import LightPattern
from dronectl.domain import nest_state as ns
from dronectl.domain.errors import DronectlError
from dronectl.domain.patrols.missions import MissionKind, mission_data
from dronectl.nest.controller import NestController
from dronectl.operations.command_run import (
    FLIGHT_TIMEOUT_S,
    Following,
    Refusal,
    Run,
    RunnerOwner,
    require_link,
    wait,
)
from dronectl.operations.models import (
    ErrorCode,
    IncidentConfirmArgs,
    LightSetArgs,
    MaintenanceSetArgs,
    Method,
    PatrolListArgs,
    PatrolStartArgs,
    PatrolStopArgs,
    ReturnAllArgs,
    SpeakerSayArgs,
)
from dronectl.operations.port import AutomationError

log = structlog.get_logger("dronectl.operations.commands")


class FleetCommands:
    def __init__(self, owner: RunnerOwner, following: Following) -> None:
        self.owner = owner
        self._following = following

    async def payload(self, run: Run, c: NestController) -> None:
        args = run.command.args
        require_link(c, run.command.method.value)
        if not await self._following.start(run, c):
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

    async def control(self, run: Run, c: NestController) -> None:
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

    async def maintenance(self, run: Run, c: NestController) -> None:
        args = run.command.args
        assert isinstance(args, MaintenanceSetArgs)
        t = ns.transition(c.state, ns.MaintenanceSet(args.on, args.reason))
        if not t.accepted:
            raise Refusal(ErrorCode.BUSY, "maintenance refused", [t.cause])
        if not await self._following.start(run, c):
            return
        if not await run.attempt(c.set_maintenance(args.on, args.reason or f"by {run.command.actor_id}")):
            return
        await run.succeed("maintenance on" if args.on else "maintenance off", {"phase": c.state.phase.value})

    async def return_all(self, run: Run) -> None:
        args = run.command.args
        assert isinstance(args, ReturnAllArgs)
        if not await run.accept():
            return
        flying = [c for c in self.owner.fleet.controllers.values() if c.state.flying]
        now = self.owner.wall()
        for c in flying:
            self._following.supersede(run, c.nest_id)
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
                wake = await wait(c, down, run, None, FLIGHT_TIMEOUT_S)
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

    async def incident_confirm(self, run: Run) -> None:
        args = run.command.args
        assert isinstance(args, IncidentConfirmArgs)
        incidents = self.owner.incidents
        if incidents is None:
            raise Refusal(
                ErrorCode.UNAVAILABLE, "incident.confirm refused", ["incident dispatch is not running"]
            )
        problem = incidents.check_confirm(args.incident_id, args.nest)
        if problem is not None:
            raise Refusal(ErrorCode.REFUSED, "incident.confirm refused", [problem])
        if not await run.accept():
            return
        try:
            option = incidents.confirm(args.incident_id, args.nest, run.command.actor_id)
        except AutomationError as exc:
            await run.fail(ErrorCode.REFUSED, "incident.confirm refused", [str(exc)])
            return
        await run.succeed(
            f"incident {args.incident_id}: {option.describe()}",
            {"incident_id": args.incident_id, "nest_id": option.nest_id, "mode": option.mode.value},
        )

    async def patrol(self, run: Run) -> None:
        """patrol.start / patrol.stop / patrol.list, on the patrol service (``dronectl.domain.patrols``)."""
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
            except AutomationError as exc:
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
        except AutomationError as exc:
            await run.fail(ErrorCode.REFUSED, "patrol.stop refused", [str(exc)])
            return
        await run.succeed(f"mission {mission.id} stopping", {"mission": mission_data(mission)})
