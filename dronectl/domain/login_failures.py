"""Refused logins folded into bursts, so that a brute force leaves a few audit rows, not millions.

Every refused login (a wrong password on the broker or the login page, an unknown bearer token)
is audited, but per *burst*: the first failure of a (channel, user name, address) is written at
once; further failures of the same key within ``window_s`` are only counted, and written as one
row (``attempts``, first and last time) when the window has passed (:meth:`FailureBursts.due`, or
with the key's next failure after it). So one key writes at most one row per window, whatever
the rate of guesses.

Guessing many user names from one address would still make a key per name: after
``names_per_address`` names of one address are being counted, further names from it are folded
under the user name ``*``. Beyond ``max_keys`` keys in all (many addresses), everything new is
folded under (``*``, ``*``) for the channel. Memory stays bounded; nothing is dropped uncounted.

Pure: the caller gives the time (``now_s``, any clock of seconds) and writes what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

ANY = "*"  # a user name or address standing for many (a flood folded into one row)


@dataclass(frozen=True, slots=True)
class FailureBurst:
    """What to write: ``attempts`` refused logins of one key, from ``first_at_s`` to ``last_at_s``."""

    channel: str
    user_name: str
    remote_addr: str
    reason: str  # the latest failure's
    attempts: int
    first_at_s: float
    last_at_s: float


@dataclass(slots=True)
class _Key:
    written_at_s: float  # the start of the key's window: when its last row was written
    pending: int = 0  # failures counted since, not written yet
    first_at_s: float = 0.0
    last_at_s: float = 0.0
    reason: str = ""


class FailureBursts:
    def __init__(self, window_s: float = 60.0, names_per_address: int = 5, max_keys: int = 10_000) -> None:
        self.window_s = window_s
        self.names_per_address = names_per_address
        self.max_keys = max_keys
        self._keys: dict[tuple[str, str, str], _Key] = {}

    def _fold(self, channel: str, user: str, addr: str) -> tuple[str, str, str]:
        key = (channel, user, addr)
        if key in self._keys:
            return key
        if len(self._keys) >= self.max_keys:
            return (channel, ANY, ANY)
        names = sum(1 for c, u, a in self._keys if c == channel and a == addr and u != ANY)
        if names >= self.names_per_address:
            return (channel, ANY, addr)
        return key

    def failed(self, channel: str, user: str, addr: str, reason: str, now_s: float) -> FailureBurst | None:
        """A refused login; the row to write now, or None when it is counted into a burst."""
        key = self._fold(channel, user, addr)
        state = self._keys.get(key)
        if state is None or now_s - state.written_at_s >= self.window_s:
            attempts = 1 + (state.pending if state is not None else 0)
            first = state.first_at_s if state is not None and state.pending else now_s
            self._keys[key] = _Key(written_at_s=now_s)
            return FailureBurst(*key, reason, attempts, first, now_s)
        if not state.pending:
            state.first_at_s = now_s
        state.pending += 1
        state.last_at_s = now_s
        state.reason = reason
        return None

    def due(self, now_s: float) -> list[FailureBurst]:
        """The bursts whose window has passed with failures counted and not written; keys whose
        window passed quietly are forgotten."""
        out: list[FailureBurst] = []
        for key, state in list(self._keys.items()):
            if now_s - state.written_at_s < self.window_s:
                continue
            if state.pending:
                out.append(self._burst(key, state))
                self._keys[key] = _Key(written_at_s=now_s)  # the next failure is folded again
            else:
                del self._keys[key]
        return out

    def drain(self) -> list[FailureBurst]:
        """Every burst counted and not written yet (at shutdown)."""
        out = [self._burst(key, s) for key, s in self._keys.items() if s.pending]
        self._keys.clear()
        return out

    @staticmethod
    def _burst(key: tuple[str, str, str], state: _Key) -> FailureBurst:
        return FailureBurst(*key, state.reason, state.pending, state.first_at_s, state.last_at_s)
