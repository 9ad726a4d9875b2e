"""The MQTT backlog (pure): round robin across senders, bounded, the oldest dropped first."""

from __future__ import annotations

import pytest

from dronectl.transports.mqtt.backlog import Backlog, Received


def _msg(sender: str, n: int) -> Received:
    return Received(f"r/commands/{sender}", str(n).encode(), False, float(n), sender)


def test_senders_take_turns_each_in_the_order_sent() -> None:
    backlog = Backlog(per_sender=10, total=100)
    for n in range(5):
        backlog.put(_msg("flood", n))
    backlog.put(_msg("cc", 100))
    order = []
    while (item := backlog.take()) is not None:
        order.append((item.sender, int(item.payload)))
    assert order == [("flood", 0), ("cc", 100), ("flood", 1), ("flood", 2), ("flood", 3), ("flood", 4)]
    assert len(backlog) == 0


def test_a_full_sender_loses_its_oldest_and_the_newest_stays() -> None:
    backlog = Backlog(per_sender=3, total=100)
    dropped = [backlog.put(_msg("flood", n)) for n in range(5)]
    assert [d.payload if d else None for d in dropped] == [None, None, None, b"0", b"1"]
    assert [backlog.take().payload for _ in range(3)] == [b"2", b"3", b"4"]  # type: ignore[union-attr]


def test_a_full_backlog_takes_from_the_longest_queue() -> None:
    backlog = Backlog(per_sender=4, total=5)
    for n in range(4):
        assert backlog.put(_msg("flood", n)) is None
    assert backlog.put(_msg("cc", 10)) is None
    dropped = backlog.put(_msg("cc", 11))
    assert dropped is not None and dropped.sender == "flood" and dropped.payload == b"0"
    assert len(backlog) == 5


def test_bad_bounds() -> None:
    with pytest.raises(ValueError):
        Backlog(per_sender=10, total=5)
