"""Several instances: an incident reaching an instance that does not lead the automations.

Every instance receives every incident (they share the broker's subscription). The leader
dispatches it (``dispatcher``); each other instance only *records* it in the shared store
(:class:`IncidentIntake`), once: the incident's id is unique there, so whichever instance records
first, there is one row. The row is what makes the incident safe from a change of leader: one
published while no instance leads (between a leader's end and the takeover) is picked up by the
next leader with the open incidents at takeover, and one another instance recorded before the
leader did is adopted by the leader (``IncidentDispatcher.adopt``), both through the restart path.
Dispatch itself stays with the leader: an intake never plans, reserves or flies.
"""

from __future__ import annotations

import structlog

from dronectl.audit import AuditError, DuplicateCommandError
from dronectl.automations.incidents.progress import incident_record
from dronectl.operations.models import Incident
from dronectl.operations.port import Operations

log = structlog.get_logger("dronectl.automations.incidents.dispatcher")  # the dispatcher's log


class IncidentIntake:
    def __init__(self, owner: Operations) -> None:
        self.owner = owner

    def take(self, incident: Incident) -> None:
        """Record ``incident`` for the leader (non-blocking)."""
        self.owner.spawn(self._record(incident), f"incident[{incident.id}].intake")

    async def _record(self, incident: Incident) -> None:
        try:
            await self.owner.fleet.audit.record_command(incident_record(incident, self.owner.clock.wall()))
        except DuplicateCommandError:
            log.info("incident.intake_known", id=incident.id)  # the leader (or another) has it
        except AuditError as exc:  # the leader records it too; only a leaderless moment loses it
            log.warning("incident.intake_failed", id=incident.id, error=str(exc))
        else:
            log.info("incident.recorded_for_leader", id=incident.id)
