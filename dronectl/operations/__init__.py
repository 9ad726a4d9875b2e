"""Operations: the application's one port, which every transport and every automation talks to.

- ``port``: :class:`Command`, :class:`CommandUpdate` and the :class:`Operations` protocol (run a
  command as an actor; read fleet state; subscribe to events), with the desks the automations
  register (:class:`IncidentDesk`, :class:`PatrolDesk`) and the nests' tasking board.
- ``fleet_ops``: :class:`FleetOperations`, the port over a fleet; ``commands``: each method carried
  out with checks, authority, audit and progress (a command's course in ``command_run``, the
  handlers in ``flight_commands`` and ``fleet_commands``); ``views``: state, telemetry and events
  as the port shows them.
- ``models``: the payloads (pydantic); ``topics``: the addressing scheme (MQTT topic names, which
  the HTTP API reuses); ``roles``: who may call what; ``requests``: validation, expiry, roles and
  dedupe of a request (pure); ``gateway``: the command path every transport shares;
  ``audit_outcomes``: refusals and first outcomes in the audit store.
"""
