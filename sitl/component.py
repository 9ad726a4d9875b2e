"""What every simulated MAVLink component of a nest is, and what it may use.

A nest (``sitl.nest.SimNest``) is one MAVLink system; its components (autopilot, dock,
payload, later the camera) share the nest's UDP endpoint (``sitl.link.NestLink``). The link
parses incoming bytes with the nest's own parser and hands each message to the components it
is addressed to; each component sends through its own :class:`Outbox`, which encodes with the
component's own sequence counter and source ids.

Components are plain objects driven by two calls, both without ``await``:
``on_message`` for each message addressed to it, and ``step`` once per simulation tick. The
simulated time comes from :class:`sitl.clock.SimClock`, never from the wall clock, so a nest
runs as well at 10x speed as in real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from adapters.mavlink import dronectl_v20 as mav

MAVLinkMessage: TypeAlias = Any  # mav.MAVLink_message; the generated module is not type-checked

# Component ids inside a nest's system.
AUTOPILOT_COMPID = mav.MAV_COMP_ID_AUTOPILOT1  # 1
CAMERA_COMPID = mav.MAV_COMP_ID_CAMERA  # 100
DOCK_COMPID = mav.MAV_COMP_ID_USER1  # 25: MAVLink has no dock component id
PAYLOAD_COMPID = mav.MAV_COMP_ID_PERIPHERAL  # 158: loudspeaker + warning light


class Outbox:
    """Sends messages from one component: its own encoder (source ids, sequence)."""

    def __init__(self, system_id: int, component_id: int, transmit: Callable[[bytes], None]) -> None:
        self.mav = mav.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
        self.mav.robust_parsing = True
        self._transmit = transmit
        self._mirrors: list[Outbox] = []

    def mirror(self, transmit: Callable[[bytes], None]) -> Outbox:
        """An outbox of the same component on a second link (the nest's PX4-style GCS link), with
        its own sequence counter as each of PX4's MAVLink instances has. What :meth:`send` sends
        goes out on both; :meth:`send_here` stays on one link (its own streams)."""
        other = Outbox(self.system_id, self.component_id, transmit)
        self._mirrors.append(other)
        return other

    @property
    def system_id(self) -> int:
        return int(self.mav.srcSystem)

    @property
    def component_id(self) -> int:
        return int(self.mav.srcComponent)

    def send(self, msg: MAVLinkMessage) -> None:
        """Encode and send one message (built with ``mav.MAVLink_xxx_message(...)``) on this
        link and its mirrors."""
        self._transmit(msg.pack(self.mav))
        for other in self._mirrors:
            other.send_here(msg)

    def send_here(self, msg: MAVLinkMessage) -> None:
        """Send on this link only (a stream of this link's own rates)."""
        self._transmit(msg.pack(self.mav))

    def statustext(self, text: str, severity: int = mav.MAV_SEVERITY_INFO) -> None:
        """STATUSTEXT as PX4 sends it (up to 50 bytes a chunk)."""
        data = text.encode()[:50]
        self.send(mav.MAVLink_statustext_message(severity, data, 0, 0))

    def command_ack(
        self,
        command: int,
        result: int,
        target_system: int,
        target_component: int,
        progress: int = 0,
        result_param2: int = 0,
    ) -> None:
        self.send(
            mav.MAVLink_command_ack_message(
                command, result, progress, result_param2, target_system, target_component
            )
        )


class SimComponent(Protocol):
    """A simulated component. No ``await`` anywhere: the nest drives it."""

    component_id: int

    def on_message(self, msg: MAVLinkMessage) -> None:
        """A message addressed to this component (or broadcast) arrived."""

    def step(self, now_s: float, dt_s: float) -> None:
        """Advance by ``dt_s`` simulated seconds to simulated time ``now_s``."""


@dataclass(frozen=True)
class Record:
    """Something a component did that tests may assert on (played a clip, set a light...)."""

    time_s: float  # simulated seconds since the simulator started
    component: str  # "autopilot" | "dock" | "payload" | "camera"
    kind: str  # e.g. "speaker.text", "light.pattern", "cover.opened"
    data: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Append-only log of records of one nest, bounded."""

    def __init__(self, limit: int = 10_000) -> None:
        self._records: list[Record] = []
        self._limit = limit

    def add(self, time_s: float, component: str, kind: str, **data: Any) -> Record:
        record = Record(time_s, component, kind, dict(data))
        self._records.append(record)
        if len(self._records) > self._limit:
            del self._records[: len(self._records) - self._limit]
        return record

    def all(self, kind_prefix: str = "") -> list[Record]:
        return [r for r in self._records if r.kind.startswith(kind_prefix)]
