"""Commands over HTTP: the MQTT API's request envelope, through the same gateway.

``POST /api/nests/{nest}/commands`` and ``POST /api/commands`` (fleet) take the envelope of the
MQTT API (``id``, ``method``, ``args``, ``issued_at``, ``ttl_s``) and answer with its Reply. The
request is decided for the topic it would have on MQTT by the one
:class:`~dronectl.operations.gateway.CommandGateway` both transports share, so validation, expiry,
roles, deduplication (also across transports) and the audit are the same.

Differences that HTTP needs:
- the actor is the token's: ``actor`` may be left out; when given it must be the token's own;
- ``reply_to`` is not used: the response is the reply, and progress goes to the actor's pages on
  the WebSocket (``{"type": "progress"}``);
- the HTTP status says the outcome's kind (the body's ``error.code`` says it exactly):
  202 accepted (200 for a repeat of an accepted id), 400/422 bad request, 403 forbidden,
  404 unknown nest, 409 refused now (busy, safety checks, expired, first answer pending),
  503 the nest cannot be reached, 500 internal, 504 no answer in time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web

from dronectl.domain.roles import Channel
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.models import Actor, ErrorBody, ErrorCode, Progress, Reply
from dronectl.operations.requests import AwaitFirst, Execute, Ignore, Refuse, Repeat, Sender
from dronectl.transports.web.updates import UpdatesHub

log = structlog.get_logger("dronectl.transports.web.commands")

FIRST_REPLY_TIMEOUT_S = 15.0

STATUS: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED: 400,
    ErrorCode.NO_REPLY_ADDRESS: 400,  # never on HTTP (the response is the answer)
    ErrorCode.UNKNOWN_METHOD: 400,
    ErrorCode.INVALID_ARGS: 422,
    ErrorCode.UNKNOWN_NEST: 404,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.IDENTITY: 403,
    ErrorCode.EXPIRED: 409,
    ErrorCode.REFUSED: 409,
    ErrorCode.BUSY: 409,
    ErrorCode.FAILED: 409,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.LINK_LOST: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


def reply_response(reply: Reply, *, accepted_status: int = 202) -> web.Response:
    if reply.ok:
        status = 200 if reply.repeated else accepted_status
    else:
        assert reply.error is not None
        status = STATUS.get(reply.error.code, 400)
    return web.Response(status=status, text=reply.model_dump_json(), content_type="application/json")


def _refusal(command_id: str | None, code: ErrorCode, message: str) -> web.Response:
    reply = Reply(id=command_id, ok=False, error=ErrorBody(code=code, message=message))
    return reply_response(reply)


def bind_actor(payload: bytes, actor: Actor) -> bytes | str:
    """The payload with the token's actor and no reply_to; a refusal message when it names another
    actor. A payload that is not a JSON object is passed on as it is (the dispatcher refuses it)."""
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError):
        return payload
    if not isinstance(raw, dict):
        return payload
    own = actor.model_dump(mode="json")
    if "actor" in raw and raw["actor"] != own:
        return f"actor {raw['actor']!r} is not the token's ({actor.id}, {actor.role.value})"
    raw["actor"] = own
    raw.pop("reply_to", None)
    return json.dumps(raw).encode()


class HttpCommands:
    def __init__(self, gateway: CommandGateway, updates: UpdatesHub, spawn: Spawn) -> None:
        self.gateway = gateway
        self.updates = updates
        self.spawn = spawn

    async def submit(self, topic: str, payload: bytes, actor: Actor) -> web.Response:
        bound = bind_actor(payload, actor)
        if isinstance(bound, str):
            return _refusal(self.gateway.dispatcher.request_id(payload), ErrorCode.FORBIDDEN, bound)
        sender = Sender(actor.id, actor.role, Channel.HTTP)  # the token's user, never the payload's
        decision = await self.gateway.decide(topic, bound, sender)
        if isinstance(decision, Refuse):
            if decision.alone:  # the rest of a burst: one event when it ends (the gateway's)
                log.info("http.refused", topic=topic, id=decision.reply.id, error=decision.event.message)
                await self.gateway.announce(decision.event)
            return reply_response(decision.reply)
        if isinstance(decision, Repeat):
            log.info("http.repeated", topic=topic, id=decision.reply.id)
            return reply_response(decision.reply)
        if isinstance(decision, AwaitFirst):  # a copy of a command whose first answer is pending
            try:
                async with asyncio.timeout(FIRST_REPLY_TIMEOUT_S):
                    first = await self.gateway.first_outcome_of(decision.command_id)
            except TimeoutError:
                message = (
                    "no first answer yet; the command may still run: watch its progress on the WebSocket"
                )
                return _refusal(decision.command_id, ErrorCode.TIMEOUT, message)
            return reply_response(first.model_copy(update={"repeated": True}))
        if isinstance(decision, Ignore):
            return _refusal(self.gateway.dispatcher.request_id(bound), ErrorCode.BUSY, decision.reason)
        return await self._execute(decision)

    async def _execute(self, decision: Execute) -> web.Response:
        command = decision.command
        first: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

        async def on_reply(reply: Reply) -> None:
            if not first.done():
                first.set_result(reply)

        async def on_progress(progress: Progress) -> None:
            await self.updates.send_progress(command.actor_id, progress)

        self.spawn(self.gateway.execute(command, on_reply, on_progress), f"http.command[{command.id}]")
        try:
            async with asyncio.timeout(FIRST_REPLY_TIMEOUT_S):
                reply = await asyncio.shield(first)
        except TimeoutError:
            message = "no answer yet; the command may still run: watch its progress on the WebSocket"
            return _refusal(command.id, ErrorCode.TIMEOUT, message)
        return reply_response(reply)
