"""The audit store's errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dronectl.errors import DronectlError

if TYPE_CHECKING:
    from dronectl.audit.rows import OutcomeRow


class AuditError(DronectlError):
    """Root of the audit store's errors."""


class AuditClosedError(AuditError):
    """The store is closed (or failed to open); nothing was recorded."""


class AuditWriteError(AuditError):
    """The record was not committed (disk full, I/O error, database locked too long, constraint...)."""


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
