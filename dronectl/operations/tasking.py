"""Which automation each nest's drone works for, shared by the automations through the port.

Incident dispatch reserves a nest for an incident; another automation (a patrol) says what its
drone flies for, so that a more urgent incident may take it over. Plain state, no I/O.
"""

from __future__ import annotations

from dronectl.domain.dispatch import Work


class Tasking:
    def __init__(self) -> None:
        self.reserved: dict[int, str] = {}  # nest -> the incident it is reserved for
        self.work: dict[int, Work] = {}  # nest -> what another automation's flight is for

    def serving(self, nest_id: int) -> str | None:
        """The incident the nest is reserved for (its drone is the dispatcher's now), or None."""
        return self.reserved.get(nest_id)

    def set_work(self, nest_id: int, work: Work | None) -> None:
        """What the nest's drone flies for (None when that automation stops)."""
        if work is None:
            self.work.pop(nest_id, None)
        else:
            self.work[nest_id] = work
