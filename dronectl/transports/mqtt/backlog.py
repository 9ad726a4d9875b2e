"""The bounded backlog between reading MQTT messages and deciding them. Pure: no I/O, no await.

Messages are read as fast as the broker sends them, stamped with the time they were read (expiry
and clock skew are judged against it, however long a message waits here) and queued per sender
(the topic's user). The decider takes them one sender after another (round robin), each sender's
in the order sent, so one client's flood delays the others by one message at a time, not by its
whole backlog.

Bounded per sender and overall: when a sender's queue is full its oldest message is dropped (the
newest are the ones still worth deciding: the oldest are the first to expire); when the whole
backlog is full, the oldest message of the longest queue goes. What is dropped is returned to the
caller, which refuses it in bulk (one audit row per burst).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from dronectl.operations.requests import Delivery

PER_SENDER = 256  # messages waiting per sender
TOTAL = 4096  # messages waiting in all


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retained: bool
    received_at_unix_s: float  # when it was read from the broker
    sender: str  # the topic's user ("" when the topic names none)
    delivery: Delivery | None = None  # what an MQTT 5 message carries for the request
    correlation: bytes | None = None  # MQTT 5 Correlation Data, given back on every answer
    kept: bool = False  # kept while another instance held its nest, decided now this one does


class Backlog:
    def __init__(self, *, per_sender: int = PER_SENDER, total: int = TOTAL) -> None:
        if per_sender < 1 or total < per_sender:
            raise ValueError("need 1 <= per_sender <= total")
        self.per_sender = per_sender
        self.total = total
        self._queues: OrderedDict[str, deque[Received]] = OrderedDict()  # in round-robin order
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def put(self, item: Received) -> Received | None:
        """Queue ``item``; the message dropped to make room for it, if any."""
        queue = self._queues.get(item.sender)
        if queue is None:
            queue = self._queues[item.sender] = deque()
        queue.append(item)
        self._size += 1
        if len(queue) > self.per_sender:
            return self._drop_oldest(item.sender)
        if self._size > self.total:
            longest = max(self._queues, key=lambda sender: len(self._queues[sender]))
            return self._drop_oldest(longest)
        return None

    def _drop_oldest(self, sender: str) -> Received:
        queue = self._queues[sender]
        dropped = queue.popleft()
        self._size -= 1
        if not queue:
            del self._queues[sender]
        return dropped

    def take(self) -> Received | None:
        """The next message to decide: the oldest of the sender whose turn it is."""
        if not self._queues:
            return None
        sender, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        self._size -= 1
        del self._queues[sender]
        if queue:
            self._queues[sender] = queue  # to the end of the round
        return item
