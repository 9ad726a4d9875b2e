"""The service's HTTP server (aiohttp): the command-center page, the REST and WebSocket API.

    GET  /                              the command-center page (static; sign in, then it asks for data)
    POST /api/login, /api/logout        sign in with the users file (a session cookie), sign out
    GET  /api/me                        who is signed in (or the token's) and the methods it may call
    GET  /api/config                    the map: nests, geofence, no-fly zones, altitude limits,
                                        road stretches (what each is watched for)
    GET  /api/nests                     every nest's state (the MQTT API's NestState)
    GET  /api/nests/{nest}              one nest's state
    POST /api/nests/{nest}/commands     a nest command (the MQTT request envelope; see web.commands)
    POST /api/commands                  a fleet command
    POST /api/incidents                 report an incident (as on {root}/incidents/{user}; as the sender)
    GET  /api/updates                   WebSocket: states, telemetry, events, progress (web.updates)
    GET  /api/automations               what the automations will do on their own: each patrol kind,
                                        enabled or not, and the next time it acts (patrols.outlook)
    GET  /tiles/{z}/{x}/{y}.{ext}       the base map's tiles from the configured PMTiles file (web.tiles)
    ...                                 whatever the mounts add (the video routes: /whep/..., /video/...;
                                        the coverage layer: /api/coverage, see web.coverage; after
                                        the incident: /api/incidents/{id}/replay, .../evidence,
                                        /api/flights/{id}/replay, /api/replay?since=&until=,
                                        /recordings/..., see web.replay)

Every /api route needs a session (web.sessions) or a bearer token (web.auth); a POST or WebSocket
that another site's page started is refused (its Origin), except on the paths a mount opened to
configured origins (web.cors: the WHEP player of another site, with a token).
:meth:`WebServer.serve` runs it until cancelled.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from dronectl.domain.config import CityConfig
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import FLEET_METHOD_ARGS, NEST_METHOD_ARGS, Incident
from dronectl.operations.port import Controller
from dronectl.operations.roles import may_call
from dronectl.operations.topics import parse_nest_token
from dronectl.transports.web import cors, tiles
from dronectl.transports.web.auth import ACTIONS, Authorize, TokenAuthority
from dronectl.transports.web.commands import HttpCommands
from dronectl.transports.web.sessions import COOKIE, Sessions
from dronectl.transports.web.updates import TelemetryRates, UpdatesHub

log = structlog.get_logger("dronectl.transports.web")

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 64 * 1024

# what a mount adds to the app, e.g. lambda app, authorize: add_video_routes(app, hub, authorize)
Mount = Callable[[web.Application, Authorize], None]


def content_security_policy(tile_origins: Sequence[str] = ()) -> str:
    """Nothing but our own origin, and the force's tile server when the base map is one (xyz).
    MapLibre's worker is a module script of ours (worker-src 'self')."""
    extra = "".join(f" {o}" for o in tile_origins)
    return (
        f"default-src 'self'; script-src 'self'; worker-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob:{extra}; media-src 'self' blob:; connect-src 'self' ws: wss:{extra}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


_CSP_KEY = web.AppKey("csp", str)


INCIDENT_FIELDS = frozenset({"id", "kind", "position", "priority", "text"})


def _bad_request(reasons: list[str]) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": "invalid_incident", "reasons": reasons}), content_type="application/json"
    )


def map_config(config: CityConfig) -> dict[str, Any]:
    """What the page needs to draw the map (nothing about links or credentials)."""
    return {
        "city": config.city,
        "timezone": config.timezone,
        "nests": [{"id": n.id, "name": n.name, "lat": n.lat, "lon": n.lon} for n in config.nests],
        "geofence": {"name": config.geofence.name, "polygon": config.geofence.polygon},
        "no_fly_zones": [{"name": z.name, "polygon": z.polygon} for z in config.no_fly_zones],
        "altitude_ceiling_m": config.safety.altitude_ceiling_m,
        "default_cruise_alt_m": config.safety.default_cruise_alt_m,
        "stretches": _stretches(config),
    }


def _stretches(config: CityConfig) -> list[dict[str, Any]]:
    """The configured road stretches, each with what it is watched for (the patrol kinds)."""
    p = config.patrols
    watched = {"black_ice": set(p.black_ice.stretches), "congestion": set(p.congestion.stretches)}
    return [
        {
            "id": s.id,
            "name": s.name,
            "points": [[lat, lon] for lat, lon in s.points],
            "free_flow_speed_mps": s.free_flow_speed_mps,
            "watch": [kind for kind, ids in watched.items() if s.id in ids],
        }
        for s in p.stretches
    ]


def _cross_site(request: web.Request) -> str | None:
    """The Origin of a request from another site's page, or None. A browser sends Origin with
    every WebSocket handshake and every cross-origin POST; a page of ours has our own host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None  # not a browser acting for a page (curl, a machine client with its token)
    return None if cors.same_host(origin, request.host) else origin


@web.middleware
async def _same_origin(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse a state-changing request or a WebSocket that a page of another site started: a
    visited site must not drive the fleet with the credentials a browser holds for this one."""
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.get(cors.ALLOWED):  # a configured origin on its paths, with a token (web.cors)
        return await handler(request)
    if request.method not in ("GET", "HEAD", "OPTIONS") or websocket:
        origin = _cross_site(request)
        if origin is not None:
            log.warning("http.cross_site_refused", origin=origin[:200], path=request.path)
            raise web.HTTPForbidden(text=f"refused: a request from another site ({origin[:200]})")
    return await handler(request)


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", request.app[_CSP_KEY])
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # our paths are nobody else's business
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith("/static/vendor/"):
        # the map library (1.7 MB): revalidated on each load (304 while unchanged), never fetched again
        response.headers.setdefault("Cache-Control", "no-cache")
    elif request.path == "/" or request.path.startswith(("/static/", "/api/")):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class WebServer:
    def __init__(
        self,
        config: CityConfig,
        controller: Controller,
        gateway: CommandGateway,
        auth: TokenAuthority,
        *,
        rates: TelemetryRates | None = None,
        mounts: Sequence[Mount] = (),
        clock: Callable[[], float] = time.time,
        automations: Callable[[], dict[str, Any]] | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        """``sessions``: logins with the users file (POST /api/login, /api/logout; a session
        cookie), beside the bearer tokens of ``auth``."""
        self.config = config
        self.clock = clock
        self.automations = automations  # what the automations will do on their own, and when
        self.controller = controller
        self.gateway = gateway
        self.auth = auth
        self.sessions = sessions
        if sessions is not None:
            auth.session_actor = lambda request: sessions.actor(request.cookies.get(COOKIE))
        self.updates = UpdatesHub(controller, rates or TelemetryRates(), clock=clock)
        self.commands = HttpCommands(gateway, self.updates, self.spawn)
        self._tasks: set[asyncio.Task[None]] = set()
        self.mounted = len(mounts)
        self.tiles = tiles.open_tiles(config.basemap)  # the base map's PMTiles file (ConfigError if unusable)
        self.app = self._build(mounts)

    def _build(self, mounts: Sequence[Mount]) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_headers, cors.cors, _same_origin])
        app[_CSP_KEY] = content_security_policy(tiles.tile_origins(self.config.basemap))
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        app.router.add_get("/api/me", self._me)
        if self.sessions is not None:
            app.router.add_post("/api/login", self.sessions.login)
            app.router.add_post("/api/logout", self.sessions.logout)
        app.router.add_get("/api/config", self._config)
        app.router.add_get("/api/nests", self._nests)
        app.router.add_get("/api/nests/{nest}", self._nest)
        app.router.add_post("/api/nests/{nest}/commands", self._nest_command)
        app.router.add_post("/api/commands", self._fleet_command)
        app.router.add_post("/api/incidents", self._incident)
        app.router.add_get("/api/updates", self._updates)
        app.router.add_get("/api/automations", self._automations)
        if self.tiles is not None:
            tiles.add_tile_routes(app, self.tiles, self.auth.authorize)
        for mount in mounts:
            mount(app, self.auth.authorize)
        app.cleanup_ctx.append(self._lifespan)
        return app

    # --- lifecycle --------------------------------------------------------------------------

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.gateway.load_recent()
        self.gateway.event_sinks.append(self.updates.publish_event)
        self.spawn(self.updates.run(), "web.updates")
        yield
        self.gateway.event_sinks.remove(self.updates.publish_event)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` owned by the server (cancelled when it stops; a crash is logged)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("web.task_crashed", task=task.get_name(), error=repr(task.exception()))

    async def serve(
        self,
        host: str,
        port: int,
        ready: asyncio.Event | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """Serve on host:port until cancelled; then stop accepting, close connections, clean up.
        ``tls``: (certificate, key) for HTTPS; plain HTTP beyond loopback gets a warning."""
        context: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
            scheme = "https" if context is not None else "http"
            log.info("web.listening", url=f"{scheme}://{host}:{port}/")
            if context is None and host not in ("127.0.0.1", "::1", "localhost"):
                log.warning(
                    "web.plain_http", host=host, message="tokens and sessions cross the network in clear"
                )
            if ready is not None:
                ready.set()
            await asyncio.Event().wait()
        finally:
            try:
                await runner.cleanup()
            except Exception:  # shutdown goes on whatever a handler did; logged
                log.exception("web.cleanup_failed")

    # --- handlers ---------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _me(self, request: web.Request) -> web.Response:
        actor = await self.auth.authorize(request, "state.view")
        methods = [m.value for m in (*NEST_METHOD_ARGS, *FLEET_METHOD_ARGS) if may_call(actor.role, m)]
        # the page's buttons beyond the commands: reporting an incident, exporting its evidence
        methods += [a for a in ("incident.report", "evidence.export") if actor.role in ACTIONS[a]]
        return web.json_response({"actor": actor.model_dump(mode="json"), "methods": methods})

    async def _config(self, request: web.Request) -> web.Response:
        await self.auth.authorize(request, "state.view")
        basemap = tiles.page_basemap(self.config.basemap, self.tiles)
        return web.json_response({**map_config(self.config), "basemap": basemap, "video": self.mounted > 0})

    async def _automations(self, request: web.Request) -> web.Response:
        """Which automations are enabled and the next time each acts (``dronectl.domain.patrols.outlook``,
        composed by the app on the service's clock); none when the app gave nothing."""
        await self.auth.authorize(request, "state.view")
        return web.json_response(self.automations() if self.automations else {"automations": []})

    async def _nests(self, request: web.Request) -> web.Response:
        await self.auth.authorize(request, "state.view")
        states = [self.controller.snapshot(n).model_dump(mode="json") for n in self.gateway.nest_ids]
        return web.json_response(states)

    async def _nest(self, request: web.Request) -> web.Response:
        await self.auth.authorize(request, "state.view")
        nest_id = parse_nest_token(request.match_info["nest"])
        if nest_id is None or nest_id not in self.gateway.nest_ids:
            raise web.HTTPNotFound(text=f"no nest {request.match_info['nest']!r} here")
        state = self.controller.snapshot(nest_id)
        return web.Response(text=state.model_dump_json(), content_type="application/json")

    async def _nest_command(self, request: web.Request) -> web.Response:
        actor = await self.auth.authorize(request, "command.send")
        topic = f"{self.gateway.topics.root}/nests/{request.match_info['nest']}/commands/{actor.id}"
        return await self.commands.submit(topic, await request.read(), actor)

    async def _fleet_command(self, request: web.Request) -> web.Response:
        actor = await self.auth.authorize(request, "command.send")
        return await self.commands.submit(self.gateway.topics.commands(actor.id), await request.read(), actor)

    async def _incident(self, request: web.Request) -> web.Response:
        """An incident from the page: {kind, position: {lat, lon}, priority, text[, id]}. The actor
        is the token's and the time the server's; the dispatcher takes it as one from MQTT."""
        actor = await self.auth.authorize(request, "incident.report")
        try:
            body = json.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise _bad_request(["not JSON: " + (str(exc) or "nested too deeply")]) from None
        unexpected = sorted(set(body) - INCIDENT_FIELDS)
        if unexpected:
            raise _bad_request([f"unexpected field {name!r}" for name in unexpected])
        body.setdefault("id", f"inc-{uuid.uuid4().hex[:12]}")
        body["reported_at"] = datetime.fromtimestamp(self.clock(), tz=UTC).isoformat()
        body["actor"] = actor.model_dump(mode="json")
        try:
            incident = Incident.model_validate_json(json.dumps(body))  # strict, as from MQTT
        except ValidationError as exc:
            raise _bad_request(
                [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
            ) from None
        log.info("http.incident", id=incident.id, kind=incident.kind, actor=actor.id)
        self.controller.report_incident(incident)
        return web.json_response({"id": incident.id, "state": "received"}, status=202)

    async def _updates(self, request: web.Request) -> web.WebSocketResponse:
        actor = await self.auth.authorize(request, "state.view")
        return await self.updates.serve(request, actor)
