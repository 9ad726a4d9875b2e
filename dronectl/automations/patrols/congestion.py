"""Congestion: a patrol drone hovering over a stretch's middle samples its traffic.

:class:`CongestionWatch` holds over the hot spot; each sampling window of the lookout gives a
traffic reading, classified and published (event ``congestion`` and, on MQTT, retained on
``{root}/traffic/{stretch}``); standing traffic raises an incident (once, until it moves again).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from dronectl.automations.patrols.relief import Relief
from dronectl.automations.patrols.steps import ACTOR_ID, MissionSteps, closing
from dronectl.domain.patrols import missions as ms
from dronectl.domain.patrols.congestion import CongestionLevel, classify, describe
from dronectl.nest.controller import NestController
from dronectl.operations.models import Actor, Event, EventKind, GroundPoint, Incident, Role
from dronectl.operations.views import utc

if TYPE_CHECKING:
    from dronectl.automations.vision.traffic import TrafficReading

log = structlog.get_logger("dronectl.patrols")


class CongestionWatch:
    """The traffic sampling of one congestion mission."""

    def __init__(self, flight: MissionSteps, relief: Relief) -> None:
        self.flight = flight
        self.relief = relief
        self.free_flow_mps = flight.config.stretch(flight.m.stretch_id).free_flow_speed_mps
        self.standstill_reported = False

    async def fly(self) -> None:
        assert self.flight.m.nest_id is not None
        c = self.flight.fleet.nest(self.flight.m.nest_id)
        if self.flight.m.state is ms.MissionState.PATROLLING:
            await self.flight.service.apply(self.flight.live, ms.Hold("sampling traffic over the stretch"))
        while self.flight.m.state is ms.MissionState.HOLDING and self.flight.m.nest_id == c.nest_id:
            problem = self.flight.flight_problem(c)
            if problem is not None:
                await self.flight.lost(c, problem, exclude=False)
                return
            if await self.flight.taken_for_incident(c) or await self.relief.maybe(c):
                return
            reading = await self.flight.race(self._reading(c.nest_id))
            if reading is not None:
                await self._report(c, reading)
            await self.flight.race(self.flight.service.sleep(self.flight.s.sample_period_s))

    async def _reading(self, nest_id: int) -> TrafficReading | None:
        lookout = self.flight.service.lookout
        if lookout is None:
            return None
        speed = float(getattr(self.flight.clock, "speed", 1.0))
        try:
            async with (
                asyncio.timeout(self.flight.s.reading_timeout_s / speed),
                closing(lookout.traffic_readings(nest_id)) as readings,
            ):
                async for reading in readings:
                    if reading.window_s >= self.flight.s.sample_window_s / speed:
                        return reading
        except TimeoutError:
            log.warning("patrol.no_traffic_reading", id=self.flight.m.id, nest=nest_id)
        except Exception as exc:  # noqa: BLE001 - no video now (camera, decoder): tried again next period
            log.warning("patrol.traffic_failed", id=self.flight.m.id, nest=nest_id, error=repr(exc))
        return None

    async def _report(self, c: NestController, r: TrafficReading) -> None:
        s = self.flight.config.congestion
        level = classify(r.mean_speed_mps, r.density_veh_per_km, r.stopped_fraction, self.free_flow_mps, s)
        text = describe(level, r.mean_speed_mps, r.density_veh_per_km, r.stopped_fraction, self.free_flow_mps)
        stretch = self.flight.config.stretch(self.flight.m.stretch_id)
        data = {
            "stretch_id": self.flight.m.stretch_id,
            "stretch": stretch.name,
            "mission_id": self.flight.m.id,
            "level": level.value,
            "vehicles": r.vehicles,
            "density_veh_per_km": round(r.density_veh_per_km, 1),
            "mean_speed_mps": None if r.mean_speed_mps is None else round(r.mean_speed_mps, 2),
            "stopped_fraction": round(r.stopped_fraction, 3),
            "free_flow_speed_mps": self.free_flow_mps,
            "window_s": round(r.window_s, 1),
            "lat": self.flight.hot_spot.lat_deg,
            "lon": self.flight.hot_spot.lon_deg,
        }
        log.info("patrol.congestion", id=self.flight.m.id, stretch=self.flight.m.stretch_id, congestion=text)
        self.flight.owner.publish(
            Event(
                kind=EventKind.CONGESTION,
                at=utc(self.flight.clock.wall()),
                nest_id=c.nest_id,
                message=f"{stretch.name}: {text}",
                flight_id=self.flight.m.flight_id,
                data=data,
            )
        )
        if level is CongestionLevel.STANDSTILL and not self.standstill_reported:
            self.standstill_reported = True
            self.flight.owner.report_incident(
                Incident(
                    id=f"{self.flight.m.id}.standstill.{next(self.flight.seq)}",
                    kind="congestion",
                    position=GroundPoint(lat=self.flight.hot_spot.lat_deg, lon=self.flight.hot_spot.lon_deg),
                    priority=s.standstill_incident_priority,
                    text=f"traffic standing still on {stretch.name}: {text}",
                    reported_at=datetime.fromtimestamp(self.flight.clock.wall(), tz=UTC),
                    actor=Actor(id=ACTOR_ID, role=Role.AUTOMATION),
                )
            )
        elif level is not CongestionLevel.STANDSTILL:
            self.standstill_reported = False
