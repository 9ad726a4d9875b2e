"""The video side's HTTP routes: WHEP signalling and snapshots.

    POST    /whep/nests/{nest}                  SDP offer (application/sdp) -> 201, SDP answer,
                                                Location: /whep/nests/{nest}/sessions/{id}, ETag
    OPTIONS /whep/nests/{nest}                  204, Accept-Post: application/sdp
    DELETE  /whep/nests/{nest}/sessions/{id}    leave
    PATCH   /whep/nests/{nest}/sessions/{id}    trickle ICE (application/trickle-ice-sdpfrag) -> 204;
                                                an ICE restart -> 422 (open a new session instead);
                                                If-Match other than the session's ETag -> 412
    OPTIONS /whep/nests/{nest}/sessions/{id}    204, Accept-Patch: application/trickle-ice-sdpfrag
    GET     /video/nests/{nest}/snapshot.jpg    JPEG of the stream's latest keyframe

A player on another site of the force's network (``dronectl up --whep-origin``) may use the /whep
routes with a token: CORS preflight, ``Access-Control-Allow-Origin`` and the WHEP headers exposed
(``web.cors``).

Every request is authorized (``video.view``; talk-back also needs ``video.talk``). Refusals
are 4xx with a sentence in plain text: 404 unknown nest or session, 409 no live video (on the
ground, no camera), 400 bad offer (unparsable, no constrained-baseline H.264), 415 not SDP,
503 camera did not start.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from dronectl.transports.web.auth import Authorize
from dronectl.transports.web.cors import CrossOrigin, allow
from dronectl.transports.whep.liveness import LivenessSettings
from dronectl.transports.whep.offer import AudioWish
from dronectl.transports.whep.trickle import SDPFRAG, BadFragment, IceRestart, parse_fragment
from dronectl.transports.whep.whep import WhepSession, WhepSessions
from dronectl.video.errors import BadOffer, CameraUnavailable, NotWatchable, UnknownNest, VideoError
from dronectl.video.hub import VideoHub
from dronectl.video.snapshot import keyframe_to_jpeg

log = structlog.get_logger(__name__)

VIEW = "video.view"
TALK = "video.talk"
SDP = "application/sdp"
SESSIONS = web.AppKey("dronectl.video.sessions", WhepSessions)
CORS_METHODS = ("POST", "PATCH", "DELETE", "OPTIONS")
CORS_HEADERS = ("Authorization", "Content-Type", "If-Match")
CORS_EXPOSE = ("Location", "ETag", "Link", "Accept-Patch", "Accept-Post")

_STATUS: tuple[tuple[type[VideoError], type[web.HTTPException]], ...] = (
    (UnknownNest, web.HTTPNotFound),
    (NotWatchable, web.HTTPConflict),
    (BadOffer, web.HTTPBadRequest),
    (CameraUnavailable, web.HTTPServiceUnavailable),
)


def http_error(exc: VideoError) -> web.HTTPException:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status(text=str(exc))
    return web.HTTPInternalServerError(text=str(exc))


def _nest_id(request: web.Request) -> int:
    text = request.match_info["nest"]
    if not text.isdigit():
        raise web.HTTPNotFound(text=f"no nest {text!r}")
    return int(text)


def add_video_routes(
    app: web.Application,
    hub: VideoHub,
    authorize: Authorize,
    *,
    liveness: LivenessSettings | None = None,
    player_origins: frozenset[str] = frozenset(),
) -> None:
    """``player_origins``: the other sites whose pages may play video here (WHEP with a token)."""
    sessions = WhepSessions(hub, liveness)
    app[SESSIONS] = sessions
    allow(app, CrossOrigin("/whep/", player_origins, CORS_METHODS, CORS_HEADERS, CORS_EXPOSE))

    async def offer(request: web.Request) -> web.Response:
        actor = await authorize(request, VIEW)
        nest_id = _nest_id(request)
        if request.content_type != SDP:
            raise web.HTTPUnsupportedMediaType(
                text=f"send the SDP offer as {SDP}, not {request.content_type}"
            )
        sdp = await request.text()
        try:
            summary = sessions.check(sdp)
            talk = False
            if summary.audio is AudioWish.TALK:
                try:
                    await authorize(request, TALK)
                except web.HTTPForbidden:
                    raise web.HTTPForbidden(
                        text="talk-back needs a role that may use the loudspeaker; "
                        "offer audio as recvonly (or no audio) to watch only"
                    ) from None
                talk = True
            session, answer = await sessions.open(nest_id, sdp, actor, talk=talk)
        except VideoError as exc:
            log.info("video.offer_refused", nest=request.match_info["nest"], reason=str(exc))
            raise http_error(exc) from None
        return web.Response(
            status=201,
            text=answer,
            content_type=SDP,
            headers={
                "Location": session.path,
                "ETag": session.etag,
                "Accept-Patch": SDPFRAG,
                "Cache-Control": "no-store",
            },
        )

    def _session(request: web.Request) -> WhepSession:
        nest_id = _nest_id(request)
        session_id = request.match_info["session"]
        session = sessions.sessions.get(session_id)
        if session is None or session.nest_id != nest_id:
            raise web.HTTPNotFound(text=f"no video session {session_id} on nest {nest_id}")
        return session

    async def leave(request: web.Request) -> web.Response:
        await authorize(request, VIEW)
        await sessions.close(_session(request).session_id)
        return web.Response(status=200, text="session closed")

    async def patch(request: web.Request) -> web.Response:
        actor = await authorize(request, VIEW)
        session = _session(request)
        if actor.id != session.actor.id:
            raise web.HTTPForbidden(text="only the viewer who opened a session may add its candidates")
        if request.content_type != SDPFRAG:
            raise web.HTTPUnsupportedMediaType(text=f"send ICE candidates as {SDPFRAG}")
        match = request.headers.get("If-Match")
        if match == "*":
            raise web.HTTPUnprocessableEntity(text="ICE restart is not supported: open a new session")
        if match is not None and match != session.etag:
            raise web.HTTPPreconditionFailed(text=f"the session's entity tag is {session.etag}, not {match}")
        try:
            fragment = parse_fragment(await request.text(), session.remote_ufrag)
            await sessions.trickle(session, fragment)
        except IceRestart as exc:
            raise web.HTTPUnprocessableEntity(text=str(exc)) from None
        except BadFragment as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.Response(status=204)

    async def options_endpoint(request: web.Request) -> web.Response:
        _nest_id(request)
        return web.Response(status=204, headers={"Accept-Post": SDP, "Allow": "POST, OPTIONS"})

    async def options_session(request: web.Request) -> web.Response:
        _session(request)
        return web.Response(status=204, headers={"Accept-Patch": SDPFRAG, "Allow": "PATCH, DELETE, OPTIONS"})

    async def snapshot(request: web.Request) -> web.Response:
        await authorize(request, VIEW)
        nest_id = _nest_id(request)
        try:
            if not hub.ingest_running(nest_id):
                hub.check_watchable(nest_id)
            elif not hub.sources.known(nest_id):
                raise UnknownNest(nest_id)
            keyframe = await hub.keyframe(nest_id)
        except VideoError as exc:
            raise http_error(exc) from None
        jpeg, _width, _height = await asyncio.to_thread(keyframe_to_jpeg, keyframe)
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def on_shutdown(_app: web.Application) -> None:
        await sessions.close_all()

    app.router.add_post("/whep/nests/{nest}", offer)
    app.router.add_delete("/whep/nests/{nest}/sessions/{session}", leave)
    app.router.add_patch("/whep/nests/{nest}/sessions/{session}", patch)
    app.router.add_route("OPTIONS", "/whep/nests/{nest}", options_endpoint)
    app.router.add_route("OPTIONS", "/whep/nests/{nest}/sessions/{session}", options_session)
    app.router.add_get("/video/nests/{nest}/snapshot.jpg", snapshot)
    app.on_shutdown.append(on_shutdown)
