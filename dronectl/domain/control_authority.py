"""Who holds manual control of each nest: pure rules, time injected, no I/O.

A pilot *takes* control of a nest; from then on commands to that nest's drone from anyone else
are refused, naming who holds it. A commander may take control over from anyone (the previous
holder is told, through the :class:`Change` it returns, which the service publishes as an event).
Control ends on release, or by itself after ``idle_release_s`` without a command from the holder.
Automation never overrides anyone: it can neither take control nor fly a nest someone holds.

Roles are plain strings here (``"pilot"``, ``"commander"``, ``"automation"``, ``"observer"``) so the
core does not depend on the API's models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

DEFAULT_IDLE_RELEASE_S = 300.0

PILOT = "pilot"
COMMANDER = "commander"
AUTOMATION = "automation"
_MAY_TAKE = frozenset({PILOT, COMMANDER})


@dataclass(frozen=True)
class Holder:
    actor_id: str
    role: str
    since_s: float  # when control was taken (the caller's clock)
    last_active_s: float  # the holder's last command to the nest

    def describe(self) -> str:
        return f"{self.actor_id} ({self.role})"


class ChangeKind(Enum):
    TAKEN = "taken"
    TAKEN_OVER = "taken_over"  # from another holder, who is told
    RELEASED = "released"
    RELEASED_BY_OTHER = "released_by_other"  # a commander released someone else's control
    EXPIRED = "expired"  # no command from the holder for idle_release_s


@dataclass(frozen=True)
class Change:
    """A change of control, to announce."""

    nest_id: int
    kind: ChangeKind
    holder: Holder | None  # who holds it now
    previous: Holder | None  # who held it before (the one to notify)
    by: str  # who caused it (actor id, or "idle timeout")

    def describe(self) -> str:
        prev = self.previous.describe() if self.previous else "nobody"
        now = self.holder.describe() if self.holder else "nobody"
        if self.kind is ChangeKind.TAKEN:
            return f"nest {self.nest_id}: control taken by {now}"
        if self.kind is ChangeKind.TAKEN_OVER:
            return f"nest {self.nest_id}: control taken over by {now} from {prev}"
        if self.kind is ChangeKind.RELEASED:
            return f"nest {self.nest_id}: control released by {prev}"
        if self.kind is ChangeKind.RELEASED_BY_OTHER:
            return f"nest {self.nest_id}: control of {prev} released by {self.by}"
        return f"nest {self.nest_id}: control of {prev} released after inactivity"


@dataclass(frozen=True)
class Verdict:
    """The answer to take/release/check: ``refusal`` is None when allowed."""

    refusal: str | None = None
    change: Change | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


class ControlAuthority:
    def __init__(self, idle_release_s: float = DEFAULT_IDLE_RELEASE_S) -> None:
        if idle_release_s <= 0:
            raise ValueError("idle_release_s must be positive")
        self.idle_release_s = idle_release_s
        self._holders: dict[int, Holder] = {}

    def holder(self, nest_id: int, now_s: float) -> Holder | None:
        """Who holds the nest now (an idle holder has lost it, even before expire() runs)."""
        held = self._holders.get(nest_id)
        if held is None or self._idle(held, now_s):
            return None
        return held

    def take(self, nest_id: int, actor_id: str, role: str, now_s: float) -> Verdict:
        if role not in _MAY_TAKE:
            return Verdict(f"a {role} cannot take manual control")
        held = self.holder(nest_id, now_s)
        if held is not None and held.actor_id == actor_id:
            self._holders[nest_id] = replace(held, role=role, last_active_s=now_s)
            return Verdict()
        if held is not None and role != COMMANDER:
            return Verdict(self._held_message(nest_id, held))
        new = Holder(actor_id, role, now_s, now_s)
        self._holders[nest_id] = new
        kind = ChangeKind.TAKEN if held is None else ChangeKind.TAKEN_OVER
        return Verdict(change=Change(nest_id, kind, new, held, actor_id))

    def release(self, nest_id: int, actor_id: str, role: str, now_s: float) -> Verdict:
        """Release control; releasing what nobody holds is allowed and changes nothing."""
        held = self.holder(nest_id, now_s)
        if held is None:
            self._holders.pop(nest_id, None)
            return Verdict()
        if held.actor_id == actor_id:
            del self._holders[nest_id]
            return Verdict(change=Change(nest_id, ChangeKind.RELEASED, None, held, actor_id))
        if role == COMMANDER:
            del self._holders[nest_id]
            return Verdict(change=Change(nest_id, ChangeKind.RELEASED_BY_OTHER, None, held, actor_id))
        return Verdict(self._held_message(nest_id, held))

    def check(self, nest_id: int, actor_id: str, now_s: float) -> Verdict:
        """May ``actor_id`` command the nest's drone now? Allowed commands count as the holder's
        activity (call :meth:`touch` once the command is accepted)."""
        held = self.holder(nest_id, now_s)
        if held is None or held.actor_id == actor_id:
            return Verdict()
        return Verdict(self._held_message(nest_id, held))

    def touch(self, nest_id: int, actor_id: str, now_s: float) -> None:
        held = self.holder(nest_id, now_s)
        if held is not None and held.actor_id == actor_id:
            self._holders[nest_id] = replace(held, last_active_s=now_s)

    def restore(self, nest_id: int, holder: Holder | None) -> None:
        """Put back who held the nest (undo a change that could not be recorded)."""
        if holder is None:
            self._holders.pop(nest_id, None)
        else:
            self._holders[nest_id] = holder

    def expire(self, now_s: float) -> list[Change]:
        """Drop the idle holders; one change per nest released, to announce."""
        changes = []
        for nest_id, held in list(self._holders.items()):
            if self._idle(held, now_s):
                del self._holders[nest_id]
                changes.append(Change(nest_id, ChangeKind.EXPIRED, None, held, "idle timeout"))
        return changes

    def _idle(self, held: Holder, now_s: float) -> bool:
        return now_s - held.last_active_s >= self.idle_release_s

    @staticmethod
    def _held_message(nest_id: int, held: Holder) -> str:
        return f"nest {nest_id} is under manual control of {held.describe()}"
