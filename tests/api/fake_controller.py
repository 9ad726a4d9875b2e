"""A small fake controller for the API tests: nests that launch, fly and return in memory.

It implements dronectl.operations.port.Controller honestly enough for the API to be exercised:
a launch is refused in maintenance or when the nest is not ready; an accepted launch moves
through launching -> en_route -> on_station with events, state changes and telemetry; return_home
brings it back to charging. Steps are paced by ``step_s`` (real seconds, small in tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dronectl.automations.patrols.store import mission_data
from dronectl.domain.patrols.missions import Mission, MissionKind, MissionState
from dronectl.operations.models import (
    AIRBORNE_PHASES,
    Blocker,
    DockState,
    DroneState,
    ErrorCode,
    Event,
    EventKind,
    Flight,
    Incident,
    LaunchArgs,
    Method,
    NestState,
    PatrolStartArgs,
    PatrolStopArgs,
    Phase,
    Position,
    ProgressState,
    Telemetry,
    Weather,
)
from dronectl.operations.port import Command, CommandUpdate

HOME_LAT = 43.88
HOME_LON = 125.35


def _utc(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, tz=UTC)


class FakeController:
    def __init__(
        self,
        nest_ids: Sequence[int] = (1, 2, 3),
        *,
        clock: Callable[[], float] = time.time,
        step_s: float = 0.05,
    ) -> None:
        self.clock = clock
        self.step_s = step_s
        self._nest_ids = tuple(nest_ids)
        self._phase: dict[int, Phase] = dict.fromkeys(self._nest_ids, Phase.READY)
        self._position: dict[int, Position] = {
            n: Position(lat=HOME_LAT + n * 0.01, lon=HOME_LON, alt_m=0.0) for n in self._nest_ids
        }
        self._flight: dict[int, Flight | None] = dict.fromkeys(self._nest_ids)
        self._maintenance: dict[int, bool] = dict.fromkeys(self._nest_ids, False)
        self._subscribers: list[asyncio.Queue[NestState | Event]] = []
        self.executed: list[Command] = []
        self.incidents: list[Incident] = []
        self.missions: list[Mission] = []  # patrol.start/stop/list, kept as the patrol service would
        self.telemetry_served = 0

    # --- Controller protocol ----------------------------------------------------------------

    def nest_ids(self) -> Sequence[int]:
        return self._nest_ids

    def snapshot(self, nest_id: int) -> NestState:
        phase = self._phase[nest_id]
        in_dock = phase not in AIRBORNE_PHASES
        blockers = []
        if self._maintenance[nest_id]:
            blockers.append(Blocker(code="nest_maintenance", message=f"nest {nest_id} is in maintenance"))
        if phase not in (Phase.READY, Phase.CHARGING):
            blockers.append(Blocker(code="nest_busy", message=f"nest {nest_id} is {phase.value}"))
        return NestState(
            nest_id=nest_id,
            name=f"Nest {nest_id}",
            at=_utc(self.clock()),
            phase=Phase.MAINTENANCE if self._maintenance[nest_id] and in_dock else phase,
            dock=DockState(
                cover="closed" if in_dock else "open",
                drone_in_dock=in_dock,
                charging=phase is Phase.CHARGING,
                weather=Weather(
                    wind_speed_mps=3.0,
                    wind_gust_mps=5.0,
                    wind_from_deg=270.0,
                    air_temp_c=-12.0,
                    precipitation_mmph=0.0,
                    go=True,
                ),
            ),
            drone=DroneState(
                armed=not in_dock,
                mode="position" if not in_dock else "unknown",
                position=self._position[nest_id],
                battery_pct=95.0,
                link="up",
            ),
            flight=self._flight[nest_id],
            maintenance=self._maintenance[nest_id],
            blockers=blockers,
        )

    def telemetry(self, nest_id: int) -> Telemetry | None:
        self.telemetry_served += 1
        return Telemetry(
            nest_id=nest_id,
            at=_utc(self.clock()),
            position=self._position[nest_id],
            heading_deg=90.0,
            ground_speed_mps=12.0 if self._phase[nest_id] in AIRBORNE_PHASES else 0.0,
            climb_rate_mps=0.0,
            battery_pct=95.0,
            link_quality_pct=99.0,
        )

    async def updates(self) -> AsyncIterator[NestState | Event]:
        queue: asyncio.Queue[NestState | Event] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    async def execute(self, command: Command) -> AsyncIterator[CommandUpdate]:
        self.executed.append(command)
        nest_id = command.nest_id
        if command.method is Method.RETURN_ALL:
            yield CommandUpdate(ProgressState.ACCEPTED)
            for n in self._nest_ids:
                if self._phase[n] in AIRBORNE_PHASES:
                    await self._return(n, command)
            yield CommandUpdate(ProgressState.SUCCEEDED, "every drone is home")
            return
        if command.method in (Method.PATROL_START, Method.PATROL_STOP, Method.PATROL_LIST):
            for update in self._patrol(command):
                yield update
            return
        assert nest_id is not None
        if command.method is Method.MAINTENANCE_SET:
            self._maintenance[nest_id] = bool(getattr(command.args, "on", False))
            self._changed(nest_id)
            yield CommandUpdate(ProgressState.ACCEPTED)
            yield CommandUpdate(ProgressState.SUCCEEDED)
            return
        if command.method is Method.LAUNCH:
            async for update in self._launch(nest_id, command):
                yield update
            return
        if command.method is Method.RETURN_HOME:
            if self._phase[nest_id] not in AIRBORNE_PHASES:
                yield CommandUpdate(ProgressState.FAILED, "the drone is not flying", ErrorCode.REFUSED)
                return
            yield CommandUpdate(ProgressState.ACCEPTED)
            await self._return(nest_id, command)
            yield CommandUpdate(ProgressState.SUCCEEDED, "landed in the dock")
            return
        # speaker, light, hold...: done at once
        yield CommandUpdate(ProgressState.ACCEPTED)
        yield CommandUpdate(ProgressState.SUCCEEDED)

    def report_incident(self, incident: Incident) -> None:
        self.incidents.append(incident)

    def publish(self, event: Event) -> None:
        """An event of the service's automations (patrol, congestion, detection...) to every
        subscriber, as FleetOperations.publish does."""
        for queue in self._subscribers:
            queue.put_nowait(event)

    # --- behaviour --------------------------------------------------------------------------

    async def _launch(self, nest_id: int, command: Command) -> AsyncIterator[CommandUpdate]:
        reasons = [b.message for b in self.snapshot(nest_id).blockers]
        if reasons:
            yield CommandUpdate(ProgressState.FAILED, "launch refused", ErrorCode.REFUSED, reasons)
            return
        assert isinstance(command.args, LaunchArgs)
        target = command.args.target
        yield CommandUpdate(ProgressState.ACCEPTED, "preflight checks passed")
        self._flight[nest_id] = Flight(
            id=f"flight-{command.id}",
            command_id=command.id,
            started_at=_utc(self.clock()),
            target=Position(lat=target.lat, lon=target.lon, alt_m=target.alt_m),
        )
        self._set_phase(nest_id, Phase.LAUNCHING)
        yield CommandUpdate(ProgressState.IN_PROGRESS, "cover opening")
        await asyncio.sleep(self.step_s)
        self._set_phase(nest_id, Phase.EN_ROUTE)
        self._event(nest_id, EventKind.LAUNCHED, "launched", command.id)
        yield CommandUpdate(ProgressState.IN_PROGRESS, "en route")
        await asyncio.sleep(self.step_s)
        self._position[nest_id] = Position(lat=target.lat, lon=target.lon, alt_m=target.alt_m)
        self._set_phase(nest_id, Phase.ON_STATION)
        self._event(nest_id, EventKind.ON_STATION, "on station", command.id)
        yield CommandUpdate(
            ProgressState.SUCCEEDED, "on station", result={"flight_id": f"flight-{command.id}"}
        )

    async def _return(self, nest_id: int, command: Command) -> None:
        self._set_phase(nest_id, Phase.RETURNING)
        self._event(nest_id, EventKind.RETURNING, "returning", command.id)
        await asyncio.sleep(self.step_s)
        self._position[nest_id] = Position(lat=HOME_LAT + nest_id * 0.01, lon=HOME_LON, alt_m=0.0)
        self._flight[nest_id] = None
        self._set_phase(nest_id, Phase.CHARGING)
        self._event(nest_id, EventKind.LANDED, "landed in the dock", command.id)

    def _patrol(self, command: Command) -> list[CommandUpdate]:
        """patrol.start / stop / list, answered at once with the patrol service's result shapes."""
        args = command.args
        if isinstance(args, PatrolStartArgs):
            m = Mission(
                id=f"patrol-{len(self.missions) + 1}",
                kind=MissionKind(args.kind),
                stretch_id=args.stretch_id,
                state=MissionState.PLANNED,
                created_unix_s=self.clock(),
                trigger=f"started by {command.actor_id}",
                manual=True,
            )
            self.missions.append(m)
            result: dict[str, Any] = {"mission": mission_data(m)}
        elif isinstance(args, PatrolStopArgs):
            i = next((i for i, m in enumerate(self.missions) if m.id == args.mission_id), None)
            if i is None:
                why = [f"no active mission {args.mission_id!r}"]
                return [CommandUpdate(ProgressState.FAILED, "patrol.stop refused", ErrorCode.REFUSED, why)]
            self.missions[i] = replace(self.missions[i], state=MissionState.RETURNING, reason="stopped")
            result = {"mission": mission_data(self.missions[i])}
        else:
            result = {"missions": [mission_data(m) for m in self.missions if m.active]}
        return [CommandUpdate(ProgressState.ACCEPTED), CommandUpdate(ProgressState.SUCCEEDED, result=result)]

    def _set_phase(self, nest_id: int, phase: Phase) -> None:
        self._phase[nest_id] = phase
        self._changed(nest_id)

    def _changed(self, nest_id: int) -> None:
        snapshot = self.snapshot(nest_id)
        for queue in self._subscribers:
            queue.put_nowait(snapshot)

    def _event(self, nest_id: int, kind: EventKind, message: str, command_id: str | None) -> None:
        event = Event(
            kind=kind, at=_utc(self.clock()), nest_id=nest_id, message=message, command_id=command_id
        )
        for queue in self._subscribers:
            queue.put_nowait(event)
