"""Who is asking over HTTP: a session cookie (web.sessions) or a bearer token -> :class:`Actor`
{id, role}, and what each role may do.

A machine client names its token in an ``Authorization: Bearer <token>`` header; a WebSocket
client that cannot set headers offers it as a subprotocol (``Sec-WebSocket-Protocol: dronectl,
bearer.<token>``; the server answers ``dronectl``). Never in a URL: a ``?token=`` is refused with
a 400 that says so (URLs land in browser history, proxy and server logs).

The roles are the MQTT API's (observer, pilot, commander, automation). HTTP *actions* (viewing
state, watching video, talking through the loudspeaker, sending commands) are allowed per role
here; an action may also be a method's name (``"speaker.say"``): allowed to the roles that may
call it. The commands themselves go through the MQTT API's dispatcher, which checks the method
against the role exactly as over MQTT.

Tokens come from the tokens file (``dronectl tokens create USER``; operations.tokens): each bound
to a user of the users file, whose role is looked up at each request; the file keeps only SHA-256
digests. Tests and tools may also add tokens in memory (:meth:`TokenAuthority.add`). An unknown
token is refused and audited (``login_audit``, channel ``http``, folded into bursts; never the
token).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from dronectl.domain.roles import INCIDENT_REPORTERS
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.models import Actor, Method, Role
from dronectl.operations.roles import roles_for
from dronectl.operations.tokens import TokenFile

log = structlog.get_logger("dronectl.transports.web.auth")

__all__ = [
    "ACTIONS",
    "Actor",
    "Authorize",
    "TokenAuthority",
    "allowed_roles",
    "request_token",
]

Authorize = Callable[[web.Request, str], Awaitable[Actor]]
"""``await authorize(request, "video.view")`` -> the Actor, or raises web.HTTPUnauthorized (no or
unknown token) / web.HTTPForbidden (the role may not do that)."""

_EVERYONE = frozenset(Role)
ACTIONS: Mapping[str, frozenset[Role]] = {
    "state.view": _EVERYONE,  # config, nest states, telemetry, events
    "video.view": _EVERYONE,  # WHEP viewing, snapshots
    "video.talk": frozenset(roles_for(Method.SPEAKER_SAY)),  # microphone audio to the loudspeaker
    "command.send": _EVERYONE,  # the dispatcher then checks the method against the role
    # as over MQTT ({root}/incidents/{user}): the roles that may report incidents
    "incident.report": INCIDENT_REPORTERS,
    # after the incident (web.replay): the people of the command center replay it, a commander
    # hands its evidence over; not the automation's account nor a reporting system
    "replay.view": frozenset({Role.OBSERVER, Role.PILOT, Role.COMMANDER}),
    "evidence.export": frozenset({Role.COMMANDER}),
}

MIN_TOKEN_CHARS = 16


def allowed_roles(action: str) -> frozenset[Role] | None:
    """The roles allowed ``action`` (an HTTP action or a method's name); None: no such action."""
    if action in ACTIONS:
        return ACTIONS[action]
    method = next((m for m in Method if m.value == action), None)
    return frozenset(roles_for(method)) if method is not None else None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


WS_PROTOCOL = "dronectl"  # the subprotocol a WebSocket is answered with
WS_BEARER = "bearer."  # a subprotocol ``bearer.<token>``: a WebSocket client's token


def request_token(request: web.Request) -> str | None:
    """The bearer token of a request (the Authorization header; for a WebSocket handshake also a
    ``bearer.<token>`` subprotocol), or None. A token in the URL is refused, never used."""
    if "token" in request.query:
        raise web.HTTPBadRequest(
            text="a token in the URL is refused (it would land in logs and history):"
            " use the Authorization header, or sign in (POST /api/login)"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for protocol in (p.strip() for p in offered.split(",")):
        if protocol.startswith(WS_BEARER) and len(protocol) > len(WS_BEARER):
            return protocol[len(WS_BEARER) :]
    return None


class TokenAuthority:
    """Tokens -> actors. Implements :data:`Authorize` through :meth:`authorize`."""

    def __init__(
        self,
        tokens: Mapping[str, Actor] | None = None,
        *,
        tokens_file: TokenFile | None = None,
        role_of: Callable[[str], Role | None] | None = None,
        login_audit: LoginAudit | None = None,
    ) -> None:
        """``tokens``: in memory (tests, tools); ``tokens_file`` with ``role_of`` (the users
        file's roles): the tokens ``dronectl tokens`` made, each acting as its user."""
        if (tokens_file is None) != (role_of is None):
            raise ValueError("tokens_file and role_of go together")
        self._actors: dict[bytes, Actor] = {}
        self.tokens_file = tokens_file
        self.role_of = role_of
        self.login_audit = login_audit
        # who a request's session cookie logged in as (web.sessions), when logins are on
        self.session_actor: Callable[[web.Request], Actor | None] | None = None
        for token, actor in (tokens or {}).items():
            self.add(token, actor)

    def add(self, token: str, actor: Actor) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"a token must have at least {MIN_TOKEN_CHARS} characters")
        self._actors[_digest(token)] = actor

    def add_dev_token(self, actor_id: str = "dev", role: Role = Role.COMMANDER) -> str:
        """A fresh random token for ``actor_id``, in memory only (tests and tools)."""
        token = secrets.token_urlsafe(24)
        self.add(token, Actor(id=actor_id, role=role))
        return token

    def actor(self, token: str | None) -> Actor | None:
        """The token's actor; None for no token, an unknown one, or one whose user is gone."""
        if not token:
            return None
        actor = self._actors.get(_digest(token))
        if actor is None and self.tokens_file is not None and self.role_of is not None:
            user = self.tokens_file.user_of(token)
            role = self.role_of(user) if user is not None else None
            actor = Actor(id=user, role=role) if user is not None and role is not None else None
        return actor

    async def authorize(self, request: web.Request, action: str) -> Actor:
        token = request_token(request)
        actor = self.actor(token)
        if token and actor is None:  # a token nobody has (or whose user is gone): refused, audited
            log.warning("http.token_refused", remote=request.remote, path=request.path)
            if self.login_audit is not None:
                await self.login_audit.failed("http", "", request.remote, "unknown bearer token")
        if actor is None and not token and self.session_actor is not None:
            actor = self.session_actor(request)
        if actor is None:
            raise web.HTTPUnauthorized(
                text="log in (POST /api/login) or give a token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": 'Bearer realm="dronectl"'},
            )
        allowed = allowed_roles(action)
        if allowed is None:
            raise web.HTTPForbidden(text=f"unknown action {action!r}")
        if actor.role not in allowed:
            names = ", ".join(role.value for role in Role if role in allowed) or "nobody"
            raise web.HTTPForbidden(text=f"role {actor.role.value} may not {action} (allowed: {names})")
        return actor
