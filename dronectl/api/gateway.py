"""The one command path every transport shares (MQTT, HTTP): decide, audit refusals, execute.

A transport hands :meth:`CommandGateway.decide` a request as (topic, payload) — the HTTP API
names the same topic the request would have on MQTT — and publishes the decision its own way;
for an :class:`~dronectl.api.dispatch.Execute` it runs :meth:`CommandGateway.execute` in a task
it owns. With one gateway shared by both transports, a command id is executed once whichever way
it (or its retry) arrives, and role checks, expiry and audit are the same.

Refusal events go to every transport through :meth:`CommandGateway.announce` (each registers a
sink), so a command refused over HTTP is still seen on ``{root}/events``; likewise the pictures
of what the drones found (:meth:`CommandGateway.announce_snapshot`, ``snapshot_sinks``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog

from dronectl.api.controller import Command, Controller
from dronectl.api.dispatch import (
    Decision,
    Dispatcher,
    OutcomeStore,
    RefusalLog,
    Refuse,
    first_reply,
    progress,
)
from dronectl.api.models import MAX_TTL_S, TERMINAL_STATES, ErrorBody, ErrorCode, Event, Progress, Reply
from dronectl.api.topics import Topics

log = structlog.get_logger("dronectl.api.gateway")

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
        self._loaded = False

    async def load_recent(self) -> None:
        """Load the first outcomes of every command that could still run (received within the
        longest ttl plus the clock skew allowed), so a repeat of one from before a restart is
        answered, not run again, without a store lookup on every new command. Once per gateway."""
        if self.outcomes is None or self._loaded:
            return
        self._loaded = True
        horizon_s = MAX_TTL_S + self.dispatcher.max_future_skew_s + 60.0
        for command_id, reply in await self.outcomes.recent(self.clock() - horizon_s):
            self.dispatcher.remember(command_id, reply)

    async def decide(self, topic: str, payload: bytes, *, retained: bool = False) -> Decision:
        """The dispatcher's decision; a refused request is recorded in the audit store."""
        decision = self.dispatcher.decide(topic, payload, retained=retained)
        if isinstance(decision, Refuse) and decision.request is not None and self.outcomes is not None:
            # a repeat of a command older than what load_recent() loaded (it would be refused as
            # expired): answer it with its first outcome. Commands that can run were all loaded.
            first = await self.outcomes.first_outcome(decision.request.id)
            if first is not None:
                self.dispatcher.remember(decision.request.id, first)
                decision = self.dispatcher.decide(topic, payload, retained=retained)
        if (
            isinstance(decision, Refuse)
            and decision.request is not None
            and isinstance(self.outcomes, RefusalLog)
        ):
            await self.outcomes.record_refusal(decision.request, decision.event.nest_id, decision.reply)
        return decision

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
                    self.dispatcher.remember(command.id, first)
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
            self.dispatcher.remember(command.id, reply)
            await on_reply(reply)
