"""Refusals counted in bursts, so a flood of bad requests costs one audit row per burst, not one each.

Pure: no I/O, no await, time passed in. A burst is a run of refusals of one sender for one reason
(user, role, channel, error code) with no gap longer than ``quiet_s``, cut at ``max_s``:

- the first readable refusal of a burst (it has a command id) is recorded on its own, as every
  refusal was before: its id can be looked up, a repeat of it answered with it;
- every further refusal of the burst (and every unreadable one: no id to record) is counted in
  the burst, which is recorded as one row when it ends (:meth:`RefusalBursts.due`).

So the audit rows account for every refusal: the single rows plus the bursts' counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SAMPLE_IDS = 20  # ids kept per burst (a reader can look a few of them up); the count is exact


@dataclass(frozen=True)
class BurstKey:
    user: str
    role: str
    channel: str
    code: str


@dataclass
class Burst:
    """Refusals of one sender for one reason counted together (not including the one recorded alone)."""

    key: BurstKey
    first_at_unix_s: float
    last_at_unix_s: float
    count: int = 0
    sample_ids: list[str] = field(default_factory=list)
    nest_ids: set[int] = field(default_factory=set)
    message: str = ""  # the first counted refusal's message (they share a reason, not always words)


class RefusalBursts:
    def __init__(self, *, quiet_s: float = 1.0, max_s: float = 10.0) -> None:
        if quiet_s <= 0 or max_s < quiet_s:
            raise ValueError("need 0 < quiet_s <= max_s")
        self.quiet_s = quiet_s
        self.max_s = max_s
        self._open: dict[BurstKey, Burst] = {}
        self._started: dict[BurstKey, float] = {}  # when the burst's first refusal came
        self._closed: list[Burst] = []  # ended, not yet collected by due()

    def add(
        self,
        key: BurstKey,
        at_unix_s: float,
        command_id: str | None,
        nest_id: int | None,
        message: str,
    ) -> bool:
        """Count a refusal; True: it is the first of its burst and readable, record it on its own."""
        self._close_stale(key, at_unix_s)
        started = self._started.get(key)
        if started is None:
            self._started[key] = at_unix_s
            if command_id is not None:
                return True  # the burst's first: recorded alone; the burst counts the rest
        burst = self._open.get(key)
        if burst is None:
            burst = self._open[key] = Burst(key, at_unix_s, at_unix_s, message=message)
        burst.count += 1
        burst.last_at_unix_s = at_unix_s
        if command_id is not None and len(burst.sample_ids) < SAMPLE_IDS:
            burst.sample_ids.append(command_id)
        if nest_id is not None:
            burst.nest_ids.add(nest_id)
        return False

    def _last(self, key: BurstKey) -> float | None:
        burst = self._open.get(key)
        return burst.last_at_unix_s if burst is not None else self._started.get(key)

    def _ended(self, key: BurstKey, now_unix_s: float) -> bool:
        last = self._last(key)
        started = self._started.get(key)
        if last is None or started is None:
            return False
        return now_unix_s - last > self.quiet_s or now_unix_s - started >= self.max_s

    def _close_stale(self, key: BurstKey, now_unix_s: float) -> None:
        if key in self._started and self._ended(key, now_unix_s):
            # ended: the caller collects it with due(); a new burst starts here
            burst = self._open.pop(key, None)
            del self._started[key]
            if burst is not None:
                self._closed.append(burst)

    def flush_pending(self) -> bool:
        """Whether any counted refusal waits to be recorded."""
        return bool(self._closed or self._open)

    def due(self, now_unix_s: float) -> list[Burst]:
        """The bursts that have ended by ``now_unix_s`` (quiet for ``quiet_s``, or ``max_s`` long),
        each to be recorded as one row; forgotten here once returned."""
        for key in list(self._started):
            self._close_stale(key, now_unix_s)
        out, self._closed = self._closed, []
        return out

    def flush(self) -> list[Burst]:
        """Every burst still open (at shutdown: counted refusals are never lost)."""
        out = [*self._closed, *self._open.values()]
        self._closed = []
        self._open.clear()
        self._started.clear()
        return out
