"""What the dock and the payload share as MAVLink peripherals: parsed commands and message streams.

A peripheral answers COMMAND_LONG (and COMMAND_INT, which carries the same non-positional
commands) addressed to it, and the message-stream commands every MAVLink component should
know: MAV_CMD_REQUEST_MESSAGE, MAV_CMD_SET_MESSAGE_INTERVAL and MAV_CMD_GET_MESSAGE_INTERVAL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import MAVLinkMessage, Outbox
from sitl.streams import StreamScheduler


@dataclass(frozen=True)
class Command:
    """A COMMAND_LONG or COMMAND_INT, reduced to what a peripheral needs."""

    command: int
    params: tuple[float, float, float, float, float, float, float]
    source_system: int
    source_component: int
    broadcast: bool  # sent to component 0: answer only what this component supports

    @classmethod
    def from_message(cls, msg: MAVLinkMessage) -> Command | None:
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_COMMAND_LONG:
            params = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
        elif msg_id == mav.MAVLINK_MSG_ID_COMMAND_INT:
            params = (msg.param1, msg.param2, msg.param3, msg.param4, float(msg.x), float(msg.y), msg.z)
        else:
            return None
        return cls(
            command=int(msg.command),
            params=tuple(float(p) for p in params),  # type: ignore[arg-type]  # always 7 floats
            source_system=msg.get_srcSystem(),
            source_component=msg.get_srcComponent(),
            broadcast=msg.target_component == 0,
        )

    def param(self, index: int) -> float:
        """``param(1)`` is param1, as the MAVLink spec numbers them."""
        return self.params[index - 1]


MessageBuilder = Callable[[], MAVLinkMessage]


class MessageStreams:
    """Periodic messages of one component, and the commands that request or re-rate them."""

    def __init__(self, outbox: Outbox, streams: dict[int, tuple[float, MessageBuilder]]) -> None:
        self._outbox = outbox
        self._builders = {msg_id: builder for msg_id, (_, builder) in streams.items()}
        self.scheduler = StreamScheduler({msg_id: hz for msg_id, (hz, _) in streams.items()})

    def step(self, now_s: float) -> None:
        for msg_id in self.scheduler.due(now_s):
            self.send_now(msg_id)

    def send_now(self, msg_id: int) -> None:
        self._outbox.send(self._builders[msg_id]())

    def handle(self, cmd: Command, now_s: float) -> bool:
        """Answer a stream command if ``cmd`` is one this component can serve; True when handled.

        A broadcast request for a message this component does not send is left to the others.
        """
        if cmd.command not in (
            mav.MAV_CMD_REQUEST_MESSAGE,
            mav.MAV_CMD_SET_MESSAGE_INTERVAL,
            mav.MAV_CMD_GET_MESSAGE_INTERVAL,
        ):
            return False
        msg_id = int(cmd.param(1))
        known = msg_id in self._builders
        if not known and cmd.broadcast:
            return False
        if not known:
            self._ack(cmd, mav.MAV_RESULT_DENIED)
        elif cmd.command == mav.MAV_CMD_REQUEST_MESSAGE:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self.send_now(msg_id)
        elif cmd.command == mav.MAV_CMD_SET_MESSAGE_INTERVAL:
            self.scheduler.set_interval(msg_id, cmd.param(2), now_s)
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
        else:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self._outbox.send(
                mav.MAVLink_message_interval_message(msg_id, self.scheduler.interval_us(msg_id))
            )
        return True

    def _ack(self, cmd: Command, result: int) -> None:
        self._outbox.command_ack(cmd.command, result, cmd.source_system, cmd.source_component)
