"""The video side's HTTP routes: WHEP signalling and snapshots.

    POST   /whep/nests/{nest}                  SDP offer (application/sdp) -> 201, SDP answer,
                                               Location: /whep/nests/{nest}/sessions/{id}
    DELETE /whep/nests/{nest}/sessions/{id}    leave
    PATCH  /whep/nests/{nest}/sessions/{id}    405: no trickle ICE (the answer has every candidate)
    GET    /video/nests/{nest}/snapshot.jpg    JPEG of the stream's latest keyframe

Every request is authorized (``video.view``; talk-back also needs ``video.talk``). Refusals
are 4xx with a sentence in plain text: 404 unknown nest or session, 409 no live video (on the
ground, no camera), 400 bad offer (unparsable, no constrained-baseline H.264), 415 not SDP,
503 camera did not start.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from dronectl.video.errors import BadOffer, CameraUnavailable, NotWatchable, UnknownNest, VideoError
from dronectl.video.hub import VideoHub
from dronectl.video.liveness import LivenessSettings
from dronectl.video.offer import AudioWish
from dronectl.video.snapshot import keyframe_to_jpeg
from dronectl.video.whep import WhepSessions
from dronectl.web.auth import Authorize

log = structlog.get_logger(__name__)

VIEW = "video.view"
TALK = "video.talk"
SDP = "application/sdp"
SESSIONS = web.AppKey("dronectl.video.sessions", WhepSessions)

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
    app: web.Application, hub: VideoHub, authorize: Authorize, *, liveness: LivenessSettings | None = None
) -> None:
    sessions = WhepSessions(hub, liveness)
    app[SESSIONS] = sessions

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
            headers={"Location": session.path, "Cache-Control": "no-store"},
        )

    def _session(request: web.Request) -> str:
        nest_id = _nest_id(request)
        session_id = request.match_info["session"]
        session = sessions.sessions.get(session_id)
        if session is None or session.nest_id != nest_id:
            raise web.HTTPNotFound(text=f"no video session {session_id} on nest {nest_id}")
        return session_id

    async def leave(request: web.Request) -> web.Response:
        await authorize(request, VIEW)
        await sessions.close(_session(request))
        return web.Response(status=200, text="session closed")

    async def patch(request: web.Request) -> web.Response:
        await authorize(request, VIEW)
        _session(request)
        raise web.HTTPMethodNotAllowed(
            "PATCH", ["DELETE"], text="trickle ICE is not supported: the answer carries every candidate"
        )

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
    app.router.add_get("/video/nests/{nest}/snapshot.jpg", snapshot)
    app.on_shutdown.append(on_shutdown)
