"""Drive one Px4Autopilot in simulated time without sockets: send it messages, read its output."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.px4 import Px4Autopilot
from sitl.component import MAVLinkMessage, Outbox, Recorder
from sitl.environment import Faults, GeoPoint, LocalFrame, NestContext, Weather

HOME = GeoPoint(43.8171, 125.3235, 215.0)
GCS_SYSID, GCS_COMPID = 255, 190


@dataclass
class FakeDock:
    open: bool = True
    charger: bool = False

    def cover_open(self) -> bool:
        return self.open

    def charging(self) -> bool:
        return self.charger


@dataclass
class Harness:
    ap: Px4Autopilot
    ctx: NestContext
    dock: FakeDock
    sent: list[MAVLinkMessage] = field(default_factory=list)
    now_s: float = 0.0
    gcs: mav.MAVLink = field(
        default_factory=lambda: mav.MAVLink(None, srcSystem=GCS_SYSID, srcComponent=GCS_COMPID)
    )
    heartbeats: bool = True
    _next_hb_s: float = 0.0

    def run(self, seconds: float, dt_s: float = 0.05) -> None:
        end = self.now_s + seconds
        while self.now_s < end - 1e-9:
            self.now_s = round(self.now_s + dt_s, 6)
            if self.heartbeats and self.now_s >= self._next_hb_s:
                self._next_hb_s = self.now_s + 1.0
                self.send(
                    mav.MAVLink_heartbeat_message(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3)
                )
            self.ap.step(self.now_s, dt_s)

    def run_until(self, cond: object, timeout_s: float, dt_s: float = 0.05) -> float:
        assert callable(cond)
        start = self.now_s
        while not cond():
            if self.now_s - start > timeout_s:
                raise AssertionError(f"condition not met within {timeout_s} s (simulated)")
            self.run(dt_s, dt_s)
        return self.now_s - start

    def send(self, msg: MAVLinkMessage) -> None:
        """Encode as the GCS would and hand the decoded message to the autopilot."""
        buf = msg.pack(self.gcs)
        decoded = mav.MAVLink(None).parse_buffer(buf)
        assert decoded
        self.ap.on_message(decoded[0])

    def command(self, command: int, *params: float, target_component: int = 1) -> int:
        p = [*params] + [0.0] * (7 - len(params))
        self.sent.clear()
        self.send(mav.MAVLink_command_long_message(1, target_component, command, 0, *p))
        return self.ack(command)

    def command_int(self, command: int, frame: int, p1: float, p2: float, p3: float, p4: float,
                    x: int, y: int, z: float) -> int:  # fmt: skip
        self.sent.clear()
        self.send(mav.MAVLink_command_int_message(1, 1, frame, command, 0, 0, p1, p2, p3, p4, x, y, z))
        return self.ack(command)

    def ack(self, command: int) -> int:
        acks = [m for m in self.sent if m.get_type() == "COMMAND_ACK" and m.command == command]
        assert len(acks) == 1, f"expected one ACK for {command}, got {acks}"
        return int(acks[0].result)

    def texts(self) -> list[str]:
        return [m.text.rstrip("\x00") if isinstance(m.text, str) else m.text.decode() for m in self.sent
                if m.get_type() == "STATUSTEXT"]  # fmt: skip

    def of_type(self, name: str) -> list[MAVLinkMessage]:
        return [m for m in self.sent if m.get_type() == name]

    @property
    def height_m(self) -> float:
        return -self.ap.vehicle.state.down_m

    def distance_from_pad_m(self) -> float:
        s = self.ap.vehicle.state
        return math.hypot(s.north_m, s.east_m)


def make(weather: Weather | None = None, cover_open: bool = True, sysid: int = 1) -> Harness:
    sent: list[MAVLinkMessage] = []
    parser = mav.MAVLink(None)
    parser.robust_parsing = True

    def transmit(data: bytes) -> None:
        sent.extend(parser.parse_buffer(data) or [])

    ctx = NestContext(
        nest_id=1, system_id=sysid, name="test", home=HOME, frame=LocalFrame(HOME),
        weather=weather or Weather(wind_speed_mps=0.0, wind_gust_mps=0.0),
        faults=Faults(), recorder=Recorder(),
    )  # fmt: skip
    dock = FakeDock(open=cover_open)
    ap = Px4Autopilot(ctx, Outbox(sysid, 1, transmit), dock)
    return Harness(ap=ap, ctx=ctx, dock=dock, sent=sent)
