"""Small fakes for driving one simulated component directly, in simulated time, without UDP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import MAVLinkMessage, Outbox, Recorder, SimComponent
from sitl.environment import Faults, GeoPoint, LocalFrame, NestContext, Weather

NEST_SYSID = 7
GCS_SYSID = 255
GCS_COMPID = 190


def make_ctx() -> NestContext:
    home = GeoPoint(43.8859, 125.3245, 215.0)
    return NestContext(
        nest_id=7,
        system_id=NEST_SYSID,
        name="test nest",
        home=home,
        frame=LocalFrame(home),
        weather=Weather(),
        faults=Faults(),
        recorder=Recorder(),
    )


class CapturedOutbox(Outbox):
    """An Outbox whose frames are parsed back into messages the test can read."""

    def __init__(self, component_id: int) -> None:
        super().__init__(NEST_SYSID, component_id, self._capture)
        self._parser = mav.MAVLink(None)
        self.sent: list[MAVLinkMessage] = []

    def _capture(self, data: bytes) -> None:
        self.sent.extend(self._parser.parse_buffer(data) or [])

    def of_type(self, name: str) -> list[MAVLinkMessage]:
        return [m for m in self.sent if m.get_type() == name]

    def acks(self, command: int) -> list[MAVLinkMessage]:
        return [m for m in self.of_type("COMMAND_ACK") if m.command == command]

    def texts(self) -> list[str]:
        return [m.text for m in self.of_type("STATUSTEXT")]

    def clear(self) -> None:
        self.sent.clear()


@dataclass
class FakeDrone:
    """DroneView with a position and a battery, as the dock's sensors see the drone."""

    landed_on_pad: bool = True
    flying: bool = False
    position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    battery: float = 40.0

    def on_pad(self) -> bool:
        return self.landed_on_pad

    def airborne(self) -> bool:
        return self.flying

    def position_ned_m(self) -> tuple[float, float, float]:
        return self.position_m

    def battery_pct(self) -> float:
        return self.battery


@dataclass
class MinimalDrone:
    """Only the DroneView protocol: no position, no battery level."""

    landed_on_pad: bool = True
    flying: bool = False

    def on_pad(self) -> bool:
        return self.landed_on_pad

    def airborne(self) -> bool:
        return self.flying


def command_long(
    command: int, *params: float, target_component: int, target_system: int = NEST_SYSID
) -> MAVLinkMessage:
    """A COMMAND_LONG as a ground station would send it, decoded as the nest would see it."""
    padded = [*params, *([0.0] * (7 - len(params)))]
    msg = mav.MAVLink_command_long_message(target_system, target_component, command, 0, *padded)
    return roundtrip(msg)


def roundtrip(msg: MAVLinkMessage) -> MAVLinkMessage:
    """Encode as the ground station and decode as the nest: the message as it arrives."""
    sender = mav.MAVLink(None, srcSystem=GCS_SYSID, srcComponent=GCS_COMPID)
    data = msg.pack(sender)
    decoded = mav.MAVLink(None).parse_buffer(data)
    assert decoded is not None and len(decoded) == 1
    return decoded[0]


class Stepper:
    """Runs a component forward in simulated time, 50 ms a step, as SimNest does."""

    def __init__(self, *components: SimComponent, dt_s: float = 0.05) -> None:
        self.components = components
        self.dt_s = dt_s
        self.now_s = 0.0

    def run(self, seconds: float) -> None:
        steps = round(seconds / self.dt_s)
        for _ in range(steps):
            self.now_s += self.dt_s
            for c in self.components:
                c.step(self.now_s, self.dt_s)

    def run_until(self, condition: Callable[[], bool], timeout_s: float) -> float:
        """Step until ``condition()`` holds; the simulated seconds it took. Fails on timeout."""
        start = self.now_s
        while not condition():
            if self.now_s - start > timeout_s:
                raise AssertionError(f"condition not met within {timeout_s} simulated s")
            self.run(self.dt_s)
        return self.now_s - start
