"""A command an instance left running when it lost its nest is told on the nest's events (issue
14): the API event names that command (not the flight's launch), its method and who sent it."""

from __future__ import annotations

from dronectl.nest.types import NestEvent
from dronectl.operations.models import EventKind
from dronectl.operations.views import event_from


def test_the_interrupted_command_is_the_events_command() -> None:
    told = NestEvent(
        3,
        "command_interrupted",
        "orbit cmd-9 by officer-7: interrupted: the instance running it lost nest 3 (...)",
        {"command_id": "cmd-9", "method": "orbit", "actor_id": "officer-7", "code": "interrupted"},
    )
    event = event_from(told, 1_800_000_000.0, flight_id="f-1", command_id="cmd-launch-3")
    assert event is not None and event.kind is EventKind.COMMAND_INTERRUPTED
    assert event.command_id == "cmd-9" and event.flight_id == "f-1" and event.nest_id == 3
    assert event.data["method"] == "orbit" and event.data["actor_id"] == "officer-7"
    assert event.data["code"] == "interrupted"
    launched = event_from(NestEvent(3, "launched", "up", {}), 1_800_000_000.0, "f-1", "cmd-launch-3")
    assert launched is not None and launched.command_id == "cmd-launch-3"  # others: the flight's
