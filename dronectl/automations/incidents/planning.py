"""The incidents being served and the nests reserved for them: planned and reserved in one step.

:class:`IncidentBoard` keeps every incident the dispatcher serves and the flights it launched,
makes an incident's plan (``dronectl.domain.dispatch``, pure, no await) from what each nest can
do now, and reserves the chosen nest on the tasking board in the same step, so a second incident
arriving at the same moment goes to the next best nest. A more urgent incident may take a
reserved drone; the incident that lost it is woken to plan again.
"""

from __future__ import annotations

from dronectl.automations.incidents.progress import ServedIncident
from dronectl.domain.dispatch import (
    Action,
    Candidate,
    DispatchSettings,
    Reason,
    Work,
    decide,
    plan,
)
from dronectl.nest.controller import NestController
from dronectl.operations.port import Operations


class IncidentBoard:
    """The incidents served for ``owner`` and the nests reserved for them."""

    def __init__(self, owner: Operations, settings: DispatchSettings) -> None:
        self.owner = owner
        self.tasking = owner.tasking  # nests reserved for incidents, other automations' work
        self.fleet = owner.fleet
        self.clock = owner.clock
        self.settings = settings
        self.incidents: dict[str, ServedIncident] = {}
        self.our_flights: set[str] = set()  # flights the dispatcher launched (retaskable when idle)

    def serving(self, nest_id: int) -> ServedIncident | None:
        """The incident the nest is reserved for, or None."""
        incident_id = self.tasking.reserved.get(nest_id)
        return self.incidents.get(incident_id) if incident_id is not None else None

    def _candidates(self, inc: ServedIncident) -> list[Candidate]:
        now = self.clock.wall()
        out = []
        for c in self.fleet.controllers.values():
            unavailable: list[Reason] = []
            holder = self.owner.authority.holder(c.nest_id, now)
            if holder is not None:
                unavailable.append(
                    Reason(
                        "manual_control", f"under manual control of {holder.describe()}; automation keeps off"
                    )
                )
            other = self.tasking.reserved.get(c.nest_id)
            if other is not None and other != inc.id and not c.state.flying:
                unavailable.append(Reason("assigned", f"assigned to incident {other}"))
            if c.nest_id in inc.excluded:
                unavailable.append(
                    Reason("failed", f"failed this incident before: {inc.excluded[c.nest_id]}")
                )
            out.append(
                Candidate(
                    c.snapshot(),
                    tuple(c.fleet.others(c.nest_id)),
                    c.drone_position() if c.state.flying else None,
                    self._work_of(c, inc),
                    tuple(unavailable),
                )
            )
        return out

    def _work_of(self, c: NestController, inc: ServedIncident) -> Work | None:
        serving = self.tasking.reserved.get(c.nest_id)
        if serving is not None and serving != inc.id and serving in self.incidents:
            other = self.incidents[serving]
            return Work(other.request.priority, f"incident {serving}")
        if c.nest_id in self.tasking.work:
            return self.tasking.work[c.nest_id]
        if c.flight is not None and c.flight.flight_id in self.our_flights and serving is None:
            return Work(self.settings.idle_priority, "no incident (flight of the dispatcher)")
        return None

    def plan_and_reserve(self, inc: ServedIncident) -> None:
        """Plan (pure, no await) and reserve the chosen nest in the same step."""
        # in a hurry (a launch without asking): skip the checks of nests that cannot win; a proposal
        # shows the commander every nest
        hurry = inc.confirmed_nest is None and (
            inc.confirmed_by is not None or self.settings.launches_automatically(inc.request.priority)
        )
        inc.plan = plan(inc.request, self._candidates(inc), self.fleet.policy, self.settings, prune=hurry)
        inc.action = decide(inc.plan, self.settings, confirmed=inc.confirmed_by is not None)
        if inc.action is Action.LAUNCH:
            nest_id = inc.confirmed_nest if inc.confirmed_nest is not None else None
            option = inc.plan.option(nest_id) if nest_id is not None else inc.plan.chosen
            if option is None:  # the confirmed nest lost its go: take the best there is
                option = inc.plan.chosen
            assert option is not None
            self.reserve(inc, option.nest_id)
            inc.mode = option.mode

    def reserve(self, inc: ServedIncident, nest_id: int) -> None:
        self.release(inc)
        previous = self.tasking.reserved.get(nest_id)
        self.tasking.reserved[nest_id] = inc.id
        inc.nest_id = nest_id
        if previous is not None and previous != inc.id and previous in self.incidents:
            self.incidents[previous].wake.set()  # it lost its drone to a more urgent incident

    def release(self, inc: ServedIncident) -> None:
        if inc.nest_id is not None and self.tasking.reserved.get(inc.nest_id) == inc.id:
            del self.tasking.reserved[inc.nest_id]
        inc.nest_id = None

    def holds(self, inc: ServedIncident) -> bool:
        """The nest reserved for the incident is still reserved for it."""
        return inc.nest_id is not None and self.tasking.reserved.get(inc.nest_id) == inc.id
