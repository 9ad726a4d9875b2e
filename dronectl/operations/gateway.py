"""The one command path every transport shares (MQTT, HTTP): decide, audit refusals, execute.

A transport hands :meth:`CommandGateway.decide` a request as (topic, payload) — the HTTP API
names the same topic the request would have on MQTT — and publishes the decision its own way;
for an :class:`~dronectl.operations.requests.Execute` it runs :meth:`CommandGateway.execute` in a task
it owns. With one gateway shared by both transports, a command id is executed once whichever way
it (or its retry) arrives, and role checks, expiry and audit are the same.

Refusal events go to every transport through :meth:`CommandGateway.announce` (each registers a
sink), so a command refused over HTTP is still seen on ``{root}/events``; likewise the pictures
of what the drones found (:meth:`CommandGateway.announce_snapshot`, ``snapshot_sinks``).

Refusals are recorded in bursts (:mod:`dronectl.operations.refusals`): the first of a sender's run
of refusals for one reason is recorded (and announced) on its own, the rest are counted and the
burst recorded as one row, and announced as one event, when it ends (:meth:`CommandGateway.run_bursts`
writes them). A flood of bad requests so costs a few rows, and every refusal is still accounted
for. An audit write that fails raises: it is never swallowed here.

A copy of a command whose first outcome is pending (:class:`AwaitFirst`) waits for it with
:meth:`CommandGateway.first_outcome_of`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import structlog

from dronectl.domain.errors import DronectlError
from dronectl.domain.roles import Method
from dronectl.operations.models import (
    MAX_TTL_S,
    TERMINAL_STATES,
    ErrorBody,
    ErrorCode,
    Event,
    EventKind,
    Progress,
    Reply,
)
from dronectl.operations.port import Command, Controller
from dronectl.operations.refusals import Burst, BurstKey, RefusalBursts
from dronectl.operations.requests import (
    Decision,
    Delivery,
    Dispatcher,
    Execute,
    Ignore,
    OutcomeStore,
    RefusalLog,
    Refuse,
    Sender,
    first_reply,
    progress,
)
from dronectl.operations.topics import NestCommands, Topics

log = structlog.get_logger("dronectl.operations.gateway")

# run by the automations (incident dispatch, patrols): with several instances, by their leader only
AUTOMATION_METHODS = frozenset(
    {Method.INCIDENT_CONFIRM, Method.PATROL_START, Method.PATROL_STOP, Method.PATROL_LIST}
)

STORE_LOOKUPS_PER_S = 20  # looking up very old ids (repeats from before load_recent) in the store
BURST_CHECK_S = 0.25  # how often ended refusal bursts are looked for


class RefusalNotRecordedError(DronectlError):
    """A refusal the audit store could not record (the store's error is the cause). It carries
    the decision, so the sender is still answered; the error is the caller's to log."""

    def __init__(self, decision: Refuse) -> None:
        self.decision = decision
        super().__init__(f"refusal of {decision.reply.id!r} not recorded in the audit store")


@runtime_checkable
class BurstLog(Protocol):
    """Where a burst of refusals is recorded as one row."""

    async def record_refusal_burst(self, burst: Burst) -> None: ...


EventSink = Callable[[Event], Awaitable[None]]
ReplySink = Callable[[Reply], Awaitable[None]]
ProgressSink = Callable[[Progress], Awaitable[None]]
SnapshotSink = Callable[[int, str, bytes], Awaitable[None]]  # (nest, snapshot id, JPEG)


class CommandGateway:
    def __init__(
        self,
        controller: Controller,
        topics: Topics,
        *,
        clock: Callable[[], float] = time.time,
        outcomes: OutcomeStore | None = None,
        dedupe_memory: int = 10_000,
    ) -> None:
        self.controller = controller
        self.topics = topics
        self.clock = clock
        self.outcomes = outcomes
        self.nest_ids = tuple(controller.nest_ids())
        self.dispatcher = Dispatcher(topics, self.nest_ids, clock, memory=dedupe_memory)
        self.event_sinks: list[EventSink] = []
        self.snapshot_sinks: list[SnapshotSink] = []
        self.bursts = RefusalBursts()
        self._bursts_writing = 0
        self._loaded = False
        self._loaded_since = 0.0  # first outcomes received since then are all in memory
        self._lookups: tuple[int, int] = (0, 0)  # (second, lookups in it)
        self._firsts: dict[str, asyncio.Future[Reply]] = {}  # pending first outcomes awaited
        # several instances (docs/deployment.md): whether this one holds a nest now; a request for
        # a nest another instance holds is that instance's to answer, not recorded here. None: all.
        self.holds: Callable[[int], bool] | None = None
        # several instances: whether this one leads the automations now; incident.confirm and
        # patrol.* are the leader's to run (the others would refuse them: not running here)
        self.leads: Callable[[], bool] | None = None
        # several instances: told when this instance gains a nest (the transports then decide the
        # requests for it they kept while another instance, or none, held it)
        self.gained_sinks: list[Callable[[int], None]] = []

    def nest_gained(self, nest_id: int) -> None:
        """This instance holds ``nest_id`` now (a lease listener calls it)."""
        for sink in list(self.gained_sinks):
            sink(nest_id)

    async def answered_elsewhere(self, command_id: str) -> bool:
        """Whether ``command_id`` has an outcome here or in the shared store (another instance
        took it while it held the nest): a request kept for a nest gained since is then left
        alone, never run twice nor answered twice."""
        if self.dispatcher.knows(command_id):
            return True
        return self.outcomes is not None and await self.outcomes.first_outcome(command_id) is not None

    async def load_recent(self) -> None:
        """Load the first outcomes of every command that could still run (received within the
        longest ttl plus the clock skew allowed), so a repeat of one from before a restart is
        answered, not run again, without a store lookup on every new command. Once per gateway."""
        if self.outcomes is None or self._loaded:
            return
        self._loaded = True
        horizon_s = MAX_TTL_S + self.dispatcher.max_future_skew_s + 60.0
        self._loaded_since = self.clock() - horizon_s
        for command_id, reply in await self.outcomes.recent(self._loaded_since):
            self.dispatcher.remember(command_id, reply)

    async def decide(
        self,
        topic: str,
        payload: bytes,
        sender: Sender | None,
        *,
        retained: bool = False,
        received_at_unix_s: float | None = None,
        delivery: Delivery | None = None,
    ) -> Decision:
        """The dispatcher's decision for a request from ``sender`` (the authenticated user; None:
        the topic names no user of ours), judged at ``received_at_unix_s`` (default: now); a
        refusal is recorded in the audit store, alone or counted in its burst (``Refuse.alone``).
        Raises RefusalNotRecordedError (with the decision; the store's error as its cause) when
        the store could not record it."""
        received = self.clock() if received_at_unix_s is None else received_at_unix_s
        if self.holds is not None:
            where = self.topics.parse(topic, self.nest_ids)
            if isinstance(where, NestCommands) and not self.holds(where.nest_id):
                return Ignore(
                    f"nest {where.nest_id} is controlled by another dronectl instance now",
                    nest_elsewhere=where.nest_id,
                )
        decision = self.dispatcher.decide(
            topic, payload, sender, retained=retained, received_at_unix_s=received, delivery=delivery
        )
        if (
            isinstance(decision, Execute)
            and decision.command.method in AUTOMATION_METHODS
            and self.leads is not None
            and not self.leads()
        ):
            method = decision.command.method.value
            return Ignore(f"{method} is run by the automations leader, another dronectl instance")
        if isinstance(decision, Refuse) and self._worth_a_lookup(decision):
            assert decision.request is not None and self.outcomes is not None
            # a repeat of a command older than what load_recent() loaded (it would be refused as
            # expired): answer it with its first outcome. Commands that can run were all loaded.
            first = await self.outcomes.first_outcome(decision.request.id)
            if first is not None:
                self.dispatcher.remember(decision.request.id, first)
                return self.dispatcher.decide(
                    topic, payload, sender, retained=retained, received_at_unix_s=received, delivery=delivery
                )
        if isinstance(decision, Refuse):
            return await self._record_refusal(topic, decision, sender, received)
        return decision

    def _worth_a_lookup(self, decision: Refuse) -> bool:
        """Whether a refused request may be a repeat of a command from before what load_recent()
        loaded: issued before that, and within the lookups allowed per second (a flood of old ids
        must not become a flood of store queries; past that, such a repeat is refused as expired,
        which it is too)."""
        request = decision.request
        if request is None or self.outcomes is None or decision.reply.error is None:
            return False
        if decision.reply.error.code is not ErrorCode.EXPIRED:
            return False
        if request.issued_at.timestamp() >= self._loaded_since:
            return False
        second = int(time.monotonic())
        start, used = self._lookups
        if start != second:
            start, used = second, 0
        if used >= STORE_LOOKUPS_PER_S:
            return False
        self._lookups = (start, used + 1)
        return True

    async def _record_refusal(
        self, topic: str, decision: Refuse, sender: Sender | None, received: float
    ) -> Refuse:
        error = decision.reply.error
        code = error.code.value if error is not None else "refused"
        # a request that could not be read carries no sender: the authenticated one it came from
        own = sender if sender is not None and sender.user == self.topics.sender(topic) else None
        user = decision.user or (own.user if own else None) or self.topics.sender(topic) or "unknown"
        role = decision.role or (own.role.value if own else "unknown")
        channel = decision.channel if decision.request is not None or own is None else own.channel.value
        key = BurstKey(user, role, channel, code)
        request = decision.request
        message = error.message if error is not None else ""
        command_id = request.id if request is not None else None
        alone = self.bursts.add(key, received, command_id, decision.event.nest_id, message)
        if not alone:
            return dataclasses.replace(decision, alone=False)
        if request is not None and isinstance(self.outcomes, RefusalLog):
            try:
                await self.outcomes.record_refusal(
                    request, user, role, channel, decision.event.nest_id, decision.reply
                )
            except Exception as exc:
                raise RefusalNotRecordedError(decision) from exc
        return decision

    def refuse_unread(self, user: str, role: str, channel: str, received_at_unix_s: float) -> None:
        """A request dropped unread (a transport's backlog was full): refused, counted in its
        sender's burst of such refusals (no id to record or answer it by)."""
        key = BurstKey(user, role, channel, ErrorCode.BUSY.value)
        message = "not read: the backlog was full and newer requests came first"
        self.bursts.add(key, received_at_unix_s, None, None, message)

    async def flush_bursts(self, *, everything: bool = False) -> list[Burst]:
        """Record the refusal bursts that have ended (``everything``: all, at shutdown) and
        announce each as one event. Raises what the audit store raises (the burst is lost then,
        and the error is the caller's to log: it is never swallowed)."""
        ended = self.bursts.flush() if everything else self.bursts.due(self.clock())
        self._bursts_writing += 1
        try:
            for burst in ended:
                if isinstance(self.outcomes, BurstLog):
                    await self.outcomes.record_refusal_burst(burst)
                await self.announce(_burst_event(burst))
        finally:
            self._bursts_writing -= 1
        return ended

    def refusals_pending(self) -> bool:
        """Whether counted refusals still wait to be recorded (a burst open, or being written)."""
        return self.bursts.flush_pending() or self._bursts_writing > 0

    async def run_bursts(self) -> None:
        """Record ended refusal bursts until cancelled, then every open one. A failed write is
        logged as an error with its traceback and the loop goes on (the audit store may be back
        for the next burst)."""
        try:
            while True:
                await asyncio.sleep(BURST_CHECK_S)
                try:
                    await self.flush_bursts()
                except Exception:  # an audit outage must not stop the loop; logged, never silent
                    log.exception("gateway.burst_record_failed")
        finally:
            if self.bursts.flush_pending():
                try:
                    await self.flush_bursts(everything=True)
                except Exception:  # stopping: nothing left to retry with; logged, never silent
                    log.exception("gateway.burst_record_failed")

    async def first_outcome_of(self, command_id: str) -> Reply:
        """The first outcome of ``command_id`` once it exists (a command that runs)."""
        known = self.dispatcher.first(command_id)
        if known is not None:
            return known
        future = self._firsts.get(command_id)
        if future is None:
            future = self._firsts[command_id] = asyncio.get_running_loop().create_future()
        return await asyncio.shield(future)

    def _settle(self, command_id: str, first: Reply) -> None:
        self.dispatcher.remember(command_id, first)
        future = self._firsts.pop(command_id, None)
        if future is not None and not future.done():
            future.set_result(first)

    async def announce(self, event: Event) -> None:
        """An event of the command path (a refusal) to every transport."""
        for sink in list(self.event_sinks):
            try:
                await sink(event)
            except Exception:  # one transport's failure must not stop the others; logged
                log.exception("gateway.sink_failed", sink=repr(sink))

    async def announce_snapshot(self, nest_id: int, snapshot_id: str, jpeg: bytes) -> None:
        """A picture a drone took of what it found (the lookout's), to every transport that
        publishes pictures (MQTT: ``{root}/nests/{nest}/snapshots/{id}``)."""
        for sink in list(self.snapshot_sinks):
            try:
                await sink(nest_id, snapshot_id, jpeg)
            except Exception:  # one transport's failure must not stop the others; logged
                log.exception("gateway.snapshot_sink_failed", sink=repr(sink))

    async def execute(self, command: Command, on_reply: ReplySink, on_progress: ProgressSink) -> None:
        """Relay the controller's updates: the first as the Reply, then (if accepted) as Progress.
        The controller's iterator is consumed to its end; nothing is relayed after a final state."""
        bound = log.bind(id=command.id, method=command.method.value, nest=command.nest_id)
        first: Reply | None = None
        finished = False
        try:
            async for update in self.controller.execute(command):
                if first is None:
                    first = first_reply(command, update)
                    self._settle(command.id, first)
                    bound.info("api.command.first_outcome", ok=first.ok)
                    await on_reply(first)
                if not first.ok or finished:
                    continue
                finished = update.state in TERMINAL_STATES
                await on_progress(progress(command, update, self.clock()))
        except Exception:  # noqa: BLE001 - a controller bug must be answered, not kill the API; logged
            bound.exception("api.command.crashed")
        if first is None:
            message = "the controller gave no answer to this command"
            reply = Reply(id=command.id, ok=False, error=ErrorBody(code=ErrorCode.INTERNAL, message=message))
            self._settle(command.id, reply)
            await on_reply(reply)


def _burst_event(burst: Burst) -> Event:
    key = burst.key
    span_s = burst.last_at_unix_s - burst.first_at_unix_s
    nest_id = next(iter(burst.nest_ids)) if len(burst.nest_ids) == 1 else None
    return Event(
        kind=EventKind.COMMAND_REJECTED,
        at=datetime.fromtimestamp(burst.last_at_unix_s, tz=UTC),
        nest_id=nest_id,
        message=f"{burst.count} more requests from {key.user} rejected ({key.code}) in {span_s:.1f} s: "
        f"{burst.message}",
        data={
            "code": key.code,
            "count": burst.count,
            "user": key.user,
            "first_at": datetime.fromtimestamp(burst.first_at_unix_s, tz=UTC).isoformat(),
            "sample_ids": list(burst.sample_ids),
        },
    )
