"""What a request came to, and the exit code a one-shot command returns for it. Pure.

Exit codes of ``dronectl <command>`` (one-shot):

    0  ok              accepted (and, with --wait, succeeded)
    1  failed          accepted, then failed or was cancelled; or the service had an internal error
    2  usage           the command line (or the request's arguments) is wrong; nothing was sent
                       or the service refused it as invalid (invalid_args, unknown_nest, malformed)
    3  refused         the service's safety checks or the nest's state said no (refused, busy)
    4  timed out       no answer in time, or the request expired before the service could run it
    5  link lost       the nest's link to its drone is down
    6  no connection   no broker, the broker went away, or no dronectl service online on it
    7  not in control  someone else holds manual control of the nest (the message names them)
    8  forbidden       your role may not call this method
    9  unsupported     the service does not offer this method (unknown_method)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from dronectl.operations.models import ErrorBody, ErrorCode, Progress, ProgressState, Reply

EXIT_CODES_HELP = (
    "exit codes:\n" + (__doc__ or "").split("Exit codes of ``dronectl <command>`` (one-shot):\n")[1]
)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    TIMEOUT = 4
    LINK_LOST = 5
    NO_CONNECTION = 6
    NOT_IN_CONTROL = 7
    FORBIDDEN = 8
    UNSUPPORTED = 9


_BY_CODE: dict[ErrorCode, ExitCode] = {
    ErrorCode.MALFORMED: ExitCode.USAGE,
    ErrorCode.NO_REPLY_ADDRESS: ExitCode.USAGE,
    ErrorCode.INVALID_ARGS: ExitCode.USAGE,
    ErrorCode.UNKNOWN_NEST: ExitCode.USAGE,
    ErrorCode.UNKNOWN_METHOD: ExitCode.UNSUPPORTED,
    ErrorCode.FORBIDDEN: ExitCode.FORBIDDEN,
    ErrorCode.EXPIRED: ExitCode.TIMEOUT,
    ErrorCode.REFUSED: ExitCode.REFUSED,
    ErrorCode.BUSY: ExitCode.REFUSED,
    ErrorCode.FAILED: ExitCode.FAILED,
    ErrorCode.TIMEOUT: ExitCode.TIMEOUT,
    ErrorCode.LINK_LOST: ExitCode.LINK_LOST,
    ErrorCode.UNAVAILABLE: ExitCode.NO_CONNECTION,
    ErrorCode.INTERNAL: ExitCode.FAILED,
}


def exit_code_for(error: ErrorBody, holder_id: str | None, actor_id: str) -> ExitCode:
    """A refusal's exit code. ``holder_id``: who holds manual control of the nest, as last seen.
    The service says ``busy`` when someone else holds control; we tell that case apart by the
    retained state, which names the holder."""
    if error.code is ErrorCode.BUSY and holder_id is not None and holder_id != actor_id:
        return ExitCode.NOT_IN_CONTROL
    return _BY_CODE.get(error.code, ExitCode.FAILED)


@dataclass
class CommandResult:
    """A request and everything that came back for it."""

    id: str
    method: str
    nest_id: int | None
    summary: str
    reply: Reply | None = None
    progress: list[Progress] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK
    local_error: str | None = None  # no reply, connection lost...

    @property
    def state(self) -> str:
        """accepted / in_progress / succeeded / failed / cancelled / refused / no_reply."""
        if self.reply is None:
            return "no_reply"
        if not self.reply.ok:
            return "refused"
        return self.progress[-1].state.value if self.progress else ProgressState.ACCEPTED.value

    @property
    def error(self) -> ErrorBody | None:
        if self.reply is not None and self.reply.error is not None:
            return self.reply.error
        last = self.progress[-1] if self.progress else None
        return last.error if last is not None else None

    @property
    def ok(self) -> bool:
        return self.exit_code is ExitCode.OK

    def message(self) -> str:
        """One line (or a few, for several reasons) for the operator."""
        where = f"nest {self.nest_id} " if self.nest_id is not None else ""
        if self.local_error is not None:
            return f"{where}{self.method}: {self.local_error}"
        error = self.error
        if error is not None:
            text = f"{where}{self.method} {self.state}: [{error.code.value}] {error.message}"
            extra = [r for r in error.reasons if r != error.message]
            return text + "".join(f"\n  - {r}" for r in extra)
        last = self.progress[-1] if self.progress else None
        detail = last.message if last is not None and last.message else ""
        if not detail and self.reply is not None and self.reply.result:
            detail = str(self.reply.result.get("message", ""))
        return f"{where}{self.method} {self.state}" + (f": {detail}" if detail else "")

    def to_json(self) -> dict[str, Any]:
        error = self.error
        result = None
        if self.progress and self.progress[-1].result is not None:
            result = self.progress[-1].result
        elif self.reply is not None:
            result = self.reply.result
        return {
            "id": self.id,
            "method": self.method,
            "nest": self.nest_id,
            "ok": self.ok,
            "state": self.state,
            "exit_code": int(self.exit_code),
            "message": self.message(),
            "result": result,
            "error": error.model_dump(mode="json") if error is not None else None,
            "local_error": self.local_error,
            "progress": [
                {"state": p.state.value, "message": p.message, "at": p.at.isoformat()} for p in self.progress
            ],
        }
