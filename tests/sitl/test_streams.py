from __future__ import annotations

from sitl.streams import StreamScheduler


def test_default_rates_and_set_interval() -> None:
    s = StreamScheduler({33: 5.0, 30: 15.0, 0: 1.0})
    sent: dict[int, int] = {33: 0, 30: 0, 0: 0}
    t = 0.0
    while t < 10.0:
        for msg_id in s.due(t):
            sent[msg_id] += 1
        t = round(t + 0.01, 6)
    assert sent == {33: 50, 30: 150, 0: 10}

    assert s.set_interval(33, 50_000, now_s=t)  # 20 Hz
    assert s.interval_us(33) == 50_000
    assert s.set_interval(30, -1, now_s=t)  # disabled
    assert s.interval_us(30) == -1
    assert not s.set_interval(999, 1000, now_s=t)  # not a stream of this component
    count = {33: 0, 30: 0}
    end = t + 1.0
    while t < end - 1e-9:
        for msg_id in s.due(t):
            if msg_id in count:
                count[msg_id] += 1
        t = round(t + 0.001, 6)
    assert count == {33: 20, 30: 0}
    assert s.set_interval(30, 0, now_s=t)  # back to the default
    assert s.interval_us(30) == 66_666


def test_slow_tick_does_not_burst() -> None:
    s = StreamScheduler({30: 15.0})
    assert s.due(0.0) == [30]
    assert s.due(5.0) == [30]  # five seconds late: one message, not 75
    assert s.due(5.01) == []
