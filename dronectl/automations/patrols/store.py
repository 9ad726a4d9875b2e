"""Patrol missions kept in the audit store: one row per transition, so they survive kill -9.

:meth:`MissionStore.save` returns once the row is committed (the audit store's durability); the
latest row of a mission is its current state. At start the patrol service reads the unfinished
ones back (:meth:`MissionStore.unfinished`) to resume them or end them with the reason.
"""

from __future__ import annotations

from typing import Any

from dronectl.audit import AuditStore, MissionRecord, MissionRow
from dronectl.domain.patrols.missions import Mission, MissionKind, MissionState, mission_data

__all__ = ["MissionStore", "mission_data", "mission_from_data"]


def mission_from_data(data: dict[str, Any]) -> Mission:
    """The mission a stored row holds (fields unknown to this version are ignored)."""
    fields = set(Mission.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in fields}
    values["kind"] = MissionKind(values["kind"])
    values["state"] = MissionState(values["state"])
    return Mission(**values)


class MissionStore:
    def __init__(self, audit: AuditStore) -> None:
        self.audit = audit

    async def save(self, m: Mission, at_unix_s: float) -> None:
        await self.audit.record_mission(
            MissionRecord(
                mission_id=m.id,
                at_unix_s=at_unix_s,
                kind=m.kind.value,
                stretch_id=m.stretch_id,
                state=m.state.value,
                nest_id=m.nest_id,
                reason=m.reason,
                data=mission_data(m),
            ),
            fence=self.audit.automation_fence(),  # several instances: the automations leader's
        )

    async def unfinished(self) -> list[Mission]:
        return [_mission(row) for row in await self.audit.missions(unfinished_only=True)]

    async def latest(self, limit: int = 100) -> list[Mission]:
        return [_mission(row) for row in await self.audit.missions(limit=limit)]

    async def history(self, mission_id: str) -> list[Mission]:
        return [_mission(row) for row in await self.audit.mission_history(mission_id)]


def _mission(row: MissionRow) -> Mission:
    return mission_from_data(row["data"])
