"""LeaseKeeper: this instance's nest leases in PostgreSQL, renewed every second or so.

Each tick: the instance's heartbeat, one snapshot of the lease rows (the database's clock), the
pure plan (dronectl/domain/leases.py: rendezvous hashing over the live instances), then the
renewals, acquisitions and releases it says. ``fence(nest)`` is what a write or a command for the
nest must carry: the lease's fencing token, the audit store refuses a stale one.

A paused instance (GC, SIGSTOP, a partition) must not act on a nest it may have lost: every lease
also has a *local* deadline, taken on the monotonic clock *before* the request that granted it
was sent, ``ttl_s - safety_margin_s`` later. Past it, ``fence()`` answers None even if no tick
could run -- so an instance waking from a pause stops acting at once, before it has learnt from
the database that the nest was taken over. Releases stop local use first, then free the row.

With ``lead=True`` the keeper also bids for the automations leader's lease (key ``AUTOMATIONS``,
dronectl/domain/leases.py) in the same tick, with the same local deadline and fencing:
``leading()``, ``lead_fence()``; ``wait_held(AUTOMATIONS)`` and ``wait_lost(AUTOMATIONS)`` gate the
automations as the nests' gate their controllers (dronectl/app/leader.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from dronectl.audit import AuditError, Fence
from dronectl.audit.leases import LeaseBook
from dronectl.domain.leases import AUTOMATIONS, Lease, plan_leases

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    ttl_s: float = 5.0  # a lease not renewed for this long is taken over
    renew_interval_s: float = 1.0
    orphan_grace_s: float = 2.0  # then any instance takes an expired nest the preferred one leaves
    safety_margin_s: float = 1.0  # stop acting this long before the lease would run out

    def __post_init__(self) -> None:
        if not 0 < self.renew_interval_s < self.ttl_s - self.safety_margin_s:
            raise ValueError(
                f"lease renewal every {self.renew_interval_s} s must come well within the lease"
                f" ({self.ttl_s} s less a {self.safety_margin_s} s margin)"
            )


@dataclass(slots=True)
class _Held:
    lease: Lease
    deadline_mono_s: float


Listener = Callable[[int, Fence | None], None]  # (nest, its fence now, or None: lost or released)


class LeaseKeeper:
    def __init__(
        self,
        book: LeaseBook,
        instance_id: str,
        nest_ids: Iterable[int],
        settings: LeaseSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        info: Mapping[str, Any] | None = None,
        lead: bool = False,
    ) -> None:
        self.book = book
        self.instance_id = instance_id
        self.nest_ids = tuple(sorted(nest_ids))
        self.settings = settings or LeaseSettings()
        self.monotonic = monotonic
        self.info = dict(info or {})
        self.lead = lead  # a candidate for the automations leader
        self.listeners: list[Listener] = []
        self._held: dict[int, _Held] = {}
        self._last_token: dict[int, int] = {}  # the token held last per nest, kept when lost (acquire)
        self.renewals = 0
        self.takeovers = 0
        self.db_ok = False
        self._changed = asyncio.Event()

    # ---- what the rest of the instance asks -------------------------------------------------------

    def fence(self, nest_id: int) -> Fence | None:
        """The fence to act on ``nest_id`` with, or None: not ours, or perhaps not ours any more."""
        held = self._held.get(nest_id)
        if held is None or self.monotonic() >= held.deadline_mono_s:
            return None
        return Fence(nest_id, self.instance_id, held.lease.token)

    def held(self, nest_id: int) -> bool:
        return self.fence(nest_id) is not None

    def owned(self) -> list[int]:
        """The nests this instance may act on now (the automations lease is not a nest)."""
        return [n for n in self._held if n != AUTOMATIONS and self.fence(n) is not None]

    def lead_fence(self) -> Fence | None:
        """The fence the automations' writes carry, or None: this instance is not (surely) the leader."""
        return self.fence(AUTOMATIONS)

    def leading(self) -> bool:
        return self.lead_fence() is not None

    async def wait_held(self, nest_id: int) -> None:
        """Return once this instance holds ``nest_id`` (the fleet starts its controller then)."""
        while self.fence(nest_id) is None:
            self._changed.clear()
            await self._changed.wait()

    async def wait_lost(self, nest_id: int) -> None:
        """Return once this instance may no longer act on ``nest_id``: lost, released, or its
        local deadline passed (a timer, not a tick: a woken instance stops at once)."""
        while True:
            held = self._held.get(nest_id)
            left_s = 0.0 if held is None else held.deadline_mono_s - self.monotonic()
            if left_s <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left_s):
                    await self._changed.wait()

    async def wait_owned(self, predicate: Callable[[list[int]], bool], timeout_s: float) -> None:
        """Wait until ``predicate(self.owned())`` holds (TimeoutError after ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.owned()):
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.renew_interval_s):
                        await self._changed.wait()

    # ---- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick every ``renew_interval_s`` until cancelled; a database error skips a tick."""
        while True:
            started = self.monotonic()
            try:
                await self.tick()
                self.db_ok = True
            except AuditError as exc:
                self.db_ok = False
                log.warning("lease.tick_failed", instance=self.instance_id, error=str(exc))
            self._expire_locally()
            delay = self.settings.renew_interval_s - (self.monotonic() - started)
            await asyncio.sleep(max(0.0, delay))  # a period, not a wait for state

    async def tick(self) -> None:
        s = self.settings
        await self.book.heartbeat(self.instance_id, s.ttl_s, self.info)
        snap = await self.book.snapshot()
        for nest_id, held in list(self._held.items()):  # lost behind our back (paused, partitioned)
            row = snap.leases.get(nest_id)
            if row is None or row.owner != self.instance_id or row.token != held.lease.token:
                self._drop(nest_id, "taken over" if row is not None else "gone")
        plan = plan_leases(
            self.instance_id,
            self.nest_ids,
            snap.live_instances,
            snap.leases,
            snap.now_unix_s,
            s.orphan_grace_s,
            lead=self.lead,
        )
        for nest_id in sorted(plan.release):
            mine = self._held.get(nest_id)
            self._drop(nest_id, "rebalanced")  # stop acting first, then free the row
            await self.book.release(mine.lease if mine is not None else snap.leases[nest_id])
        sent = self.monotonic()
        renew = [n for n in plan.renew if n in self._held]
        acquire = sorted(plan.acquire | {n for n in plan.renew if n not in self._held})
        renewed = await asyncio.gather(*(self.book.renew(self._held[n].lease, s.ttl_s) for n in renew))
        for nest_id, lease in zip(renew, renewed, strict=True):
            if lease is None:
                self._drop(nest_id, "renewal refused")
            else:
                self._held[nest_id].lease = lease
                self._held[nest_id].deadline_mono_s = sent + s.ttl_s - s.safety_margin_s
                self.renewals += 1
        taken = await asyncio.gather(
            *(self.book.acquire(n, self.instance_id, s.ttl_s, self._last_token.get(n)) for n in acquire)
        )
        for nest_id, lease in zip(acquire, taken, strict=True):
            if lease is not None:
                self._gain(nest_id, lease, snap.leases.get(nest_id), sent + s.ttl_s - s.safety_margin_s)

    async def leave(self) -> None:
        """A clean stop: stop acting on every nest, then free them and the heartbeat at once."""
        for nest_id in list(self._held):
            self._drop(nest_id, "instance stopping")
        await self.book.leave(self.instance_id)

    # ---- bookkeeping ------------------------------------------------------------------------------

    def _gain(self, nest_id: int, lease: Lease, before: Lease | None, deadline_mono_s: float) -> None:
        self._held[nest_id] = _Held(lease, deadline_mono_s)
        self._last_token[nest_id] = lease.token
        if before is not None and before.owner != self.instance_id and nest_id != AUTOMATIONS:
            self.takeovers += 1  # nests taken over (the metric); the leader's lease is not one
        log.info(
            "lease.acquired" if nest_id != AUTOMATIONS else "lease.leading",
            instance=self.instance_id,
            nest=nest_id,
            token=lease.token,
            previous_owner=None if before is None else before.owner,
        )
        self._notify(nest_id)

    def _drop(self, nest_id: int, why: str) -> None:
        held = self._held.pop(nest_id, None)
        if held is not None:
            log.warning(
                "lease.lost" if nest_id != AUTOMATIONS else "lease.leader_lost",
                instance=self.instance_id,
                nest=nest_id,
                token=held.lease.token,
                why=why,
            )
            self._notify(nest_id)

    def _expire_locally(self) -> None:
        now = self.monotonic()
        for nest_id, held in list(self._held.items()):
            if now >= held.deadline_mono_s:
                self._drop(nest_id, "not renewed in time")

    def _notify(self, nest_id: int) -> None:
        self._changed.set()
        fence = self.fence(nest_id)
        for listener in list(self.listeners):
            listener(nest_id, fence)
