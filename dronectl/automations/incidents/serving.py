"""Serving one incident: the drone sent, followed to the scene, and the scene watched until it leaves.

:class:`IncidentServing` runs each incident in a task of its own: queued and proposed incidents
wait for a nest, or a commander's go; the launch (or the retask of an airborne drone from less
urgent work), then the orbit over the scene, are commands like any other (``Operations.execute``)
with the actor ``dispatcher`` in the role ``automation``. On scene at an accident in freezing
weather (or at a reported patch of black ice), the lookout watches the drone's video for ice;
the first finding gets a response and a ``finding`` milestone. An attempt that fails (the nest
at fault, or its drone taken by a more urgent incident) is planned again, up to ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any

import structlog

from adapters.protocols import DockWeather
from dronectl.automations.incidents.planning import IncidentBoard
from dronectl.automations.incidents.progress import IncidentTasks, Progress, ServedIncident
from dronectl.domain import nest_state as ns
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.control_authority import AUTOMATION
from dronectl.domain.dispatch import Action, DispatchSettings, Milestone, Mode
from dronectl.domain.dispatch.estimate import cruise_model
from dronectl.domain.errors import DronectlError
from dronectl.domain.geo import distance_m
from dronectl.domain.patrols.triggers import ice_risk, road_weather
from dronectl.nest.controller import ARRIVAL_RADIUS_M, NestController
from dronectl.operations.models import (
    TERMINAL_STATES,
    GotoArgs,
    LaunchArgs,
    Method,
    OrbitArgs,
    ProgressState,
    Role,
    Target,
)
from dronectl.operations.port import Command, Operations

if TYPE_CHECKING:
    from dronectl.automations.lookout import Lookout

log = structlog.get_logger("dronectl.automations.incidents.dispatcher")  # the dispatcher's log

ACTOR_ID = "dispatcher"
COMMAND_TTL_S = 60.0
MAX_ATTEMPTS = 3  # nests tried for one incident before it is given up
SCENE_TIMEOUT_S = 3600.0
# incident kinds at which the lookout watches for black ice (an accident only in freezing weather)
ICE_KINDS = frozenset({"black_ice", "ice", "icy_road"})
ACCIDENT_KINDS = frozenset({"accident", "traffic_accident", "collision"})


def ice_watch_reason(kind: str, weather: DockWeather | None, config: BlackIceConfig) -> str | None:
    """Why the lookout should watch an incident's scene for black ice, or None: a reported patch
    of ice, or an accident while the road is at risk of ice (the nest's weather station)."""
    if kind in ICE_KINDS:
        return f"{kind} reported"
    if kind not in ACCIDENT_KINDS or weather is None:
        return None
    risk = ice_risk(road_weather(weather), config)
    return f"{kind} in freezing weather: {risk.describe()}" if risk.at_risk else None


class IncidentServing:
    """Serves the incidents of ``board`` on ``owner``'s fleet, recording their ``progress``."""

    def __init__(
        self,
        owner: Operations,
        settings: DispatchSettings,
        board: IncidentBoard,
        progress: Progress,
        tasks: IncidentTasks,
    ) -> None:
        self.owner = owner
        self.tasks = tasks
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.settings = settings
        self.board = board
        self.progress = progress
        self.lookout: Lookout | None = None
        self._seq = itertools.count(1)

    def video_started(self, nest_id: int) -> None:
        """The camera stream of ``nest_id`` reached the service: the video-live milestone of the
        incident that nest serves (see ``IncidentDispatcher.video_started``)."""
        inc = self.board.serving(nest_id)
        if (
            inc is None
            or inc.done
            or not inc.reached(Milestone.DISPATCHED)
            or inc.reached(Milestone.VIDEO_LIVE)
        ):
            return
        self.tasks.spawn(self.progress.milestone(inc, Milestone.VIDEO_LIVE), f"incident[{inc.id}].video")

    async def serve(self, inc: ServedIncident, *, recorded: bool = False, follow: bool = False) -> None:
        """``recorded``: picked up after a restart (the incident's row exists); ``follow``: and its
        drone, reserved, already flies it."""
        try:
            if not (recorded or follow):
                if not await self.progress.record_incident(inc):
                    inc.done = True
                    if self.board.incidents.get(inc.id) is inc:
                        del self.board.incidents[inc.id]
                    return
                await self.progress.milestone(inc, Milestone.RECEIVED, message=inc.received_text)
            attempts = sum(1 for m in inc.marks if m.milestone is Milestone.FAILED)
            if follow:
                attempts += 1
                assert inc.nest_id is not None
                if await self._follow(inc, self.fleet.nest(inc.nest_id)) is None or inc.done:
                    return
                self.board.plan_and_reserve(inc)
            while attempts < MAX_ATTEMPTS:
                if not await self._until_dispatchable(inc):
                    return
                attempts += 1
                outcome = await self._fly(inc)
                if outcome is None or inc.done:
                    return
                self.board.plan_and_reserve(inc)
            await self.finish(inc, Milestone.FAILED, f"given up after {attempts} attempts")
        except asyncio.CancelledError:
            self.board.release(inc)
            raise
        finally:
            if inc.done:
                self.board.release(inc)

    async def finish(self, inc: ServedIncident, milestone: Milestone, message: str) -> None:
        """The incident is over (``milestone`` is its final outcome); its nest is released."""
        if inc.done:
            return
        await self.progress.milestone(inc, milestone, message=message, final=True)
        inc.done = True
        self.board.release(inc)

    async def _until_dispatchable(self, inc: ServedIncident) -> bool:
        """Until the plan says launch (queued and proposed incidents wait here); False: ended."""
        while True:
            assert inc.plan is not None
            if inc.action is Action.LAUNCH:
                return True
            if inc.action is Action.QUEUE:
                note = inc.plan.why_none()
                if note != inc.last_note:
                    inc.last_note = note
                    await self.progress.milestone(inc, Milestone.QUEUED, message=note)
            elif inc.action is Action.PROPOSE:
                chosen = inc.plan.chosen
                assert chosen is not None
                note = f"proposed: {chosen.describe()}; waiting for a commander's confirmation"
                if note.split(", on scene")[0] != (inc.last_note or "").split(", on scene")[0]:
                    inc.last_note = note
                    await self.progress.milestone(inc, Milestone.PROPOSED, message=note)
            inc.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.replan_period_s):
                    await inc.wake.wait()
            if inc.done:
                return False
            self.board.plan_and_reserve(inc)
            if inc.confirmed_by is not None and not inc.reached(Milestone.CONFIRMED):
                await self.progress.milestone(
                    inc, Milestone.CONFIRMED, message=f"confirmed by {inc.confirmed_by}: nest {inc.nest_id}"
                )

    # --- to the scene ---------------------------------------------------------------------

    async def _fly(self, inc: ServedIncident) -> str | None:
        """Send the chosen drone and follow it; None when the incident is over, else why this
        attempt failed (the caller plans again, without that nest when the nest was at fault)."""
        nest_id, mode = inc.nest_id, inc.mode
        assert nest_id is not None and mode is not None and inc.plan is not None
        inc.attempt_from = len(inc.marks)
        c = self.fleet.nest(nest_id)
        option = inc.plan.option(nest_id)
        scene = inc.request.scene
        target = Target(lat=scene.lat_deg, lon=scene.lon_deg, alt_m=self.settings.cruise_alt_m)
        speed = cruise_model(self.fleet.policy.model, self.settings).cruise_airspeed_mps
        args: LaunchArgs | GotoArgs
        if mode is Mode.LAUNCH:
            method, args = Method.LAUNCH, LaunchArgs(target=target, speed_mps=speed)
        else:
            method, args = Method.GOTO, GotoArgs(target=target, speed_mps=speed)
        command = self._command(inc, method, nest_id, args)
        last = None
        async for update in self.owner.execute(command):
            last = update
            if c.flight is not None and inc.flight_id is None and update.state is not ProgressState.ACCEPTED:
                inc.flight_id = c.flight.flight_id
                self.board.our_flights.add(c.flight.flight_id)
            if update.state is ProgressState.ACCEPTED:
                if mode is Mode.RETASK and c.flight is not None:
                    inc.flight_id = c.flight.flight_id
                await self.progress.milestone(
                    inc,
                    Milestone.DISPATCHED,
                    nest_id=nest_id,
                    message=f"{'launch' if mode is Mode.LAUNCH else 'retask'} of nest {nest_id} ordered",
                    extra={
                        "mode": mode.value,
                        "command_id": command.id,
                        "predicted_time_to_scene_s": (
                            round(option.time_to_scene_s, 1) if option is not None else None
                        ),
                    },
                )
                if mode is Mode.RETASK:
                    await self.progress.milestone(
                        inc, Milestone.AIRBORNE, nest_id=nest_id, message="already airborne"
                    )
            elif (
                update.state is ProgressState.IN_PROGRESS
                and not inc.reached(Milestone.AIRBORNE)
                and (c.state.phase in ns.AIRBORNE or c.drone_in_air())
            ):
                await self.progress.milestone(inc, Milestone.AIRBORNE, nest_id=nest_id)
        if inc.done:  # cancelled while the drone was on its way
            return None
        if last is None or last.state is not ProgressState.SUCCEEDED:
            why = "no answer" if last is None else last.message
            if last is not None and last.reasons:
                why += ": " + "; ".join(last.reasons)
            return await self._attempt_failed(inc, c, why)
        return await self._arrived(inc, c)

    async def _arrived(self, inc: ServedIncident, c: NestController) -> str | None:
        """The drone reached the scene: milestones, orbit, then watch the scene (as ``_fly``)."""
        nest_id = c.nest_id
        if not inc.reached(Milestone.AIRBORNE):
            await self.progress.milestone(inc, Milestone.AIRBORNE, nest_id=nest_id)
        await self.progress.milestone(inc, Milestone.ON_SCENE, nest_id=nest_id)
        if self.lookout is not None and self.lookout.video_live(nest_id):
            self.video_started(nest_id)  # its stream was live before (a retasked drone)
        await self._orbit(inc, nest_id)
        return await self._scene(inc, c)

    async def _follow(self, inc: ServedIncident, c: NestController) -> str | None:
        """After a restart, a drone that already flies the incident: on its way, wait until it
        reaches the scene (nothing is commanded again: PX4 carries on with the go-to it had);
        over the scene, go on watching it (the orbit it flies, or the hold of an ice response,
        is left as it is). As ``_fly``: None when the incident is over, else why it failed."""
        if not inc.reached(Milestone.ON_SCENE):
            scene, flight_id = inc.request.scene, inc.flight_id

            def arrived() -> bool:
                p = c.drone_position()
                return p is not None and distance_m(p.position, scene) < ARRIVAL_RADIUS_M

            def gone() -> bool:
                return (
                    not self.board.holds(inc)
                    or c.flight is None
                    or c.flight.flight_id != flight_id
                    or not c.state.flying
                    or c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING)
                    or self.owner.authority.holder(c.nest_id, self.clock.wall()) is not None
                )

            with contextlib.suppress(DronectlError):
                await c.wait_for(lambda: arrived() or gone(), SCENE_TIMEOUT_S, "reach the scene")
            if inc.done:
                return None
            if gone() or not arrived():
                return await self._attempt_failed(
                    inc, c, f"its drone did not reach the scene ({c.state.phase.value})"
                )
            return await self._arrived(inc, c)
        if self.lookout is not None and self.lookout.video_live(c.nest_id):
            self.video_started(c.nest_id)
        return await self._scene(inc, c)

    async def _attempt_failed(self, inc: ServedIncident, c: NestController, failure: str) -> str | None:
        if inc.done:  # cancelled meanwhile
            return None
        holder = self.owner.authority.holder(c.nest_id, self.clock.wall())
        if holder is not None and inc.reached(Milestone.DISPATCHED) and self.board.holds(inc):
            await self.finish(inc, Milestone.CLOSED, f"nest {c.nest_id} taken over by {holder.describe()}")
            return None
        if not self.board.holds(inc) and inc.reached(Milestone.DISPATCHED):
            failure = "its drone was sent to a more urgent incident"
        else:
            inc.excluded[c.nest_id] = failure
        self.board.release(inc)
        await self.progress.milestone(
            inc,
            Milestone.FAILED,
            nest_id=c.nest_id,
            message=f"nest {c.nest_id}: {failure}; planning again",
            final=False,
        )
        return failure

    def _command(self, inc: ServedIncident, method: Method, nest_id: int, args: Any) -> Command:
        now = self.clock.wall()
        run = f"r{inc.resumed}." if inc.resumed else ""  # after a restart the counter starts over
        return Command(
            id=f"{inc.id}.{run}{next(self._seq)}.{method.value}.n{nest_id}",
            method=method,
            nest_id=nest_id,
            args=args,
            actor_id=ACTOR_ID,
            actor_role=Role(AUTOMATION),
            issued_at_unix_s=now,
            deadline_unix_s=now + COMMAND_TTL_S,
            received_at_unix_s=now,
        )

    # --- on the scene ---------------------------------------------------------------------

    async def _orbit(self, inc: ServedIncident, nest_id: int) -> None:
        s = self.settings
        centre = Target(lat=inc.request.scene.lat_deg, lon=inc.request.scene.lon_deg, alt_m=s.cruise_alt_m)
        args = OrbitArgs(center=centre, radius_m=s.orbit_radius_m, speed_mps=s.orbit_speed_mps)
        command = self._command(inc, Method.ORBIT, nest_id, args)
        async for update in self.owner.execute(command):
            if update.state in TERMINAL_STATES and update.state is not ProgressState.SUCCEEDED:
                log.warning("incident.orbit_failed", id=inc.id, nest=nest_id, reason=update.message)

    async def _scene(self, inc: ServedIncident, c: NestController) -> str | None:
        """Watch the scene until the drone leaves it, with the lookout when it applies."""
        ice_why = self._ice_watch_reason(inc, c)
        if ice_why is None or inc.reached(Milestone.FINDING):
            return await self._watch_scene(inc, c)
        async with asyncio.TaskGroup() as tasks:
            look = tasks.create_task(self._look_out(inc, c, ice_why), name=f"incident[{inc.id}].lookout")
            try:
                return await self._watch_scene(inc, c)
            finally:
                look.cancel()

    def _ice_watch_reason(self, inc: ServedIncident, c: NestController) -> str | None:
        if self.lookout is None or self.lookout.hub is None:
            return None
        return ice_watch_reason(inc.incident.kind, c.dock.weather, self.lookout.config)

    async def _look_out(self, inc: ServedIncident, c: NestController, why: str) -> None:
        """Watch the video for black ice while on scene; respond to the first finding. Never
        raises (it runs beside the scene watch): a failure is logged."""
        lookout = self.lookout
        assert lookout is not None
        log.info("incident.lookout", id=inc.id, nest=c.nest_id, why=why)
        try:
            async with contextlib.aclosing(lookout.ice_findings(c.nest_id)) as findings:
                async for finding in findings:
                    if inc.done or not self.board.holds(inc):
                        return
                    response = await lookout.respond_to_ice(
                        c.nest_id, finding, actor_id=ACTOR_ID, incident_id=inc.id
                    )
                    await self.progress.milestone(
                        inc,
                        Milestone.FINDING,
                        nest_id=c.nest_id,
                        message=response.describe(),
                        extra={
                            "finding": "black_ice",
                            "finding_lat": round(finding.position.lat_deg, 7),
                            "finding_lon": round(finding.position.lon_deg, 7),
                            "coverage_pct": round(finding.coverage_pct, 2),
                            "snapshot_id": response.snapshot_id,
                            "snapshot_url": response.snapshot_url,
                            "detection_id": response.detection_id,
                            "not_done": [s.data() for s in response.refused],
                            "watched_because": why,
                        },
                    )
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the scene is served without the lookout; logged
            log.warning("incident.lookout_failed", id=inc.id, nest=c.nest_id, error=str(exc) or repr(exc))

    async def _watch_scene(self, inc: ServedIncident, c: NestController) -> str | None:
        """Until the drone leaves the scene: closed (None), or lost to a more urgent incident
        (the reason: the caller plans again)."""
        flight_id = c.flight.flight_id if c.flight is not None else None

        def taken() -> bool:
            return self.owner.authority.holder(c.nest_id, self.clock.wall()) is not None

        def left() -> bool:
            return (
                not self.board.holds(inc)
                or taken()
                or c.flight is None
                or c.flight.flight_id != flight_id
                or c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING)
                or not c.state.flying
            )

        with contextlib.suppress(DronectlError):
            await c.wait_for(left, SCENE_TIMEOUT_S, "leave the scene")
        if not self.board.holds(inc):
            return await self._attempt_failed(inc, c, "its drone was sent to a more urgent incident")
        holder = self.owner.authority.holder(c.nest_id, self.clock.wall())
        if holder is not None:
            why = f"nest {c.nest_id} taken over by {holder.describe()}"
        elif c.state.phase in (ns.NestPhase.RETURNING, ns.NestPhase.LANDING):
            why = f"nest {c.nest_id} left the scene ({c.state.phase.value})"
        else:
            why = f"nest {c.nest_id} flight over ({c.state.phase.value})"
        await self.finish(inc, Milestone.CLOSED, why)
        return None
