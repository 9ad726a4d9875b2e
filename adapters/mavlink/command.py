"""MAVLink command micro-service for one remote component: send, retry, wait for the answer.

COMMAND_LONG is resent with its ``confirmation`` field counting the attempts until the first
COMMAND_ACK; an IN_PROGRESS answer stops the resending and the final answer is awaited as long as
progress keeps coming. When progress stops coming (a lost final ACK looks just like that), the
command is sent again, up to ``attempts`` times, and a component that is already done answers.
Answers are matched by command id, by the component that sends them and by the station they are
addressed to (0 counts as anyone); one command id at a time per component
(a second one in flight is BUSY). While the component's heartbeat watchdog says it is lost, a
command fails at once, and one waiting for its answer ends as soon as the link is lost.

The STATUSTEXTs (warning or worse) the component sends while a command runs are kept as its
reason: the dock says why before it refuses, PX4 about 1.5 s after (``reason_wait_s``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from adapters.errors import CommandRejected, CommandTimeout, LinkLost
from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.watchdog import HeartbeatWatchdog
from adapters.protocols import CommandResult

log = structlog.get_logger(__name__)


STATUSTEXT_BYTES = 50

MAV_RESULTS: dict[int, CommandResult] = {
    mav.MAV_RESULT_ACCEPTED: CommandResult.SUCCESS,
    mav.MAV_RESULT_TEMPORARILY_REJECTED: CommandResult.TEMPORARILY_REJECTED,
    mav.MAV_RESULT_DENIED: CommandResult.DENIED,
    mav.MAV_RESULT_UNSUPPORTED: CommandResult.UNSUPPORTED,
    mav.MAV_RESULT_FAILED: CommandResult.FAILED,
    6: CommandResult.CANCELLED,  # MAV_RESULT_CANCELLED, not in pymavlink 2.4.50 common.xml
    mav.MAV_RESULT_COMMAND_LONG_ONLY: CommandResult.UNSUPPORTED_FRAME,
    mav.MAV_RESULT_COMMAND_INT_ONLY: CommandResult.UNSUPPORTED_FRAME,
    mav.MAV_RESULT_COMMAND_UNSUPPORTED_MAV_FRAME: CommandResult.UNSUPPORTED_FRAME,
    mav.MAV_RESULT_NOT_IN_CONTROL: CommandResult.NOT_IN_CONTROL,
}


def command_name(command: int) -> str:
    entry = mav.enums["MAV_CMD"].get(command)
    return str(entry.name) if entry is not None else f"command {command}"


@dataclass(frozen=True)
class RetryPolicy:
    ack_timeout_s: float = 1.0  # per attempt, until the first answer
    attempts: int = 4
    progress_timeout_s: float = 5.0  # between IN_PROGRESS answers
    max_duration_s: float = 120.0  # the whole command, progress included
    reason_wait_s: float = 0.0  # after a refusal without a STATUSTEXT yet, wait this long for one


@dataclass(frozen=True)
class CommandAck:
    command: int
    result: CommandResult
    attempts: int
    progress_pct: int | None = None
    result_param2: int = 0
    text: str = ""  # the component's reason (STATUSTEXT), when it gave one
    elapsed_s: float = 0.0


@dataclass
class _Pending:
    request_id: int | None
    since: float
    answers: asyncio.Queue[MAVLinkMessage]


class CommandSender:
    def __init__(
        self,
        name: str,
        send: Callable[[MAVLinkMessage], bool],
        watchdog: HeartbeatWatchdog,
        target_system: int,
        target_component: int,
        own_system: int,
        own_component: int,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self._send = send
        self._watchdog = watchdog
        self.target_system = target_system
        self.target_component = target_component
        self._own = (own_system, own_component)
        self.policy = policy or RetryPolicy()
        self._pending: dict[tuple[int, int | None], _Pending] = {}
        self._texts: deque[tuple[float, str]] = deque(maxlen=16)
        self._text_event = asyncio.Event()
        self._chunks: dict[int, list[bytes]] = {}

    # incoming ----------------------------------------------------------------------------------
    # what ``handle`` reads: the link decodes no other message for it
    READS = frozenset({mav.MAVLINK_MSG_ID_COMMAND_ACK, mav.MAVLINK_MSG_ID_STATUSTEXT})

    def handle(self, msg: MAVLinkMessage) -> None:
        """Every message of ``READS`` from the target component goes through here."""
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_COMMAND_ACK:
            self._on_ack(msg)
        elif msg_id == mav.MAVLINK_MSG_ID_STATUSTEXT and msg.severity <= mav.MAV_SEVERITY_WARNING:
            text = self._statustext(msg)
            if text is not None:
                self._texts.append((asyncio.get_running_loop().time(), text))
                self._text_event.set()
                self._text_event = asyncio.Event()

    def _statustext(self, msg: MAVLinkMessage) -> str | None:
        """The whole text, once its last chunk came (texts over 50 bytes come in chunks sharing an id)."""
        raw = bytes(msg._text_raw) if hasattr(msg, "_text_raw") else str(msg.text).encode()
        part = raw.split(b"\x00", 1)[0]
        if msg.id == 0:
            return part.decode(errors="replace")
        chunks = self._chunks.setdefault(int(msg.id), [])
        chunks.append(part)
        if len(part) == STATUSTEXT_BYTES and len(chunks) < 20:
            return None  # more to come
        del self._chunks[int(msg.id)]
        return b"".join(chunks).decode(errors="replace")

    def _on_ack(self, msg: MAVLinkMessage) -> None:
        if msg.target_system not in (0, self._own[0]) or msg.target_component not in (0, self._own[1]):
            return  # answers another station (or MAVSDK beside us)
        pending = self._pending.get((msg.command, int(msg.result_param2)))  # request ids are never 0
        if pending is None:
            pending = self._pending.get((msg.command, None))
        if pending is not None:
            pending.answers.put_nowait(msg)

    # outgoing ----------------------------------------------------------------------------------
    async def command_long(
        self, command: int, params: Sequence[float] = (), policy: RetryPolicy | None = None
    ) -> CommandAck:
        p = [float(v) for v in params] + [0.0] * (7 - len(params))
        if len(p) != 7:
            raise ValueError("COMMAND_LONG has 7 parameters")

        def build(attempt: int) -> MAVLinkMessage:
            return mav.MAVLink_command_long_message(
                self.target_system, self.target_component, command, min(attempt, 255), *p
            )

        return await self.transact(command, build, policy=policy)

    async def command_int(
        self,
        command: int,
        *,
        frame: int,
        params: Sequence[float] = (),
        x: int = 0,
        y: int = 0,
        z: float = 0.0,
        policy: RetryPolicy | None = None,
    ) -> CommandAck:
        p = [float(v) for v in params] + [0.0] * (4 - len(params))
        if len(p) != 4:
            raise ValueError("COMMAND_INT has 4 free parameters besides x, y, z")

        def build(attempt: int) -> MAVLinkMessage:
            return mav.MAVLink_command_int_message(
                self.target_system, self.target_component, frame, command, 0, 0, *p, x, y, z
            )

        return await self.transact(command, build, policy=policy)

    async def transact(
        self,
        command: int,
        build: Callable[[int], MAVLinkMessage],
        request_id: int | None = None,
        policy: RetryPolicy | None = None,
    ) -> CommandAck:
        """Send ``build(attempt)`` until a COMMAND_ACK for ``command`` (and ``request_id`` in its
        result_param2, when given) ends it."""
        policy = policy or self.policy
        if not self._watchdog.connected:
            return CommandAck(command, self._watchdog.unavailable_result(), 0)
        key = (command, request_id)
        if key in self._pending:
            return CommandAck(command, CommandResult.BUSY, 0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = _Pending(request_id, start, asyncio.Queue())
        self._pending[key] = pending
        lost = self._watchdog.lost_future()
        try:
            ack = await self._run(command, build, pending, lost, policy)
            return replace(ack, elapsed_s=loop.time() - start)
        finally:
            del self._pending[key]
            lost.cancel()

    async def _run(
        self,
        command: int,
        build: Callable[[int], MAVLinkMessage],
        pending: _Pending,
        lost: asyncio.Future[None],
        policy: RetryPolicy,
    ) -> CommandAck:
        loop = asyncio.get_running_loop()
        end = pending.since + policy.max_duration_s
        attempts = 0
        silent = 0  # sends since the last answer
        progress: int | None = None
        deadline = loop.time()
        while True:
            now = loop.time()
            if now >= deadline:
                # No answer yet, or progress stopped coming (its final ACK may have been lost):
                # send again. A component already done answers the repeat at once.
                if silent >= policy.attempts:
                    reason = self._reason(pending)
                    return CommandAck(command, CommandResult.TIMEOUT, attempts, progress, text=reason)
                self._send(build(attempts))
                attempts += 1
                silent += 1
                deadline = now + policy.ack_timeout_s
            wait_s = min(deadline, end) - now
            if wait_s <= 0:
                reason = self._reason(pending)
                return CommandAck(command, CommandResult.TIMEOUT, attempts, progress, text=reason)
            answer = await self._next_answer(pending, lost, wait_s)
            if answer is lost:
                return CommandAck(command, CommandResult.LINK_LOST, attempts, progress)
            if answer is None:
                continue
            assert isinstance(answer, mav.MAVLink_command_ack_message)
            silent = 0
            if answer.result == mav.MAV_RESULT_IN_PROGRESS:
                progress = int(answer.progress) if answer.progress <= 100 else progress or 0
                deadline = loop.time() + policy.progress_timeout_s
                continue
            result = MAV_RESULTS.get(int(answer.result), CommandResult.UNKNOWN)
            text = self._reason(pending)
            if not result.ok and not text and policy.reason_wait_s > 0:
                text = await self._wait_reason(pending, policy.reason_wait_s)
            return CommandAck(
                command,
                result,
                attempts,
                int(answer.progress) if answer.progress <= 100 else progress,
                int(answer.result_param2),
                text,
            )

    async def _next_answer(
        self, pending: _Pending, lost: asyncio.Future[None], wait_s: float
    ) -> MAVLinkMessage | asyncio.Future[None] | None:
        if not pending.answers.empty():
            return pending.answers.get_nowait()
        get = asyncio.ensure_future(pending.answers.get())
        try:
            done, _ = await asyncio.wait({get, lost}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()  # an answer it had not taken yet stays in the queue
        if get in done:
            return get.result()
        if lost.done():
            return lost
        return None

    def _reason(self, pending: _Pending) -> str:
        texts = [text for t, text in self._texts if t >= pending.since]
        return texts[-1] if texts else ""

    async def _wait_reason(self, pending: _Pending, wait_s: float) -> str:
        try:
            async with asyncio.timeout(wait_s):
                while not (text := self._reason(pending)):
                    await self._text_event.wait()
                return text
        except TimeoutError:
            return ""


def raise_for(ack: CommandAck, what: str, component: str, silent_s: float | None = None) -> None:
    """Turn a failed ``ack`` into the adapter error for it; return quietly on success."""
    if ack.result.ok:
        return
    if ack.result in (CommandResult.NO_SYSTEM, CommandResult.LINK_LOST):
        raise LinkLost(component, silent_s)
    if ack.result is CommandResult.TIMEOUT:
        raise CommandTimeout(what, ack.elapsed_s, ack.attempts)
    raise CommandRejected(what, ack.result, ack.text)
