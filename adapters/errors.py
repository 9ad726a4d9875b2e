"""What an adapter raises. Vendor exceptions never leave ``adapters/``: each implementation turns
them into one of these, and the core maps these to ``dronectl.domain.errors``.

    AdapterError
    ├── LinkLost          the component is not heard (heartbeat watchdog) or the link is closed
    ├── CommandRejected   the component answered, and not with success
    └── CommandTimeout    no answer within the time allowed, retries included
"""

from __future__ import annotations

from adapters.protocols import CommandResult


class AdapterError(Exception):
    """Root of every error an adapter raises."""


class LinkLost(AdapterError):
    """The component is not heard: the command was not sent, or its answer cannot come."""

    def __init__(self, component: str, silent_s: float | None = None) -> None:
        self.component = component
        self.silent_s = silent_s
        detail = f" (no heartbeat for {silent_s:.1f} s)" if silent_s is not None else ""
        super().__init__(f"link to {component} lost{detail}")


class CommandRejected(AdapterError):
    """The component refused or failed the command; ``text`` says why when it told us."""

    def __init__(self, command: str, result: CommandResult, text: str = "") -> None:
        self.command = command
        self.result = result
        self.text = text
        reason = f": {text}" if text else ""
        super().__init__(f"{command} {result.describe()}{reason}")


class CommandTimeout(AdapterError):
    """No final answer in time, after every retry."""

    def __init__(self, command: str, timeout_s: float, attempts: int) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.attempts = attempts
        super().__init__(f"{command}: no answer after {attempts} attempt(s) within {timeout_s:.1f} s")
