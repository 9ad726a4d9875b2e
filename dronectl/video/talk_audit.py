"""Talk-back in the audit store: who spoke through which nest's loudspeaker, from when to when.

A talk-back session is recorded as a command of its actor (method ``talkback``, id
``talkback-<WHEP session>``, args: the session) accepted when the viewer's microphone starts
arriving, and given its last outcome when it ends: succeeded, with the duration and the clips
played in the message. While the nest has a flight open, a ``talkback`` flight event carries
the same as data (actor, start, end, duration_s, clips). Times are the fleet clock's wall time.
A failed write is logged, never raised: it must not cut a pilot off mid-sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from dronectl.audit import AuditStore
from dronectl.audit.errors import AuditError
from dronectl.audit.records import CommandOutcome, CommandRecord, FlightEvent, OutcomeRecord
from dronectl.operations.models import Actor
from dronectl.video.talkback import TalkBackStats

log = structlog.get_logger(__name__)

METHOD = "talkback"


@dataclass(frozen=True)
class TalkRecord:
    command_id: str
    session_id: str
    nest_id: int
    actor: Actor
    started_unix_s: float


def ended_message(duration_s: float, stats: TalkBackStats) -> str:
    return (
        f"talk-back over after {duration_s:.1f} s: {stats.clips_sent} clip(s) played, "
        f"{stats.clips_silent} silent, {stats.clips_dropped} dropped, {stats.clips_failed} failed"
    )


class TalkAudit:
    def __init__(self, store: AuditStore, wall: Callable[[], float]) -> None:
        self.store = store
        self.wall = wall

    async def started(self, session_id: str, nest_id: int, actor: Actor) -> TalkRecord:
        record = TalkRecord(f"{METHOD}-{session_id}", session_id, nest_id, actor, self.wall())
        try:
            await self.store.record_command(
                CommandRecord(
                    command_id=record.command_id,
                    at_unix_s=record.started_unix_s,
                    actor_id=actor.id,
                    actor_role=actor.role.value,
                    nest_id=nest_id,
                    method=METHOD,
                    args={"session": session_id},
                    outcome=CommandOutcome.ACCEPTED,
                    message="talk-back started: the viewer's microphone to the loudspeaker",
                )
            )
        except (AuditError, ValueError) as exc:
            log.error("video.talkback_audit_failed", nest=nest_id, session=session_id, error=str(exc))
        return record

    async def ended(self, record: TalkRecord, stats: TalkBackStats) -> None:
        ended_s = self.wall()
        duration_s = max(0.0, ended_s - record.started_unix_s)
        data = {
            "command_id": record.command_id,
            "session": record.session_id,
            "actor_id": record.actor.id,
            "actor_role": record.actor.role.value,
            "started_at_unix_s": record.started_unix_s,
            "ended_at_unix_s": ended_s,
            "duration_s": round(duration_s, 3),
            "clips_sent": stats.clips_sent,
        }
        try:
            await self.store.record_outcome(
                OutcomeRecord(
                    record.command_id,
                    ended_s,
                    CommandOutcome.SUCCEEDED,
                    message=ended_message(duration_s, stats),
                )
            )
            flights = await self.store.open_flights(nest_id=record.nest_id)
            if flights:
                await self.store.record_event(
                    FlightEvent(
                        flights[-1]["flight_id"], ended_s, METHOD, f"talk-back by {record.actor.id}", data
                    )
                )
        except (AuditError, ValueError) as exc:
            log.error(
                "video.talkback_audit_failed", nest=record.nest_id, session=record.session_id, error=str(exc)
            )
