"""Cross-origin access for configured origins on chosen paths (CORS), e.g. a WHEP player served by
another site of the force's network.

Everything else of the service refuses what another site's page starts (``server._same_origin``).
A path prefix registered here (``allow``) also serves the origins listed with it:

- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is answered
  204 with the methods and headers the prefix allows; from any other origin, 403;
- a request from a listed origin is served only with an ``Authorization`` header (a bearer token)
  and never with the browser's session cookie: the cookie is removed before the handler runs, so
  a page of that origin acts as the token's user and nobody else;
- its response, an error too, carries ``Access-Control-Allow-Origin`` for that origin and exposes
  the headers the prefix names (WHEP: ``Location``, ``ETag``, ``Link``, ``Accept-Patch``).

No credentials mode (``Access-Control-Allow-Credentials``) is ever granted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from aiohttp import hdrs, web
from multidict import CIMultiDict

log = structlog.get_logger("dronectl.transports.web")

ALLOWED = web.RequestKey("dronectl.cross_origin_allowed", bool)  # this request passed the policy
PREFLIGHT_MAX_AGE_S = 600


@dataclass(frozen=True)
class CrossOrigin:
    prefix: str
    origins: frozenset[str]
    methods: tuple[str, ...]
    headers: tuple[str, ...] = ("Authorization", "Content-Type")
    expose: tuple[str, ...] = ()


POLICIES = web.AppKey("dronectl.cors_policies", list)


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` as a browser sends it; ValueError for anything else."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"an origin is scheme://host[:port], not {origin!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"an origin is scheme://host[:port], not {origin!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def allow(app: web.Application, policy: CrossOrigin) -> None:
    """Serve ``policy.origins`` on the paths under ``policy.prefix`` (before the app starts)."""
    if not policy.origins:
        return
    policies: list[CrossOrigin] = app.setdefault(POLICIES, [])
    policies.append(policy)


def _policy(request: web.Request) -> CrossOrigin | None:
    for policy in request.app.get(POLICIES, ()):
        if request.path.startswith(policy.prefix):
            return policy
    return None


def _allow_headers(policy: CrossOrigin, origin: str) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if policy.expose:
        headers["Access-Control-Expose-Headers"] = ", ".join(policy.expose)
    return headers


def _preflight(request: web.Request, policy: CrossOrigin, origin: str) -> web.Response:
    if origin not in policy.origins:
        log.warning("http.cors_refused", origin=origin[:200], path=request.path)
        return web.Response(status=403, text=f"refused: {origin[:200]} may not use {policy.prefix}")
    method = request.headers.get("Access-Control-Request-Method", "")
    if method not in policy.methods:
        return web.Response(status=403, text=f"refused: method {method[:20]} on {policy.prefix}")
    headers = _allow_headers(policy, origin) | {
        "Access-Control-Allow-Methods": ", ".join(policy.methods),
        "Access-Control-Allow-Headers": ", ".join(policy.headers),
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
    }
    return web.Response(status=204, headers=headers)


def _without_cookies(request: web.Request) -> web.Request:
    headers = CIMultiDict(request.headers)
    headers.popall(hdrs.COOKIE, None)
    clone = request.clone(headers=headers)
    clone[ALLOWED] = True
    return clone


@web.middleware
async def cors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    policy = _policy(request) if origin is not None else None
    if policy is None or origin is None or same_host(origin, request.host):
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight(request, policy, origin)
    if origin not in policy.origins or request.method not in (*policy.methods, "GET", "HEAD"):
        return await handler(request)  # the same-origin rule decides (state changes are refused)
    if hdrs.AUTHORIZATION not in request.headers:
        raise web.HTTPUnauthorized(
            text="a request from another site needs a token (Authorization: Bearer <token>)",
            headers=_allow_headers(policy, origin) | {"WWW-Authenticate": 'Bearer realm="dronectl"'},
        )
    try:
        response = await handler(_without_cookies(request))
    except web.HTTPException as exc:
        exc.headers.update(_allow_headers(policy, origin))
        raise
    response.headers.update(_allow_headers(policy, origin))
    return response


def same_host(origin: str, host: str) -> bool:
    """Whether ``origin`` is a page of this server (its scheme http(s), its host:port ours)."""
    parts = urlsplit(origin)
    return origin != "null" and parts.scheme in ("http", "https") and parts.netloc == host


def origins_of(values: Iterable[str]) -> frozenset[str]:
    """Configured origins, normalized; ValueError names the first bad one."""
    return frozenset(normalize_origin(v) for v in values)
