"""Hostile bytes on the receive path (issue 13): 200,000 datagrams of every kind the fuzz makes
(``tests/adapters/fuzz_receive.py``; a longer run: ``.venv/bin/python -m
tests.adapters.fuzz_receive --cases 5000000``), then hypothesis's own bytes: nothing raises,
nothing invalid changes the signed link's state, memory stays flat."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mavlink.endpoint import NestEndpoint
from adapters.mavlink.frames import Frame
from adapters.mavlink.link_security import LinkSecurity, SigningPolicy
from adapters.mavlink.signing import new_key
from tests.adapters.fuzz_receive import PEER, SYSID, run

CASES = 200_000
MEMORY_GROWTH_LIMIT_BYTES = 8_000_000  # resident size; a leak of even 100 bytes a case is 20 MB


async def test_two_hundred_thousand_hostile_datagrams() -> None:
    result = run(CASES, seed=13)
    assert result.cases == CASES
    assert result.crashes == 0
    assert result.state_changes == 0, result.changed[:3]
    assert result.memory_growth_bytes < MEMORY_GROWTH_LIMIT_BYTES
    assert set(result.by_kind) >= {"random", "truncated", "nonsense_fields", "huge_length", "unknown_id"}
    assert {"wrong_key", "bad_signature", "replay", "wrong_system"} <= set(result.by_kind)
    # The unsigned link passed valid nonsense on to the real adapters, which took it without a crash.
    assert result.accepted_unsigned_link > CASES // 10


KEY = new_key()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=400), min_size=1, max_size=5))
def test_hypothesis_bytes_never_reach_a_signed_link(datagrams: list[bytes]) -> None:
    delivered: list[Frame] = []
    endpoint = NestEndpoint(SYSID, delivered.append, security=LinkSecurity(KEY, SigningPolicy.REQUIRED))
    for data in datagrams:
        endpoint.datagram_received(data, PEER)
    assert delivered == []
    assert endpoint.peer is None
