"""Composition helpers: the operations port with the automations that answer through it.

``dronectl up`` (``app.up``) builds everything with these; tests and benches use them to get the
same wiring without the transports.
"""

from __future__ import annotations

from typing import Any

from dronectl.automations.incidents.dispatcher import IncidentDispatcher
from dronectl.domain.dispatch_settings import DEFAULT_SETTINGS, DispatchSettings
from dronectl.nest.fleet import Fleet
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.port import Operations


def compose_operations(
    fleet: Fleet, *, dispatch: DispatchSettings = DEFAULT_SETTINGS, **options: Any
) -> FleetOperations:
    """The operations port over ``fleet``, with incident dispatch registered on it (it takes the
    incidents reported through the port and answers ``incident.confirm``)."""
    ops = FleetOperations(fleet, dispatch=dispatch, **options)
    IncidentDispatcher(ops, dispatch)  # registers itself as ops.incidents
    return ops


def incident_dispatcher(ops: Operations) -> IncidentDispatcher:
    """The incident dispatcher registered on ``ops`` (see :func:`compose_operations`)."""
    desk = ops.incidents
    if not isinstance(desk, IncidentDispatcher):
        raise RuntimeError("no incident dispatcher runs on these operations")
    return desk
