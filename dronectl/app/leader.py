"""The automations on one instance (issue 14): incident dispatch, the patrol scheduler and the
lookout they use run only on the *automations leader*, the instance holding the automations
lease (key ``AUTOMATIONS`` in the lease table, dronectl/domain/leases.py; same renewal, expiry
and fencing tokens as a nest's).

Why one leader, not dispatch where an incident arrives: every instance subscribes to the same
incident and fleet-command topics, so each receives every incident; each also runs the patrol
triggers on the same weather and clock. Without a leader two instances plan the same incident
(each with the nests it holds: two drones for one incident; the shared store's unique incident
id catches it only when the two inserts do not race) and start the same patrol twice (mission ids
carry the instance's own sequence), and an instance starting while another serves an incident
picks it up "after a restart" and closes it. Making each of those idempotent in the store would
need a claim row per incident, per patrol stretch and per mission, each with its own takeover;
one lease covers them all, and the takeover is the restart path the service already has.

A term of leadership: on gaining the lease, fresh automations are made (``begin``) and run; their
first act is the restart path after a kill -9 (open incidents and unfinished patrol missions
read from the shared store: a drone still flying one is followed again, nothing flown yet is
planned again, the rest closed with the reason). On losing it (not renewed in time: a pause, a
partition, the database away; or a clean stop) they stop at once: their tasks are cancelled,
they let go of the port (an incident reaching this instance is then only recorded for the leader:
automations/incidents/intake.py), and the store refuses any write still on its way under the old
token. The leader adopts, every ``adopt_period_s``, the open incidents of the store it does not
serve (recorded by another instance first, or while no instance led). With one instance (SQLite) there
is no lease and the automations simply run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import structlog

from dronectl.domain.clock import Clock
from dronectl.domain.leases import AUTOMATIONS
from dronectl.nest.fleet import NestGate
from dronectl.nest.supervisor import supervise

if TYPE_CHECKING:  # loaded once the fleet's heartbeats go out (app/parts.py)
    from dronectl.automations.incidents.dispatcher import IncidentDispatcher
    from dronectl.automations.patrols.service import PatrolService

log = structlog.get_logger("dronectl.automations")


class Automations(Protocol):
    """One term's automations, as the leader gate drives them."""

    async def run(self) -> None:
        """Pick up what the store holds open, then run until cancelled."""
        ...

    async def stop(self) -> None:
        """Cancel their tasks and let go of the port."""
        ...


class AutomationsTerm:
    """Incident dispatch and the patrol scheduler for one term (made fresh for each)."""

    def __init__(
        self,
        incidents: IncidentDispatcher,
        patrols: PatrolService,
        clock: Clock,
        adopt_period_s: float | None = None,
    ) -> None:
        """``adopt_period_s`` (several instances): how often the leader looks for open incidents
        another instance recorded (automations/incidents/intake.py)."""
        self.incidents = incidents
        self.patrols = patrols
        self.clock = clock
        self.adopt_period_s = adopt_period_s

    async def run(self) -> None:
        self.incidents.start()  # the incidents left open (by a previous run or leader): resumed or closed
        async with asyncio.TaskGroup() as tg:
            if self.adopt_period_s is not None:
                tg.create_task(self.incidents.adopting(self.adopt_period_s), name="incidents.adopt")
            await supervise("patrols", self.patrols.run, self.clock)  # recovers the stored missions first

    async def stop(self) -> None:
        await self.patrols.step_down()
        await self.incidents.step_down()


async def lead_automations(gate: NestGate | None, begin: Callable[[], Automations]) -> None:
    """Run the automations whenever this instance leads them (always, without a ``gate``); until
    cancelled."""
    if gate is None:
        automations = begin()
        try:
            await automations.run()
        finally:
            await automations.stop()
        return
    while True:
        await gate.wait_held(AUTOMATIONS)
        log.info("automations.leading")
        automations = begin()
        try:
            async with asyncio.TaskGroup() as tg:
                running = tg.create_task(automations.run(), name="automations")
                await gate.wait_lost(AUTOMATIONS)
                running.cancel()
        finally:
            await automations.stop()
        log.warning("automations.stepped_down")
