"""The audit store's errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dronectl.domain.errors import DronectlError

if TYPE_CHECKING:
    from dronectl.audit.rows import OutcomeRow


class AuditError(DronectlError):
    """Root of the audit store's errors."""


class AuditClosedError(AuditError):
    """The store is closed (or failed to open); nothing was recorded."""


class AuditWriteError(AuditError):
    """The record was not committed (disk full, I/O error, database locked too long, constraint...)."""


class AuditUnavailableError(AuditWriteError):
    """The audit database cannot be reached (PostgreSQL down, connection cut); nothing was recorded.

    The store keeps trying to reconnect; a later record succeeds once the database answers again.
    """


class StaleFenceError(AuditWriteError):
    """A write carried a nest's fencing token that is no longer the current one: the writer lost the
    nest's lease (paused, partitioned) and another instance owns it now; nothing was recorded."""


class SchemaError(AuditError):
    """The file is not an audit database this code can use."""


class DuplicateCommandError(AuditWriteError):
    """A command with this id is already recorded; ``first_outcome`` is the answer it got then."""

    def __init__(self, command_id: str, first_outcome: OutcomeRow) -> None:
        super().__init__(
            f"command {command_id!r} already recorded (first outcome: {first_outcome['outcome']})"
        )
        self.command_id = command_id
        self.first_outcome = first_outcome


class UnknownRecordError(AuditWriteError):
    """A record refers to a command or flight the store has never seen."""
