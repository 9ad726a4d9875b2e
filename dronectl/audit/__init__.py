"""The audit store: an append-only SQLite (WAL) record of commands, nest transitions and flights.

Records go in as frozen dataclasses (records.py), rows come out as plain dicts (rows.py). See
store.py for the API and writer.py for threading and durability.
"""

from dronectl.audit.errors import (
    AuditClosedError,
    AuditError,
    AuditWriteError,
    DuplicateCommandError,
    SchemaError,
    UnknownRecordError,
)
from dronectl.audit.records import (
    CommandOutcome,
    CommandRecord,
    FlightEnd,
    FlightEvent,
    FlightOutcome,
    FlightStart,
    MissionRecord,
    OutcomeRecord,
    TrackSample,
    TransitionRecord,
)
from dronectl.audit.rows import (
    CommandRow,
    EventRow,
    FlightDetail,
    FlightRow,
    MissionRow,
    OutcomeRow,
    TrackRow,
    TransitionRow,
)
from dronectl.audit.schema import SCHEMA_VERSION, migrate
from dronectl.audit.store import AuditStore
from dronectl.audit.writer import Durability

__all__ = [
    "SCHEMA_VERSION",
    "AuditClosedError",
    "AuditError",
    "AuditStore",
    "AuditWriteError",
    "CommandOutcome",
    "CommandRecord",
    "CommandRow",
    "DuplicateCommandError",
    "Durability",
    "EventRow",
    "FlightDetail",
    "FlightEnd",
    "FlightEvent",
    "FlightOutcome",
    "FlightRow",
    "FlightStart",
    "MissionRecord",
    "MissionRow",
    "OutcomeRecord",
    "OutcomeRow",
    "SchemaError",
    "TrackRow",
    "TrackSample",
    "TransitionRecord",
    "TransitionRow",
    "UnknownRecordError",
    "migrate",
]
