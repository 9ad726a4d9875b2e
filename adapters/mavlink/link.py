"""One remote component as a pymavlink adapter sees it: its messages, its watchdog, its commands.

The router delivers every frame the component sends; the link feeds the heartbeat watchdog and
the command sender, then hands the message to the adapter's handlers, decoding only what one of
them reads. Sending goes out through the nest's endpoint with dronectl's own MAVLink identity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import CommandSender, RetryPolicy
from adapters.mavlink.frames import Frame
from adapters.mavlink.message import MAVLinkMessage
from adapters.mavlink.watchdog import DEFAULT_TIMEOUT_S, HeartbeatWatchdog

Handler = Callable[[MAVLinkMessage], None]


class ComponentLink:
    def __init__(
        self,
        name: str,
        system_id: int,
        component_id: int,
        send: Callable[[MAVLinkMessage], bool],
        own_system: int,
        own_component: int,
        watchdog_timeout_s: float = DEFAULT_TIMEOUT_S,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.system_id = system_id
        self.component_id = component_id
        self.own_system = own_system
        self.own_component = own_component
        self._send = send
        self.watchdog = HeartbeatWatchdog(name, watchdog_timeout_s)
        self.commands = CommandSender(
            name, send, self.watchdog, system_id, component_id, own_system, own_component, policy
        )
        self._handlers: list[tuple[Handler, frozenset[int] | None]] = []

    def subscribe(self, handler: Handler, msg_ids: Iterable[int] | None = None) -> Callable[[], None]:
        """Call ``handler`` for each message of the component, or only for those of ``msg_ids``
        (the others are then not decoded for it); returns the unsubscribe call."""
        entry = (handler, None if msg_ids is None else frozenset(msg_ids))
        self._handlers.append(entry)
        return lambda: self._handlers.remove(entry)

    def send(self, msg: MAVLinkMessage) -> bool:
        return self._send(msg)

    def deliver(self, frame: Frame) -> None:
        """Called by the router for every frame from this component. Its message is decoded only
        if the command sender or a handler reads that kind of message."""
        msg_id = frame.msg_id
        if msg_id == mav.MAVLINK_MSG_ID_HEARTBEAT:
            self.watchdog.beat()
        else:
            self.watchdog.heard()
        if msg_id in CommandSender.READS:
            self.commands.handle(frame.message())
        for handler, wanted in list(self._handlers):
            if wanted is None or msg_id in wanted:
                handler(frame.message())

    def close(self) -> None:
        self.watchdog.close()
