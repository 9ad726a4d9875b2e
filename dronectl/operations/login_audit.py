"""Refused logins into the audit store (table ``login_failures``), folded into bursts.

The embedded broker (``mqtt``), the login page (``http``) and the bearer-token check (``token``)
call :meth:`LoginAudit.failed` with the user name tried, the client's address and why; never the
password or the token. :class:`dronectl.domain.login_failures.FailureBursts` decides what is
written now and what is counted; :meth:`LoginAudit.run` (a task of the service) writes the bursts
whose window has passed, and what is left at shutdown. An audit store that cannot write does not
stop a login check: the failure is logged instead.

A real Mosquitto authenticates its clients itself: its refused logins are in its own log, not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from dronectl.audit import AuditError, LoginFailureRecord
from dronectl.domain.login_failures import FailureBurst, FailureBursts

log = structlog.get_logger("dronectl.operations.login_audit")

Sink = Callable[[LoginFailureRecord], Awaitable[None]]
MAX_NAME_CHARS = 64  # a user name tried is kept up to this length (whatever a client sends)


class LoginAudit:
    def __init__(
        self, sink: Sink | None, *, window_s: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        """``sink``: e.g. ``AuditStore.record_login_failure``; None: logged only."""
        self.sink = sink
        self.clock = clock
        self.bursts = FailureBursts(window_s=window_s)

    async def failed(self, channel: str, user: str, remote_addr: str | None, reason: str) -> None:
        now = self.clock()
        burst = self.bursts.failed(channel, user[:MAX_NAME_CHARS], remote_addr or "", reason, now)
        if burst is not None:
            await self._write(burst)

    async def flush(self) -> None:
        """Write the bursts whose window has passed."""
        for burst in self.bursts.due(self.clock()):
            await self._write(burst)

    async def run(self) -> None:
        """Flush every quarter window until cancelled; then write what is left."""
        try:
            while True:
                await asyncio.sleep(self.bursts.window_s / 4)  # a period, not a wait for state
                await self.flush()
        finally:
            for burst in self.bursts.drain():
                await self._write(burst)

    async def _write(self, burst: FailureBurst) -> None:
        log.warning(
            "login.refused",
            channel=burst.channel,
            user=burst.user_name,
            remote=burst.remote_addr,
            reason=burst.reason,
            attempts=burst.attempts,
        )
        if self.sink is None:
            return
        record = LoginFailureRecord(
            at_unix_s=burst.last_at_s,
            channel=burst.channel,
            user_name=burst.user_name,
            remote_addr=burst.remote_addr,
            reason=burst.reason,
            attempts=burst.attempts,
            first_at_unix_s=burst.first_at_s,
        )
        try:
            await self.sink(record)
        except AuditError as exc:
            log.error(
                "login.refused_not_audited", error=str(exc), channel=burst.channel, user=burst.user_name
            )
