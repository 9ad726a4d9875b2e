"""The service's exceptions: one root, a small tree under it.

- :class:`DronectlError` — the root; catch it to catch anything the service raises on purpose.
- :class:`CommandRefused` — our own safety checks said no; nothing was sent to the nest. Carries
  every blocker that held, each with a message an operator understands.
- :class:`CommandFailed` — a command was sent and did not succeed (the vehicle denied it, or it
  failed). Two special cases:
  - :class:`CommandTimeout` — no acknowledgement within the deadline, retries included.
  - :class:`LinkLost` — the nest's link is down: commands fail fast instead of hanging.

``dronectl.domain.config.ConfigError`` belongs under the root too (the lead re-parents it).
Adapters translate vendor exceptions into these at their boundary; nothing vendor-specific
leaves ``adapters/``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dronectl.domain.blockers import Blocker


class DronectlError(Exception):
    """Root of every exception the service raises on purpose."""


class CommandRefused(DronectlError):
    """A command was refused before anything reached the nest, for every reason in ``blockers``."""

    def __init__(self, action: str, blockers: Sequence[Blocker]) -> None:
        if not blockers:
            raise ValueError("CommandRefused needs at least one blocker")
        self.action = action
        self.blockers: tuple[Blocker, ...] = tuple(blockers)
        super().__init__(f"{action} refused: " + "; ".join(b.message for b in self.blockers))

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(b.message for b in self.blockers)


class CommandFailed(DronectlError):
    """A command reached the nest (or was about to) and did not succeed."""

    def __init__(self, command: str, detail: str, nest_id: int | None = None) -> None:
        self.command = command
        self.detail = detail
        self.nest_id = nest_id
        where = f"nest {nest_id}: " if nest_id is not None else ""
        super().__init__(f"{where}{command} failed: {detail}")


class CommandTimeout(CommandFailed):
    """No acknowledgement arrived in time (after the adapter's retries)."""

    def __init__(self, command: str, timeout_s: float, nest_id: int | None = None) -> None:
        self.timeout_s = timeout_s
        super().__init__(command, f"no answer within {timeout_s:g} s", nest_id)


class LinkLost(CommandFailed):
    """The nest's link is down; the command was not sent (fail fast)."""

    def __init__(self, command: str, nest_id: int | None = None, detail: str = "link lost") -> None:
        super().__init__(command, detail, nest_id)
