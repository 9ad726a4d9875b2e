"""The WebSocket side: state snapshots, telemetry, events and command progress to every page.

One subscription to the controller's updates feeds every connected page (a message is serialised
once, then queued to each). Telemetry is sampled at the MQTT API's rates while someone listens;
a stale sample is dropped, never sent late. Command progress goes to the pages of the actor who
sent the command. A page that cannot keep up (its queue fills) is disconnected; it reconnects and
starts again from fresh snapshots, which is better than showing a past that piles up.

Every message is ``{"type": <hello|state|telemetry|event|progress>, "data": {...}}``. A page that
connects gets, after the states, the latest ``congestion`` event of each road stretch (as MQTT
retains ``{root}/traffic/{stretch}``), so its map shows the traffic at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel

from dronectl.operations.models import AIRBORNE_PHASES, Actor, Event, EventKind, NestState, Progress
from dronectl.operations.port import Controller
from dronectl.transports.web.auth import WS_PROTOCOL

log = structlog.get_logger("dronectl.transports.web.updates")

QUEUE_MESSAGES = 512
_TELEMETRY_TICK_MAX_S = 0.25


@dataclass(frozen=True)
class TelemetryRates:
    airborne_hz: float = 2.0
    docked_hz: float = 0.2
    max_age_s: float = 3.0


def message(kind: str, model: BaseModel) -> str:
    return f'{{"type":{json.dumps(kind)},"data":{model.model_dump_json()}}}'


@dataclass(eq=False)
class _Page:
    actor: Actor
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MESSAGES))
    overflowed: bool = False

    def offer(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # room for the end marker
            self.queue.put_nowait(None)


class UpdatesHub:
    """Fans the controller's updates out to WebSocket pages. Run :meth:`run` in a task."""

    def __init__(
        self,
        controller: Controller,
        rates: TelemetryRates,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.controller = controller
        self.rates = rates
        self.clock = clock
        self.nest_ids = tuple(controller.nest_ids())
        self._pages: set[_Page] = set()
        self._listening = asyncio.Event()
        self._traffic: dict[str, str] = {}  # stretch id -> its latest congestion event, as sent

    @property
    def page_count(self) -> int:
        return len(self._pages)

    # --- fan-out ----------------------------------------------------------------------------

    def broadcast(self, text: str) -> None:
        for page in list(self._pages):
            page.offer(text)

    async def publish_event(self, event: Event) -> None:
        """An event from elsewhere (a refused command): the gateway's sink for this transport."""
        self.broadcast(message("event", event))

    async def send_progress(self, actor_id: str, progress: Progress) -> None:
        text = message("progress", progress)
        for page in list(self._pages):
            if page.actor.id == actor_id:
                page.offer(text)

    # --- background -------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the controller and send telemetry, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(), name="web.updates")
            tasks.create_task(self._telemetry(), name="web.telemetry")

    async def _follow(self) -> None:
        async for item in self.controller.updates():
            traffic = isinstance(item, Event) and item.kind is EventKind.CONGESTION
            if not self._pages and not traffic:
                continue
            if isinstance(item, NestState):
                self.broadcast(message("state", item))
            else:
                text = message("event", item)
                stretch = item.data.get("stretch_id")
                if traffic and isinstance(stretch, str):
                    self._traffic[stretch] = text
                self.broadcast(text)

    async def _telemetry(self) -> None:
        airborne_s = 1.0 / self.rates.airborne_hz
        docked_s = 1.0 / self.rates.docked_hz
        tick_s = min(_TELEMETRY_TICK_MAX_S, airborne_s / 2, docked_s / 2)
        last_sent: dict[int, float] = {}
        while True:
            await self._listening.wait()
            now = time.monotonic()
            for nest_id in self.nest_ids:
                airborne = self.controller.snapshot(nest_id).phase in AIRBORNE_PHASES
                interval_s = airborne_s if airborne else docked_s
                if now - last_sent.get(nest_id, -interval_s) < interval_s:
                    continue
                sample = self.controller.telemetry(nest_id)
                if sample is None or self.clock() - sample.at.timestamp() > self.rates.max_age_s:
                    continue  # nothing current to say; a stale sample is dropped, not sent late
                self.broadcast(message("telemetry", sample))
                last_sent[nest_id] = now
            await asyncio.sleep(tick_s)

    # --- one page ---------------------------------------------------------------------------

    async def serve(self, request: web.Request, actor: Actor) -> web.WebSocketResponse:
        """The WebSocket of one page: hello, every nest's state, then updates until it closes."""
        # a client that offered its token as a subprotocol (web.auth) is answered "dronectl"
        ws = web.WebSocketResponse(heartbeat=20.0, protocols=(WS_PROTOCOL,))
        await ws.prepare(request)
        page = _Page(actor)
        hello = {"actor": actor.model_dump(mode="json"), "nests": list(self.nest_ids)}
        page.offer(json.dumps({"type": "hello", "data": hello}))
        for nest_id in self.nest_ids:
            page.offer(message("state", self.controller.snapshot(nest_id)))
            sample = self.controller.telemetry(nest_id)
            if sample is not None and self.clock() - sample.at.timestamp() <= self.rates.max_age_s:
                page.offer(message("telemetry", sample))
        for text in self._traffic.values():
            page.offer(text)
        self._pages.add(page)
        self._listening.set()
        log.info("web.page_connected", actor=actor.id, pages=len(self._pages))
        try:
            async with asyncio.TaskGroup() as tasks:
                sender = tasks.create_task(self._send(ws, page), name=f"web.ws[{actor.id}].send")
                await self._receive(ws)
                sender.cancel()
        finally:
            self._pages.discard(page)
            if not self._pages:
                self._listening.clear()
            log.info("web.page_disconnected", actor=actor.id, pages=len(self._pages), lagged=page.overflowed)
        return ws

    async def _send(self, ws: web.WebSocketResponse, page: _Page) -> None:
        while True:
            text = await page.queue.get()
            if text is None:
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; reconnect")
                return
            try:
                await ws.send_str(text)
            except ConnectionError:
                return

    async def _receive(self, ws: web.WebSocketResponse) -> None:
        """Pages say nothing we act on; reading keeps pings answered and notices the close."""
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                return
