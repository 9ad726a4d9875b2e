"""The patrol service reads the time of day from the service's clock (its calendar), never the
machine's: the shipped schedules at a pinned rush hour want congestion patrols, at a pinned
Sunday afternoon nothing, whatever the real time is."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from dronectl.automations.patrols.service import PatrolService
from dronectl.domain.clock import ScaledClock, parse_instant
from dronectl.domain.config import load_config
from dronectl.domain.patrols import missions as ms

CITY = load_config()


@dataclass
class Owner:
    """The little of FleetOperations the patrol service's evaluation reads: no nests, so no
    weather station, so only the schedules can want a patrol."""

    clock: ScaledClock
    fleet: Any = field(default_factory=lambda: SimpleNamespace(controllers={}, audit=None))
    control_listeners: list[Any] = field(default_factory=list)
    patrols: Any = None


async def wanted_at(instant: str) -> list[tuple[ms.MissionKind, str, str]]:
    owner = Owner(ScaledClock(10.0, calendar_start=parse_instant(instant)))
    service = PatrolService(owner, CITY.patrols, store=SimpleNamespace(), timezone=CITY.timezone)  # type: ignore[arg-type]
    started: list[tuple[ms.MissionKind, str, str]] = []

    async def create(kind: ms.MissionKind, stretch_id: str, *, trigger: str, manual: bool) -> None:
        started.append((kind, stretch_id, trigger))

    service.create = create  # type: ignore[method-assign,assignment]
    await service.evaluate()
    return started


async def test_rush_hour_on_the_service_clock_starts_congestion_patrols() -> None:
    started = await wanted_at("2026-12-03T08:15:00+08:00")  # Thursday
    assert started == [
        (ms.MissionKind.CONGESTION, s, "congestion schedule 07:00-09:00")
        for s in CITY.patrols.congestion.stretches
    ]


async def test_winter_morning_on_the_service_clock_starts_black_ice_patrols() -> None:
    started = await wanted_at("2026-12-13T06:00:00+08:00")  # Sunday
    assert {(k, s) for k, s, _ in started} == {
        (ms.MissionKind.BLACK_ICE, s) for s in CITY.patrols.black_ice.stretches
    }


@pytest.mark.parametrize("instant", ["2026-12-06T14:00:00+08:00", "2026-07-05T06:00:00+08:00"])
async def test_quiet_instants_start_nothing(instant: str) -> None:
    assert await wanted_at(instant) == []
