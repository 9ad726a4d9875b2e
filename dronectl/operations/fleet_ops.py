"""The fleet as the MQTT API sees it: implements ``dronectl.operations.port.Controller`` over a Fleet.

- ``snapshot``/``telemetry``: built from each nest controller's latest values (``api_views``); a
  snapshot is cached and rebuilt when something discrete changed (phase, armed, mode, cover,
  flight, control...) or, for continuous values (position, battery, wind), at most every
  ``state_refresh_s``; its launch blockers (the costly part) on a discrete change or every
  ``blockers_refresh_s`` (a launch command is always checked afresh).
- ``updates``: the nest controllers' events (through their ``listeners``), the events read from
  successive snapshots (weather no-go, device faults, maintenance), control changes, and each new
  snapshot. Woken by every event, and checked every ``tick_s`` otherwise.
- ``execute``: every method mapped to the nest controller's operations (``api_commands``). Each
  command runs in a task of its own that records it in the audit store (``record_command`` when it
  is accepted or refused, ``record_outcome`` for every later step) before its update is announced,
  so the record is complete even if the API stops listening.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from dronectl.domain.control_authority import DEFAULT_IDLE_RELEASE_S, Change, ControlAuthority, Holder
from dronectl.domain.dispatch import DEFAULT_SETTINGS, DispatchSettings
from dronectl.nest.controller import NestController, NestEvent
from dronectl.nest.fleet import Fleet
from dronectl.operations import views as views
from dronectl.operations.commands import CommandRunner
from dronectl.operations.models import (
    TERMINAL_STATES,
    Blocker,
    Event,
    EventKind,
    Incident,
    NestState,
    Telemetry,
)
from dronectl.operations.port import YIELD_EVERY_NESTS, Command, CommandUpdate, IncidentDesk, PatrolDesk
from dronectl.operations.tasking import Tasking

log = structlog.get_logger("dronectl.operations.fleet_ops")

STATE_REFRESH_S = 1.0
BLOCKERS_REFRESH_S = 5.0  # the launch checks are the costly part of a snapshot
TICK_S = 0.1


@dataclass
class _NestView:
    key: tuple[Any, ...] | None = None
    refreshed_mono_s: float = float("-inf")
    state: NestState | None = None
    comparable: dict[str, Any] | None = None
    version: int = 0
    blockers: list[Blocker] = field(default_factory=list)
    blockers_key: tuple[Any, ...] | None = None
    blockers_mono_s: float = float("-inf")
    motion: views.MotionTracker = field(default_factory=views.MotionTracker)


@dataclass
class _Subscriber:
    events: deque[Event] = field(default_factory=deque)
    seen: dict[int, int] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class FleetOperations:
    def __init__(
        self,
        fleet: Fleet,
        *,
        idle_release_s: float = DEFAULT_IDLE_RELEASE_S,
        state_refresh_s: float = STATE_REFRESH_S,
        blockers_refresh_s: float = BLOCKERS_REFRESH_S,
        tick_s: float = TICK_S,
        dispatch: DispatchSettings = DEFAULT_SETTINGS,
    ) -> None:
        self.fleet = fleet
        self.clock = fleet.clock
        self.authority = ControlAuthority(idle_release_s)
        self.state_refresh_s = state_refresh_s
        self.blockers_refresh_s = blockers_refresh_s
        self.tick_s = tick_s
        self.cruise_alt_m = fleet.config.safety.default_cruise_alt_m
        self._views: dict[int, _NestView] = {nest_id: _NestView() for nest_id in fleet.controllers}
        self._subscribers: list[_Subscriber] = []
        self._flight_started: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.runner = CommandRunner(self)
        for controller in fleet.controllers.values():
            controller.listeners.append(self._on_nest_event)
        self.dispatch_settings = dispatch
        self.tasking = Tasking()  # which automation each nest's drone works for
        # called on every change of manual control (cheap, synchronous: the patrols stop at once)
        self.control_listeners: list[Callable[[Change], None]] = []
        # the automations register themselves when they run (incident dispatch, the patrol service)
        self.incidents: IncidentDesk | None = None
        self.patrols: PatrolDesk | None = None
        # several instances: incident dispatch and patrols run on the automations leader, so their
        # absence here is normal (dronectl/app/leader.py)
        self.automations_elsewhere = False
        # ... and an incident reaching a non-leader is recorded there (automations/incidents/intake.py)
        self.incident_intake: Callable[[Incident], None] | None = None

    # --- Controller protocol ----------------------------------------------------------------

    def nest_ids(self) -> Sequence[int]:
        return tuple(self.fleet.controllers)

    def snapshot(self, nest_id: int) -> NestState:
        return self._refresh(nest_id)

    def telemetry(self, nest_id: int) -> Telemetry | None:
        controller = self.fleet.nest(nest_id)
        return views.telemetry(
            controller, self._views[nest_id].motion, self.clock.wall(), self.clock.monotonic()
        )

    async def updates(self) -> AsyncIterator[NestState | Event]:
        sub = _Subscriber()
        self._subscribers.append(sub)
        try:
            while True:
                for change in self.authority.expire(self.clock.wall()):
                    self.announce_control(change)
                for i, (nest_id, view) in enumerate(self._views.items(), 1):
                    state = self._refresh(nest_id)
                    if sub.seen.get(nest_id) != view.version:
                        sub.seen[nest_id] = view.version
                        yield state
                    if i % YIELD_EVERY_NESTS == 0:
                        await asyncio.sleep(0)  # a pass over hundreds of nests lets the loop in
                while sub.events:
                    yield sub.events.popleft()
                if not sub.wake.is_set():
                    try:
                        async with asyncio.timeout(self.tick_s):
                            await sub.wake.wait()
                    except TimeoutError:
                        pass
                sub.wake.clear()
        finally:
            self._subscribers.remove(sub)

    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        queue: asyncio.Queue[CommandUpdate] = asyncio.Queue()
        self.spawn(self.runner.run(command, queue.put_nowait), f"api.command[{command.id}]")
        while True:
            update = await queue.get()
            yield update
            if update.state in TERMINAL_STATES:
                return

    def report_incident(self, incident: Incident) -> None:
        log.info(
            "api.incident",
            id=incident.id,
            kind=incident.kind,
            priority=incident.priority,
            lat=incident.position.lat,
            lon=incident.position.lon,
            actor=incident.actor.id,
        )
        if self.incidents is None:
            if self.automations_elsewhere:  # several instances: the leader received it too
                log.info("api.incident_left", id=incident.id, reason="the automations leader dispatches it")
                if self.incident_intake is not None:  # recorded, for a leader yet to come
                    self.incident_intake(incident)
            else:
                log.error("api.incident_dropped", id=incident.id, reason="incident dispatch is not running")
            return
        self.incidents.submit(incident)  # plans at once; publishes its incident_progress events

    # --- tasks ------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` owned by this object (kept until done; a crash is logged)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("api.task_crashed", task=task.get_name(), error=repr(task.exception()))

    async def aclose(self) -> None:
        """Cancel the command tasks still running (the operations themselves belong to the nests)."""
        if self.incidents is not None:
            await self.incidents.aclose()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- events and snapshots ---------------------------------------------------------------

    def publish(self, event: Event) -> None:
        for sub in self._subscribers:
            sub.events.append(event)
            sub.wake.set()

    def announce_control(self, change: Change) -> None:
        data: dict[str, Any] = {"change": change.kind.value, "by": change.by}
        if change.holder is not None:
            data["holder"] = {"id": change.holder.actor_id, "role": change.holder.role}
        if change.previous is not None:
            data["previous"] = {"id": change.previous.actor_id, "role": change.previous.role}
        log.info("api.control", nest=change.nest_id, **data)
        for listener in self.control_listeners:
            listener(change)
        self._views[change.nest_id].key = None  # the state shows who holds control
        self.publish(
            Event(
                kind=EventKind.CONTROL,
                at=views.utc(self.clock.wall()),
                nest_id=change.nest_id,
                message=change.describe(),
                data=data,
            )
        )

    def _on_nest_event(self, nest_event: NestEvent) -> None:
        """A nest controller's listener: called in its task, so only cheap work here."""
        view = self._views.get(nest_event.nest_id)
        if view is None:
            return
        view.key = None  # something happened: rebuild the snapshot at the next look
        controller = self.fleet.controllers[nest_event.nest_id]
        flight = controller.flight
        event = views.event_from(
            nest_event,
            self.clock.wall(),
            flight.flight_id if flight is not None else None,
            flight.command_id if flight is not None else None,
        )
        if event is not None:
            self.publish(event)
        else:
            for sub in self._subscribers:
                sub.wake.set()

    def flight_started(self, flight_id: str, at_unix_s: float) -> None:
        self._flight_started.setdefault(flight_id, at_unix_s)

    def _refresh(self, nest_id: int) -> NestState:
        view = self._views[nest_id]
        controller = self.fleet.nest(nest_id)
        now_wall = self.clock.wall()
        holder = self.authority.holder(nest_id, now_wall)
        key = views.change_key(controller, holder)
        now_mono = time.monotonic()
        if (
            view.state is not None
            and key == view.key
            and now_mono - view.refreshed_mono_s < self.state_refresh_s
        ):
            return view.state
        if key != view.blockers_key or now_mono - view.blockers_mono_s >= self.blockers_refresh_s:
            view.blockers = views.nest_blockers(controller, self.cruise_alt_m)
            view.blockers_key, view.blockers_mono_s = key, now_mono
        state = self._build(controller, holder, view.blockers, now_wall)
        comparable = state.model_dump(exclude={"at"})
        if comparable != view.comparable:
            for event in views.derived_events(view.state, state, now_wall):
                self.publish(event)
            view.state, view.comparable = state, comparable
            view.version += 1
        view.key, view.refreshed_mono_s = key, now_mono
        assert view.state is not None
        return view.state

    def _build(
        self, controller: NestController, holder: Holder | None, blockers: list[Blocker], now_wall: float
    ) -> NestState:
        flight = controller.flight
        started = None
        if flight is not None:
            self.flight_started(flight.flight_id, now_wall)
            started = self._flight_started[flight.flight_id]
        return views.snapshot(
            controller,
            at_unix_s=now_wall,
            blockers=blockers,
            holder=holder,
            flight_started_unix_s=started,
        )

    def refusal_event(self, command: Command, message: str, code: str, reasons: Sequence[str]) -> None:
        self.publish(
            Event(
                kind=EventKind.REFUSED,
                at=views.utc(self.clock.wall()),
                nest_id=command.nest_id,
                message=f"{command.method.value} refused: {message}",
                command_id=command.id,
                data={
                    "method": command.method.value,
                    "code": code,
                    "reasons": list(reasons),
                    "actor": {"id": command.actor_id, "role": command.actor_role.value},
                },
            )
        )

    def wall(self) -> float:
        return self.clock.wall()
