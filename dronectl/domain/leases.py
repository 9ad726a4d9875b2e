"""Which instance controls which nest: rendezvous hashing over the live instances, and what one
instance does with its leases at each renewal tick. Pure: the lease rows and the database's
clock come in, a plan goes out (dronectl/nest/leases.py carries it out against PostgreSQL).

The rules, for instance ``me`` and each nest:

* the nest's *preferred* owner is the live instance with the highest ``hash(instance, nest)``
  (rendezvous hashing): when an instance joins or leaves, only the nests it wins or held move, and
  every instance computes the same answer from the same list without talking to the others;
* a valid lease of mine on a nest I am preferred for: renew it;
* a valid lease of mine on a nest another live instance is preferred for: release it (it takes
  the nest at its next tick: a rebalance, never a nest held by two);
* no lease, or an expired one: acquire it if I am preferred -- or if it has stayed expired for
  ``orphan_grace_s`` (the preferred instance is not taking it: stuck, or not yet seen dead), so no
  nest stays without an owner much past the takeover time. The database decides races: one wins.
* a valid lease of another instance: leave it alone, even if I am preferred (it releases).

One more lease row, under the reserved key ``AUTOMATIONS`` (0; nest ids start at 1), says which
instance runs the automations (incident dispatch, the patrol scheduler, the lookout they use):
the *automations leader*. It is sticky, not hashed: the holder renews it as long as it lives (a
joining instance does not move the automations), and when it is free or expired every live
candidate tries to acquire it at once -- the database lets exactly one win, with a new token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    """A nest's lease row: who holds it, its fencing token, until when (the database's clock)."""

    nest_id: int
    owner: str
    token: int
    expires_at_unix_s: float

    def valid_at(self, now_unix_s: float) -> bool:
        return self.expires_at_unix_s > now_unix_s


AUTOMATIONS = 0  # the lease key of the automations leader (never a nest: nest ids are >= 1)


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """What one instance does at one tick, nest ids each."""

    acquire: frozenset[int] = frozenset()
    renew: frozenset[int] = frozenset()
    release: frozenset[int] = frozenset()


def _score(instance_id: str, nest_id: int) -> int:
    digest = hashlib.blake2b(f"{instance_id}\x00{nest_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def preferred_owner(nest_id: int, instances: Iterable[str]) -> str | None:
    """The instance rendezvous hashing gives ``nest_id`` to; None when there is none."""
    best: tuple[int, str] | None = None
    for instance in instances:
        key = (_score(instance, nest_id), instance)
        if best is None or key > best:
            best = key
    return None if best is None else best[1]


def assignment(nest_ids: Iterable[int], instances: Iterable[str]) -> dict[str, list[int]]:
    """Every instance's preferred nests (for `dronectl instances` and the tests)."""
    live = sorted(set(instances))
    out: dict[str, list[int]] = {i: [] for i in live}
    for nest_id in sorted(nest_ids):
        owner = preferred_owner(nest_id, live)
        if owner is not None:
            out[owner].append(nest_id)
    return out


def plan_leases(
    me: str,
    nest_ids: Iterable[int],
    live_instances: Iterable[str],
    leases: Mapping[int, Lease],
    now_unix_s: float,
    orphan_grace_s: float,
    lead: bool = False,
) -> LeasePlan:
    """What ``me`` does with each nest this tick (see the module docstring); ``lead``: ``me`` is a
    candidate for the automations leader too, its lease planned under ``AUTOMATIONS``."""
    live = set(live_instances) | {me}
    acquire: set[int] = set()
    renew: set[int] = set()
    release: set[int] = set()
    for nest_id in nest_ids:
        preferred = preferred_owner(nest_id, live)
        lease = leases.get(nest_id)
        if lease is not None and lease.valid_at(now_unix_s):
            if lease.owner == me:
                (renew if preferred == me else release).add(nest_id)
            continue
        orphaned = lease is not None and now_unix_s - lease.expires_at_unix_s >= orphan_grace_s
        if preferred == me or orphaned:
            acquire.add(nest_id)
    if lead:
        lease = leases.get(AUTOMATIONS)
        if lease is None or not lease.valid_at(now_unix_s):
            acquire.add(AUTOMATIONS)
        elif lease.owner == me:
            renew.add(AUTOMATIONS)
    return LeasePlan(frozenset(acquire), frozenset(renew), frozenset(release))


def automations_leader(leases: Mapping[int, Lease], now_unix_s: float) -> str | None:
    """The instance running the automations now, or None (between a leader's end and a takeover)."""
    lease = leases.get(AUTOMATIONS)
    return lease.owner if lease is not None and lease.valid_at(now_unix_s) else None
