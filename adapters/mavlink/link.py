"""One remote component as a pymavlink adapter sees it: its messages, its watchdog, its commands.

The router delivers every message the component sends; the link feeds the heartbeat watchdog and
the command sender, then hands the message to the adapter's handlers. Sending goes out through
the nest's endpoint with dronectl's own MAVLink identity.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.command import CommandSender, RetryPolicy
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
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for each message of the component; returns the unsubscribe call."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def send(self, msg: MAVLinkMessage) -> bool:
        return self._send(msg)

    def deliver(self, msg: MAVLinkMessage) -> None:
        """Called by the router for every message from this component."""
        if msg.get_msgId() == mav.MAVLINK_MSG_ID_HEARTBEAT:
            self.watchdog.beat()
        else:
            self.watchdog.heard()
        self.commands.handle(msg)
        for handler in list(self._handlers):
            handler(msg)

    def close(self) -> None:
        self.watchdog.close()
