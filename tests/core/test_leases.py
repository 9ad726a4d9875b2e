"""Which instance holds which nest (dronectl/domain/leases.py): rendezvous hashing and the plan."""

from __future__ import annotations

from dronectl.domain.leases import (
    AUTOMATIONS,
    Lease,
    LeasePlan,
    assignment,
    automations_leader,
    plan_leases,
    preferred_owner,
)

NESTS = range(1, 17)
NOW = 1_000.0


def test_every_nest_has_one_preferred_owner_and_all_instances_agree() -> None:
    instances = ["a", "b", "c"]
    spread = assignment(NESTS, instances)
    assert sorted(n for nests in spread.values() for n in nests) == list(NESTS)
    assert all(spread[i] for i in instances)  # 16 nests over 3: nobody idle
    assert assignment(NESTS, reversed(instances)) == spread  # the order of the list does not matter
    assert preferred_owner(3, []) is None


def test_an_instance_leaving_moves_only_its_own_nests() -> None:
    before = assignment(NESTS, ["a", "b", "c"])
    after = assignment(NESTS, ["a", "b"])
    for instance in ("a", "b"):
        assert set(before[instance]) <= set(after[instance])
    assert set(after["a"]) | set(after["b"]) == set(NESTS)


def test_an_instance_joining_takes_nests_only_from_others() -> None:
    before = assignment(NESTS, ["a", "b", "c"])
    after = assignment(NESTS, ["a", "b", "c", "d"])
    assert after["d"]
    for instance in ("a", "b", "c"):
        assert set(after[instance]) <= set(before[instance])


def lease(nest_id: int, owner: str, expires_at: float, token: int = 1) -> Lease:
    return Lease(nest_id, owner, token, expires_at)


def test_plan_acquires_renews_releases_and_leaves_others_alone() -> None:
    live = ["a", "b"]
    mine = [n for n in NESTS if preferred_owner(n, live) == "a"]
    theirs = [n for n in NESTS if preferred_owner(n, live) == "b"]
    leases = {
        mine[0]: lease(mine[0], "a", NOW + 3),  # mine, valid: renew
        mine[1]: lease(mine[1], "b", NOW + 3),  # b holds one a is preferred for: wait for b to release
        mine[2]: lease(mine[2], "b", NOW - 0.5),  # expired: take it
        theirs[0]: lease(theirs[0], "a", NOW + 3),  # mine, b preferred: release
        theirs[1]: lease(theirs[1], "b", NOW - 0.5),  # expired, b preferred, within grace: b's
        theirs[2]: lease(theirs[2], "c", NOW - 5),  # c is gone and b did not take it: orphaned, anyone
    }
    plan = plan_leases("a", NESTS, live, leases, NOW, orphan_grace_s=2.0)
    assert plan.renew == {mine[0]}
    assert plan.release == {theirs[0]}
    assert plan.acquire == ({mine[2], theirs[2]} | set(mine[3:]))
    assert mine[1] not in plan.acquire and theirs[1] not in plan.acquire


def test_an_instance_alone_takes_everything() -> None:
    assert plan_leases("a", NESTS, [], {}, NOW, 2.0) == LeasePlan(acquire=frozenset(NESTS))


def test_the_automations_lease_is_bid_for_only_by_candidates_and_only_when_free() -> None:
    assert AUTOMATIONS not in NESTS  # never a nest's key
    assert AUTOMATIONS not in plan_leases("a", NESTS, [], {}, NOW, 2.0).acquire  # not a candidate
    free = plan_leases("a", NESTS, ["a", "b"], {}, NOW, 2.0, lead=True)
    assert AUTOMATIONS in free.acquire  # every candidate tries; the database lets one win
    expired = {AUTOMATIONS: lease(AUTOMATIONS, "b", NOW - 0.1, token=4)}
    assert AUTOMATIONS in plan_leases("a", NESTS, ["a", "b"], expired, NOW, 2.0, lead=True).acquire
    assert automations_leader(expired, NOW) is None


def test_the_automations_leader_is_sticky() -> None:
    held = {AUTOMATIONS: lease(AUTOMATIONS, "b", NOW + 3)}
    # another valid leader: left alone, whoever rendezvous hashing would prefer (no flapping)
    for me in ("a", "c", "zzz"):
        plan = plan_leases(me, NESTS, ["a", "b", "c", "zzz"], held, NOW, 2.0, lead=True)
        assert AUTOMATIONS not in plan.acquire | plan.renew | plan.release
    plan = plan_leases("b", NESTS, ["a", "b", "c", "zzz"], held, NOW, 2.0, lead=True)
    assert AUTOMATIONS in plan.renew and AUTOMATIONS not in plan.release  # a joiner does not move it
    assert automations_leader(held, NOW) == "b"
