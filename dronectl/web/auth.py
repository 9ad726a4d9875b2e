"""Who is asking over HTTP: bearer tokens -> :class:`Actor` {id, role}, and what each role may do.

A request names its token in an ``Authorization: Bearer <token>`` header or, where a browser
cannot set headers (a WebSocket, a link to the page), in a ``?token=`` query parameter.

The roles are the MQTT API's (observer, pilot, commander, automation). HTTP *actions* (viewing
state, watching video, talking through the loudspeaker, sending commands) are allowed per role
here; an action may also be a method's name (``"speaker.say"``): allowed to the roles that may
call it. The commands themselves go through the MQTT API's dispatcher, which checks the method
against the role exactly as over MQTT.

Tokens come from a tokens file (``dronectl up --http-tokens FILE``)::

    tokens:
      - {token: "a-long-random-string", id: "li.wei", role: commander}
      - {token: "another-one", id: "wall-screen", role: observer}

or, for ``dronectl up`` without one, a dev token generated at start (a commander, id ``dev``).
Tokens are kept as SHA-256 digests; a lookup is one dict access on the digest.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated

import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dronectl.api.models import Actor, Method, Role
from dronectl.api.roles import roles_for

__all__ = [
    "ACTIONS",
    "Actor",
    "Authorize",
    "TokenAuthority",
    "TokensFileError",
    "allowed_roles",
    "load_tokens",
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
    # as the broker's ACL lets them write {root}/incidents (dronectl.api.roles)
    "incident.report": frozenset({Role.COMMANDER, Role.AUTOMATION}),
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


def request_token(request: web.Request) -> str | None:
    """The bearer token of a request (header first, then ``?token=``), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    query = request.query.get("token", "")
    return query or None


class TokenAuthority:
    """Tokens -> actors. Implements :data:`Authorize` through :meth:`authorize`."""

    def __init__(self, tokens: Mapping[str, Actor] | None = None) -> None:
        self._actors: dict[bytes, Actor] = {}
        for token, actor in (tokens or {}).items():
            self.add(token, actor)

    def add(self, token: str, actor: Actor) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"a token must have at least {MIN_TOKEN_CHARS} characters")
        self._actors[_digest(token)] = actor

    def add_dev_token(self, actor_id: str = "dev", role: Role = Role.COMMANDER) -> str:
        """A fresh random token for ``actor_id`` (``dronectl up`` prints it with the page's URL)."""
        token = secrets.token_urlsafe(24)
        self.add(token, Actor(id=actor_id, role=role))
        return token

    def actor(self, token: str | None) -> Actor | None:
        if not token:
            return None
        return self._actors.get(_digest(token))

    async def authorize(self, request: web.Request, action: str) -> Actor:
        actor = self.actor(request_token(request))
        if actor is None:
            raise web.HTTPUnauthorized(
                text="a valid token is needed (Authorization: Bearer <token>, or ?token=<token>)",
                headers={"WWW-Authenticate": 'Bearer realm="dronectl"'},
            )
        allowed = allowed_roles(action)
        if allowed is None:
            raise web.HTTPForbidden(text=f"unknown action {action!r}")
        if actor.role not in allowed:
            names = ", ".join(role.value for role in Role if role in allowed) or "nobody"
            raise web.HTTPForbidden(text=f"role {actor.role.value} may not {action} (allowed: {names})")
        return actor


# --- the tokens file -------------------------------------------------------------------------


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: Annotated[str, Field(min_length=MIN_TOKEN_CHARS, max_length=512)]
    id: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role


class _TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[_TokenEntry]


class TokensFileError(ValueError):
    pass


def load_tokens(path: Path) -> dict[str, Actor]:
    """Read a tokens file (see the module's docstring); raises TokensFileError naming the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _TokensFile.model_validate(data)
    except OSError as exc:
        raise TokensFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise TokensFileError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise TokensFileError(f"{path}: {problems}") from exc
    return _unique(parsed.tokens, path)


def _unique(entries: Iterable[_TokenEntry], path: Path) -> dict[str, Actor]:
    out: dict[str, Actor] = {}
    for entry in entries:
        if entry.token in out:
            raise TokensFileError(f"{path}: a token is listed twice (for {entry.id!r})")
        out[entry.token] = Actor(id=entry.id, role=entry.role)
    return out
