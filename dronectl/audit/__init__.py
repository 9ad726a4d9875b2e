"""The audit store: an append-only record of commands, nest transitions and flights, on SQLite
(WAL; the embedded default) or PostgreSQL (shared by several instances; postgres.py).

Records go in as frozen dataclasses (records.py), rows come out as plain dicts (rows.py). See
store.py for the API and writer.py for threading and durability.
"""

from dronectl.audit.connection import Durability
from dronectl.audit.errors import (
    AuditClosedError,
    AuditError,
    AuditUnavailableError,
    AuditWriteError,
    DuplicateCommandError,
    SchemaError,
    StaleFenceError,
    UnknownRecordError,
)
from dronectl.audit.postgres import is_postgres_url, redact
from dronectl.audit.records import (
    CommandOutcome,
    CommandRecord,
    Fence,
    FlightEnd,
    FlightEvent,
    FlightOutcome,
    FlightStart,
    LoginFailureRecord,
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
    LoginFailureRow,
    MissionRow,
    OutcomeRow,
    TrackRow,
    TransitionRow,
)
from dronectl.audit.schema import SCHEMA_VERSION, migrate
from dronectl.audit.store import AuditStore

__all__ = [
    "SCHEMA_VERSION",
    "AuditClosedError",
    "AuditError",
    "AuditStore",
    "AuditUnavailableError",
    "AuditWriteError",
    "CommandOutcome",
    "CommandRecord",
    "CommandRow",
    "DuplicateCommandError",
    "Durability",
    "EventRow",
    "Fence",
    "FlightDetail",
    "FlightEnd",
    "FlightEvent",
    "FlightOutcome",
    "FlightRow",
    "FlightStart",
    "LoginFailureRecord",
    "LoginFailureRow",
    "MissionRecord",
    "MissionRow",
    "OutcomeRecord",
    "OutcomeRow",
    "SchemaError",
    "StaleFenceError",
    "TrackRow",
    "TrackSample",
    "TransitionRecord",
    "TransitionRow",
    "UnknownRecordError",
    "is_postgres_url",
    "migrate",
    "redact",
]
