"""What a docks-only nest knows of its drone: the real autopilot's telemetry, watched over MAVLink.

``python -m sitl --docks-only`` runs the dock and payload of each nest with no simulated
autopilot: the drone is a real PX4 (in docker-compose, one px4io/px4-sitl container per nest).
A real dock senses its drone with its own sensors (pad contacts, a light curtain, the charger's
contacts); this simulated one reads the drone's own telemetry instead, from a link of the
autopilot that dronectl does not use (PX4's GCS link, UDP 18570+instance): HEARTBEAT (armed),
EXTENDED_SYS_STATE (landed state), GLOBAL_POSITION_INT (where, against the pad) and
BATTERY_STATUS/SYS_STATUS (the charge the charger measures). It implements the dock's
``sitl.environment.DroneView`` from them.

To be streamed to, it says hello: a HEARTBEAT a second to the autopilot's address, as the nest's
own dock (the nest's system id, component 25, MAV_TYPE_CHARGING_STATION), so PX4 adopts it as
that link's partner. It is never a ground station: a simulated PX4 drops frames of its own
system id, and neither counts it towards its data-link-loss check, so the docks simulator never
keeps a drone "connected" while dronectl is gone.

Until the drone has been heard the dock senses no drone (not on the pad, not airborne): dronectl
refuses a launch with "drone not in the dock", as it should when it cannot tell.
"""

from __future__ import annotations

import asyncio
import math
from typing import cast

import structlog

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import AUTOPILOT_COMPID, DOCK_COMPID, MAVLinkMessage
from sitl.environment import LocalFrame

log = structlog.get_logger(__name__)

Address = tuple[str, int]

HELLO_INTERVAL_S = 1.0  # real seconds between our heartbeats to the autopilot's link
STALE_AFTER_S = 5.0  # real seconds of silence after which the drone is no longer sensed
PAD_RADIUS_M = 2.0  # horizontal: a landed drone this near the pad centre is on the pad (GPS error)
PAD_HEIGHT_M = 0.5  # and this low over it
_BATTERY_MESSAGES = (mav.MAVLINK_MSG_ID_BATTERY_STATUS, mav.MAVLINK_MSG_ID_SYS_STATUS)


class WatchedDrone(asyncio.DatagramProtocol):
    """The dock's view of a real drone, from the autopilot's telemetry (``DroneView``)."""

    def __init__(self, system_id: int, frame: LocalFrame, autopilot: Address) -> None:
        self.system_id = system_id
        self.frame = frame
        self.autopilot = autopilot
        self._parser = mav.MAVLink(None)
        self._parser.robust_parsing = True
        self._encoder = mav.MAVLink(None, srcSystem=system_id, srcComponent=DOCK_COMPID)
        self._transport: asyncio.DatagramTransport | None = None
        self._hello: asyncio.TimerHandle | None = None
        self._heard_at: float | None = None  # loop time of the autopilot's last message
        self._armed = False
        self._landed_state: int | None = None
        self._ned: tuple[float, float, float] | None = None
        self._battery_pct: float | None = None
        self.rx_messages = 0

    # DroneView ---------------------------------------------------------------------------------
    def heard(self) -> bool:
        """Whether the autopilot was heard lately (its telemetry stands for the drone)."""
        if self._heard_at is None:
            return False
        return asyncio.get_running_loop().time() - self._heard_at <= STALE_AFTER_S

    def on_pad(self) -> bool:
        if not self.heard() or self._ned is None:
            return False
        north, east, down = self._ned
        landed = (
            self._landed_state == mav.MAV_LANDED_STATE_ON_GROUND
            if self._landed_state is not None
            else not self._armed
        )
        return landed and math.hypot(north, east) <= PAD_RADIUS_M and -down < PAD_HEIGHT_M

    def airborne(self) -> bool:
        if not self.heard():
            return False
        if self._landed_state is not None:
            return self._landed_state in (
                mav.MAV_LANDED_STATE_IN_AIR,
                mav.MAV_LANDED_STATE_TAKEOFF,
                mav.MAV_LANDED_STATE_LANDING,
            )
        return self._armed and self._ned is not None and -self._ned[2] >= PAD_HEIGHT_M

    def armed(self) -> bool:
        return self.heard() and self._armed

    def position_ned_m(self) -> tuple[float, float, float]:
        # unknown: far away, so the light curtain sees nothing in the cover's way
        return self._ned if self._ned is not None and self.heard() else (math.inf, math.inf, 0.0)

    def battery_pct(self) -> float:
        return self._battery_pct if self._battery_pct is not None else 0.0

    # asyncio.DatagramProtocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._say_hello()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._hello is not None:
            self._hello.cancel()

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while the autopilot is not up yet: normal for UDP

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            messages = self._parser.parse_buffer(data) or []
        except Exception:  # noqa: BLE001 - pymavlink raises assorted errors on garbage
            messages = []
        if self._parser.buf_len():
            self._parser = mav.MAVLink(None)
            self._parser.robust_parsing = True
        for msg in messages:
            if msg.get_type() == "BAD_DATA" or msg.get_srcSystem() != self.system_id:
                continue
            if msg.get_srcComponent() != AUTOPILOT_COMPID:
                continue
            self._on_message(msg)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, remote_addr=self.autopilot)

    def close(self) -> None:
        if self._hello is not None:
            self._hello.cancel()
            self._hello = None
        if self._transport is not None:
            self._transport.close()

    # ---------------------------------------------------------------------------------------------
    def _on_message(self, msg: MAVLinkMessage) -> None:
        if self._heard_at is None:
            log.info("sitl.drone_watch.heard", system_id=self.system_id, autopilot=f"{self.autopilot}")
        self._heard_at = asyncio.get_running_loop().time()
        self.rx_messages += 1
        msg_id = msg.get_msgId()
        if msg_id == mav.MAVLINK_MSG_ID_HEARTBEAT:
            self._armed = bool(msg.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED)
        elif msg_id == mav.MAVLINK_MSG_ID_EXTENDED_SYS_STATE:
            self._landed_state = int(msg.landed_state)
        elif msg_id == mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT:
            self._ned = self.frame.to_ned(msg.lat / 1e7, msg.lon / 1e7, msg.alt / 1000.0)
        elif msg_id in _BATTERY_MESSAGES and msg.battery_remaining >= 0:
            self._battery_pct = float(msg.battery_remaining)

    def _say_hello(self) -> None:
        if self._transport is None:
            return
        heartbeat = mav.MAVLink_heartbeat_message(
            mav.MAV_TYPE_CHARGING_STATION, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE, 3
        )
        self._transport.sendto(heartbeat.pack(self._encoder))
        self._hello = asyncio.get_running_loop().call_later(HELLO_INTERVAL_S, self._say_hello)
