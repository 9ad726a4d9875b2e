"""For the people on call and the orchestrator: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

    GET /metrics    Prometheus text format (prometheus-client), see METRICS below
    GET /healthz    200 while the event loop answers (alive); nothing else is checked
    GET /readyz     200 when this instance owns or can own nests: the audit store answers and the
                    MQTT broker accepts a connection; else 503 with the reasons (JSON)

The three are deliberately unauthenticated (an orchestrator's probe and a Prometheus scrape carry
no token) and say nothing an attacker could use: counts and states, no names, no positions, no
credentials. Mounted beside the other routes (``mount``), apart from the token-checked /api.

Nothing here is pushed from the hot paths: commands are counted through the audit store's
observer (every command of every transport and automation passes there), the rest is read when
scraped, after two live probes (the store answers a read, the broker a TCP connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dronectl.transports.web.auth import Authorize

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROBE_TIMEOUT_S = 2.0
LOOP_LAG_PERIOD_S = 0.5
# a command's course, from its first record (accepted) to its last (a launch is minutes)
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


@dataclass(frozen=True, slots=True)
class Probes:
    """What the endpoints read, as functions, so the web layer knows no fleet or lease internals."""

    instance_id: str
    nest_ids: Sequence[int]
    link_up: Callable[[int], bool]  # the nest's MAVLink link to dock and drone
    owned: Callable[[], Sequence[int]]  # nests this instance holds (all of them without leases)
    store_ping: Callable[[], Awaitable[bool]]
    broker: tuple[str, int]  # host, port
    lease_counts: Callable[[], tuple[int, int]] | None = None  # renewals, takeovers so far
    leading: Callable[[], bool] | None = None  # it runs the automations (None: one instance, always)


class Health:
    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter(
            "dronectl_commands",
            "Commands recorded, by method and outcome (first and final outcomes)",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dronectl_command_duration_seconds",
            "From a command's acceptance to its final outcome",
            ["method"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.loop_lag_s = 0.0
        self.store_ok = False
        self.broker_ok = False
        self.registry.register(_State(self))

    def observe_command(self, method: str, outcome: str, latency_s: float | None) -> None:
        """An AuditStore command observer (store.command_observers)."""
        self.commands.labels(method, outcome).inc()
        if latency_s is not None:
            self.latency.labels(method).observe(latency_s)

    def mount(self, app: web.Application, authorize: Authorize) -> None:
        """A WebServer mount; ``authorize`` is not used: these routes carry no token (module doc)."""
        del authorize
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.cleanup_ctx.append(self._lag_watch)

    async def probe(self) -> list[str]:
        """Run both live probes; the reasons this instance is not ready (empty: ready)."""
        self.store_ok, self.broker_ok = await asyncio.gather(self._store(), self._broker())
        reasons = []
        if not self.store_ok:
            reasons.append("the audit store does not answer")
        if not self.broker_ok:
            host, port = self.probes.broker
            reasons.append(f"the MQTT broker {host}:{port} does not accept a connection")
        return reasons

    async def _store(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                return await self.probes.store_ping()
        except TimeoutError:
            return False

    async def _broker(self) -> bool:
        host, port = self.probes.broker
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.probe()
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True, "instance": self.probes.instance_id})

    async def _readyz(self, request: web.Request) -> web.Response:
        reasons = await self.probe()
        body = {"ready": not reasons, "instance": self.probes.instance_id, "reasons": reasons}
        return web.Response(
            status=200 if not reasons else 503, text=json.dumps(body), content_type="application/json"
        )

    async def _lag_watch(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._watch_loop_lag(), name="web.loop_lag")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _watch_loop_lag(self) -> None:
        """How late the loop wakes a sleeper: what every other task waits on top of its own work."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(LOOP_LAG_PERIOD_S)
            self.loop_lag_s = max(0.0, time.monotonic() - started - LOOP_LAG_PERIOD_S)


class _State(Collector):
    """The gauges and lease counters, read at each scrape."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        h, p = self.health, self.health.probes
        owned = set(p.owned())
        yield GaugeMetricFamily("dronectl_nests_owned", "Nests this instance controls now", value=len(owned))
        links = GaugeMetricFamily("dronectl_nest_link_up", "MAVLink link to the nest (1 up)", labels=["nest"])
        for nest_id in p.nest_ids:
            if nest_id in owned:
                links.add_metric([str(nest_id)], 1.0 if p.link_up(nest_id) else 0.0)
        yield links
        if p.lease_counts is not None:
            renewals, takeovers = p.lease_counts()
            yield CounterMetricFamily("dronectl_lease_renewals", "Nest lease renewals", value=renewals)
            yield CounterMetricFamily(
                "dronectl_lease_takeovers", "Nests taken over from another", value=takeovers
            )
        leading = p.leading() if p.leading is not None else True
        yield GaugeMetricFamily(
            "dronectl_automations_leader",
            "This instance runs incident dispatch and the patrols (1; one instance does)",
            value=float(leading),
        )
        yield GaugeMetricFamily("dronectl_store_up", "The audit store answers (1)", value=float(h.store_ok))
        yield GaugeMetricFamily("dronectl_broker_up", "The MQTT broker accepts (1)", value=float(h.broker_ok))
        yield GaugeMetricFamily("dronectl_event_loop_lag_seconds", "Event-loop lag", value=h.loop_lag_s)
