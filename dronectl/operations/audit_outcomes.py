"""The audit store as the dispatcher's memory of first outcomes (so a restart forgets no command id),
and the record of every refusal: alone, or counted in a burst recorded as one row.

A burst's row is a ``commands`` row with method ``refusals`` (BURST_METHOD), id ``refusals:<hex>``,
the sender as actor, outcome ``refused`` with the burst's error code, and as args what a reader
needs: ``count`` (how many requests), ``first_at_unix_s``, ``last_at_unix_s``, ``sample_ids`` (up
to 20 of the refused ids) and ``nest_ids``. Write errors are raised to the caller, never swallowed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import structlog

from dronectl.audit import AuditStore, CommandOutcome, CommandRecord, DuplicateCommandError
from dronectl.operations.models import ErrorBody, ErrorCode, Reply, Request
from dronectl.operations.refusals import Burst

log = structlog.get_logger(__name__)

BURST_METHOD = "refusals"
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
    """Implements dronectl.operations.requests.OutcomeStore and RefusalLog on the audit store: a request
    refused before it reached the controller (expired, forbidden, ...) is recorded too."""

    def __init__(self, store: AuditStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def record_refusal(
        self, request: Request, user: str, role: str, channel: str, nest_id: int | None, reply: Reply
    ) -> None:
        error = reply.error
        message = None
        if error is not None:
            message = error.message + (": " + "; ".join(error.reasons) if error.reasons else "")
        record = CommandRecord(
            command_id=request.id,
            at_unix_s=self._clock(),
            actor_id=user,  # the authenticated sender, never what the envelope claims
            actor_role=role,
            nest_id=nest_id,
            method=request.method,
            args=request.args,
            outcome=CommandOutcome.REFUSED,
            code=error.code.value if error is not None else None,
            message=message,
            channel=channel,
        )
        try:
            await self._store.record_command(record)
        except DuplicateCommandError:
            pass  # recorded with its first outcome already
        except Exception as exc:
            log.error("api.audit_refusal_failed", id=request.id, error=str(exc))
            raise  # the caller's to handle: a refusal that could not be recorded is never silent

    async def record_refusal_burst(self, burst: Burst) -> None:
        """One row for a burst of refusals (see the module's docstring)."""
        key = burst.key
        nest_ids = sorted(burst.nest_ids)
        record = CommandRecord(
            command_id=f"{BURST_METHOD}:{uuid.uuid4().hex}",
            at_unix_s=burst.last_at_unix_s,
            actor_id=key.user,
            actor_role=key.role,
            nest_id=nest_ids[0] if len(nest_ids) == 1 else None,
            method=BURST_METHOD,
            args={
                "count": burst.count,
                "first_at_unix_s": burst.first_at_unix_s,
                "last_at_unix_s": burst.last_at_unix_s,
                "sample_ids": list(burst.sample_ids),
                "nest_ids": nest_ids,
            },
            outcome=CommandOutcome.REFUSED,
            code=key.code,
            message=f"{burst.count} requests refused ({key.code}): {burst.message}",
            channel=key.channel,
        )
        try:
            await self._store.record_command(record)
        except Exception as exc:
            log.error(
                "api.audit_burst_failed", user=key.user, code=key.code, count=burst.count, error=str(exc)
            )
            raise

    async def recent(self, since_unix_s: float) -> list[tuple[str, Reply]]:
        out: list[tuple[str, Reply]] = []
        while True:
            rows = await self._store.commands(since_unix_s=since_unix_s, limit=1000)
            for row in rows:
                first = row["outcomes"][0] if row["outcomes"] else None
                if first is not None:
                    reply = reply_from_outcome(
                        row["command_id"], first["outcome"], first["code"], first["message"]
                    )
                    out.append((row["command_id"], reply))
            if len(rows) < 1000:
                return out
            since_unix_s = rows[-1]["at_unix_s"]  # the next page (the boundary row again is harmless)

    async def first_outcome(self, command_id: str) -> Reply | None:
        row = await self._store.first_outcome(command_id)
        if row is None:
            return None
        return reply_from_outcome(command_id, row["outcome"], row["code"], row["message"])
