"""Logging in over HTTP with a user of the users file: a session cookie, not a token in a URL.

    POST /api/login   {"user": "li.wei", "password": "..."}  -> 200 {"actor": ...} + Set-Cookie
    POST /api/logout                                       -> 204, the session ends, the cookie is cleared

The cookie (``dronectl_session``) is HttpOnly, SameSite=Strict, Path=/ (and Secure over HTTPS); the
server keeps only its SHA-256 digest with the user and an expiry (``ttl_s``, default 8 h, from the
login). The role is the roles file's at login. A wrong password or an unknown user gets the same
401; after 5 failures for a user name within a minute its logins get 429 unchecked for a while.
Every refused login is logged and audited (``login_audit``, channel ``http``, folded into bursts;
never the password). :class:`TokenAuthority` takes the session
cookie as it takes a bearer token (``auth.sessions``), so every route works with either.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from dronectl.domain.identity import LoginThrottle
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.models import Actor
from dronectl.operations.users import Directory

log = structlog.get_logger("dronectl.transports.web.sessions")

COOKIE = "dronectl_session"
DEFAULT_TTL_S = 8 * 3600.0


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Session:
    actor: Actor
    expires_at_s: float  # on the monotonic clock


class Sessions:
    def __init__(
        self,
        directory: Directory,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        login_audit: LoginAudit | None = None,
    ) -> None:
        self.directory = directory
        self.login_audit = login_audit
        self.ttl_s = ttl_s
        self.clock = clock
        self.throttle = LoginThrottle(max_failures=5, window_s=60.0)
        self._sessions: dict[bytes, Session] = {}

    def actor(self, cookie: str | None) -> Actor | None:
        """The session's actor; None for no cookie, an unknown or an expired session."""
        if not cookie:
            return None
        key = _digest(cookie)
        session = self._sessions.get(key)
        if session is None:
            return None
        if self.clock() >= session.expires_at_s:
            del self._sessions[key]
            return None
        return session.actor

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if now >= s.expires_at_s]:
            del self._sessions[key]

    def open(self, actor: Actor) -> str:
        """A new session for ``actor`` (who has proven who it is); the cookie's value."""
        self._expire()
        cookie = secrets.token_urlsafe(32)
        self._sessions[_digest(cookie)] = Session(actor, self.clock() + self.ttl_s)
        return cookie

    async def login(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            user, password = body["user"], body["password"]
            if not isinstance(user, str) or not isinstance(password, str) or len(user) > 64:
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError):
            raise web.HTTPBadRequest(text='expected {"user": "...", "password": "..."}') from None
        now = self.clock()
        if not self.throttle.allowed(user, now):
            await self._refused(request, user, "too many failed logins")
            raise web.HTTPTooManyRequests(text="too many failed logins for this user: wait a minute")
        found = await self.directory.authenticate_off_loop(user, password)
        if found is None or found.role is None:  # the service's own account does not log in here
            self.throttle.failed(user, now)
            await self._refused(request, user, "unknown user or wrong password")
            raise web.HTTPUnauthorized(text="wrong user name or password")
        self.throttle.succeeded(user)
        actor = Actor(id=found.name, role=found.role)
        cookie = self.open(actor)
        log.info("http.login", user=found.name, role=found.role.value)
        response = web.json_response({"actor": actor.model_dump(mode="json"), "expires_in_s": self.ttl_s})
        response.set_cookie(
            COOKIE,
            cookie,
            httponly=True,
            samesite="Strict",
            path="/",
            secure=request.secure,
            max_age=int(self.ttl_s),
        )
        return response

    async def _refused(self, request: web.Request, user: str, reason: str) -> None:
        log.warning("http.login_refused", user=user, remote=request.remote, reason=reason)
        if self.login_audit is not None:
            await self.login_audit.failed("http", user, request.remote, reason)

    async def logout(self, request: web.Request) -> web.Response:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            session = self._sessions.pop(_digest(cookie), None)
            if session is not None:
                log.info("http.logout", user=session.actor.id)
        response = web.Response(status=204)
        response.del_cookie(COOKIE, path="/")
        return response
