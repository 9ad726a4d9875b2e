"""The audit store as the dispatcher's memory of first outcomes (so a restart forgets no command id)."""

from __future__ import annotations

from dronectl.api.models import ErrorBody, ErrorCode, Reply
from dronectl.audit import AuditStore

_OK = {"accepted", "in_progress", "succeeded"}
_DEFAULT_CODE = {"refused": ErrorCode.REFUSED, "cancelled": ErrorCode.FAILED, "failed": ErrorCode.FAILED}


def reply_from_outcome(command_id: str, outcome: str, code: str | None, message: str | None) -> Reply:
    """The reply a recorded first outcome stands for."""
    if outcome in _OK:
        return Reply(id=command_id, ok=True, result={"state": outcome})
    known = {c.value: c for c in ErrorCode}
    error_code = known.get(code or "", _DEFAULT_CODE.get(outcome, ErrorCode.FAILED))
    return Reply(id=command_id, ok=False, error=ErrorBody(code=error_code, message=message or outcome))


class AuditOutcomes:
    """Implements dronectl.api.dispatch.OutcomeStore on the audit store."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def first_outcome(self, command_id: str) -> Reply | None:
        row = await self._store.first_outcome(command_id)
        if row is None:
            return None
        return reply_from_outcome(command_id, row["outcome"], row["code"], row["message"])
