"""Refusals counted in bursts (pure): the first alone, the rest one row per burst, none lost."""

from __future__ import annotations

import pytest

from dronectl.operations.refusals import SAMPLE_IDS, BurstKey, RefusalBursts

KEY = BurstKey("cc", "pilot", "mqtt", "expired")
OTHER = BurstKey("cc", "pilot", "mqtt", "malformed")


def test_the_first_is_alone_the_rest_one_burst_after_a_quiet_second() -> None:
    bursts = RefusalBursts(quiet_s=1.0, max_s=10.0)
    assert bursts.add(KEY, 100.0, "a", 3, "expired") is True
    assert [bursts.add(KEY, 100.0 + n / 100, f"b{n}", 3, "expired") for n in range(50)] == [False] * 50
    assert bursts.due(100.9) == []  # still going
    (burst,) = bursts.due(101.6)
    assert burst.count == 50 and burst.key == KEY and burst.nest_ids == {3}
    assert burst.sample_ids == [f"b{n}" for n in range(SAMPLE_IDS)]
    assert (burst.first_at_unix_s, burst.last_at_unix_s) == (100.0, 100.49)
    assert bursts.due(200.0) == [] and not bursts.flush_pending()
    assert bursts.add(KEY, 200.0, "c", 3, "expired") is True  # a new burst starts alone


def test_reasons_and_senders_are_counted_apart_and_unreadable_ones_always_counted() -> None:
    bursts = RefusalBursts(quiet_s=1.0, max_s=10.0)
    assert bursts.add(OTHER, 5.0, None, None, "not a valid request") is False  # no id: counted
    assert bursts.add(KEY, 5.0, "x", None, "expired") is True
    assert bursts.add(BurstKey("desk", "pilot", "mqtt", "expired"), 5.0, "y", None, "expired") is True
    (burst,) = bursts.due(7.0)
    assert burst.key == OTHER and burst.count == 1 and burst.sample_ids == []


def test_a_long_flood_is_cut_into_bursts_of_max_s_and_flush_keeps_every_count() -> None:
    bursts = RefusalBursts(quiet_s=1.0, max_s=2.0)
    alone = sum(bursts.add(KEY, 10.0 + n / 100, f"i{n}", None, "expired") for n in range(500))
    ended = bursts.due(14.5)
    rest = bursts.flush()
    assert alone + sum(b.count for b in ended + rest) == 500
    assert 2 <= len(ended) + len(rest) <= 3 and alone == len(ended) + len(rest)


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        RefusalBursts(quiet_s=2.0, max_s=1.0)
