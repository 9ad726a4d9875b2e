"""PX4's MAVLink mission protocol server (``MavlinkMissionManager``), without the flying.

Mirrors ``src/modules/mavlink/mavlink_mission.cpp`` of PX4 main (2024-2026) and the recording in
``shared/px4-reference/flight_mission.json``:

* upload: MISSION_COUNT -> MISSION_REQUEST_INT seq 0.. -> MISSION_ACK ACCEPTED. The new plan
  replaces the old one only when the last item arrived and validated; any failure keeps the old
  plan. PX4 re-requests the expected item every 0.25 s and gives up after 5 s of silence with
  only a STATUSTEXT "Operation timeout" (no MISSION_ACK).
* download: MISSION_REQUEST_LIST -> MISSION_COUNT -> (REQUEST_INT -> ITEM_INT)* -> ACK from the
  client; the current item carries ``current=1``.
* MISSION_CLEAR_ALL and an upload of count 0 clear the plan and answer MISSION_ACK ACCEPTED.
* errors as PX4 answers them: unknown command MAV_MISSION_UNSUPPORTED (3) with STATUSTEXT
  "IGN MISSION_ITEM: Invalid item"; unsupported frame MAV_MISSION_UNSUPPORTED_FRAME (2); ROI
  mode MAV_MISSION_INVALID_PARAM1 (6); too many items MAV_MISSION_NO_SPACE (4); a busy manager,
  a wrong mission type, a fence/rally command in a mission or a fence polygon of fewer than 3
  vertices MAV_MISSION_ERROR (1). Out-of-sequence items are silently ignored (the retry timer
  asks for the expected one again); PX4 never answers MAV_MISSION_INVALID_SEQUENCE or DENIED.
* MISSION_ITEM (float) and MISSION_REQUEST switch to PX4's float mode, the _INT messages back to
  int mode; the recorded PX4 starts in int mode.

STATUSTEXTs carry PX4's trailing tab (``"...\\t"``) as the real autopilot sends them.

Stored :class:`MissionItem` s keep the parameters the client sent; global frames are normalised
to MAV_FRAME_GLOBAL_INT (5, AMSL) or MAV_FRAME_GLOBAL_RELATIVE_ALT_INT (6), non-positional items
keep MAV_FRAME_MISSION (2), and x/y are degE7 for global items. A download returns the items as
PX4 formats them (e.g. a waypoint's param3 comes back 0, yaw wrapped to [0, 360)).

MISSION_CURRENT: PX4 does not answer MISSION_SET_CURRENT directly. Its mission manager sends
MISSION_CURRENT once a second (a fixed 1 Hz limiter, not a configurable stream), and at once when
the navigator moves to another item; the new current seq shows up in the next one. The autopilot
sends the periodic message with :meth:`MissionServer.mission_current` and reports navigator
progress with :meth:`MissionServer.navigator_set_current`.
"""

from __future__ import annotations

import enum
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import MAVLinkMessage, Outbox, Recorder

RETRY_TIMEOUT_S = 0.25  # MAVLINK_MISSION_RETRY_TIMEOUT_DEFAULT
PROTOCOL_TIMEOUT_S = 5.0  # MAVLINK_MISSION_PROTOCOL_TIMEOUT_DEFAULT
UINT16_MAX = 65535

MISSION = mav.MAV_MISSION_TYPE_MISSION  # 0
FENCE = mav.MAV_MISSION_TYPE_FENCE  # 1
RALLY = mav.MAV_MISSION_TYPE_RALLY  # 2
ALL = mav.MAV_MISSION_TYPE_ALL  # 255

# PX4 SITL: CONFIG_NUM_MISSION_ITMES_SUPPORTED=10000, DM_KEY_FENCE_POINTS_MAX 64, DM_KEY_SAFE_POINTS_MAX 32.
MAX_COUNT: dict[int, int] = {MISSION: 10_000, FENCE: 64, RALLY: 32}

# MISSION_CURRENT.mission_mode
MISSION_MODE_UNKNOWN = 0
MISSION_MODE_ACTIVE = 1
MISSION_MODE_SUSPENDED = 2

_FRAME_GLOBAL = mav.MAV_FRAME_GLOBAL  # 0
_FRAME_MISSION = mav.MAV_FRAME_MISSION  # 2
_FRAME_GLOBAL_REL = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT  # 3
_FRAME_GLOBAL_INT = mav.MAV_FRAME_GLOBAL_INT  # 5
_FRAME_GLOBAL_REL_INT = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT  # 6

# Commands parse_mavlink_mission_item() accepts with a global frame ...
GLOBAL_COMMANDS = frozenset(
    {
        mav.MAV_CMD_NAV_WAYPOINT,
        mav.MAV_CMD_NAV_LOITER_UNLIM,
        mav.MAV_CMD_NAV_LOITER_TIME,
        mav.MAV_CMD_NAV_LAND,
        mav.MAV_CMD_NAV_TAKEOFF,
        mav.MAV_CMD_NAV_LOITER_TO_ALT,
        mav.MAV_CMD_NAV_ROI,
        mav.MAV_CMD_DO_SET_ROI,
        mav.MAV_CMD_DO_SET_ROI_LOCATION,
        mav.MAV_CMD_NAV_VTOL_TAKEOFF,
        mav.MAV_CMD_NAV_VTOL_LAND,
        mav.MAV_CMD_CONDITION_GATE,
        mav.MAV_CMD_NAV_FENCE_RETURN_POINT,
        mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
        mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
        mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
        mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
        mav.MAV_CMD_NAV_RALLY_POINT,
        mav.MAV_CMD_COMPONENT_ARM_DISARM,
        mav.MAV_CMD_DO_AUTOTUNE_ENABLE,
    }
)
# ... and with MAV_FRAME_MISSION (no position). Anything else: MAV_MISSION_UNSUPPORTED.
MISSION_FRAME_COMMANDS = frozenset(
    {
        mav.MAV_CMD_DO_JUMP,
        mav.MAV_CMD_NAV_ROI,
        mav.MAV_CMD_DO_SET_ROI,
        mav.MAV_CMD_DO_WINCH,
        mav.MAV_CMD_DO_GRIPPER,
        mav.MAV_CMD_DO_CHANGE_SPEED,
        mav.MAV_CMD_DO_SET_HOME,
        mav.MAV_CMD_DO_LAND_START,
        mav.MAV_CMD_DO_TRIGGER_CONTROL,
        mav.MAV_CMD_DO_DIGICAM_CONTROL,
        mav.MAV_CMD_DO_MOUNT_CONFIGURE,
        mav.MAV_CMD_DO_MOUNT_CONTROL,
        mav.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW,
        mav.MAV_CMD_SET_CAMERA_FOCUS,
        mav.MAV_CMD_DO_GIMBAL_MANAGER_CONFIGURE,
        mav.MAV_CMD_IMAGE_START_CAPTURE,
        mav.MAV_CMD_IMAGE_STOP_CAPTURE,
        mav.MAV_CMD_VIDEO_START_CAPTURE,
        mav.MAV_CMD_VIDEO_STOP_CAPTURE,
        mav.MAV_CMD_DO_CONTROL_VIDEO,
        mav.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
        mav.MAV_CMD_OBLIQUE_SURVEY,
        mav.MAV_CMD_DO_SET_CAM_TRIGG_INTERVAL,
        mav.MAV_CMD_SET_CAMERA_MODE,
        mav.MAV_CMD_SET_CAMERA_SOURCE,
        mav.MAV_CMD_DO_VTOL_TRANSITION,
        mav.MAV_CMD_NAV_DELAY,
        mav.MAV_CMD_NAV_RETURN_TO_LAUNCH,
        mav.MAV_CMD_DO_SET_ROI_WPNEXT_OFFSET,
        mav.MAV_CMD_DO_SET_ROI_NONE,
        mav.MAV_CMD_CONDITION_DELAY,
        mav.MAV_CMD_CONDITION_DISTANCE,
        mav.MAV_CMD_DO_SET_ACTUATOR,
        mav.MAV_CMD_DO_AUTOTUNE_ENABLE,
        mav.MAV_CMD_COMPONENT_ARM_DISARM,
    }
)
FENCE_POLYGON_COMMANDS = frozenset(
    {mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION}
)
FENCE_CIRCLE_COMMANDS = frozenset(
    {mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION}
)
# Not allowed in a MISSION plan (PX4 answers MAV_MISSION_ERROR).
_FENCE_OR_RALLY = FENCE_POLYGON_COMMANDS | FENCE_CIRCLE_COMMANDS | {mav.MAV_CMD_NAV_RALLY_POINT}

_MISSION_MESSAGES = frozenset(
    {
        "MISSION_COUNT",
        "MISSION_ITEM_INT",
        "MISSION_ITEM",
        "MISSION_REQUEST_LIST",
        "MISSION_REQUEST_INT",
        "MISSION_REQUEST",
        "MISSION_ACK",
        "MISSION_CLEAR_ALL",
        "MISSION_SET_CURRENT",
    }
)


@dataclass(frozen=True)
class MissionItem:
    """One accepted plan item. Global items: x/y degE7, frame 5 (AMSL) or 6 (relative to home)."""

    seq: int
    frame: int
    command: int
    param1: float
    param2: float
    param3: float
    param4: float
    x: int
    y: int
    z: float
    autocontinue: int
    mission_type: int

    @property
    def is_global(self) -> bool:
        return self.frame in (_FRAME_GLOBAL_INT, _FRAME_GLOBAL_REL_INT)

    @property
    def lat_deg(self) -> float:
        return self.x * 1e-7

    @property
    def lon_deg(self) -> float:
        return self.y * 1e-7

    @property
    def altitude_is_relative(self) -> bool:
        return self.frame == _FRAME_GLOBAL_REL_INT


class _State(enum.Enum):
    IDLE = 0
    SENDLIST = 1  # a client downloads
    GETLIST = 2  # a client uploads


class _Rejected(Exception):
    """An item PX4 refuses; ``result`` is the MAV_MISSION_RESULT it answers with."""

    def __init__(self, result: int) -> None:
        super().__init__(result)
        self.result = result


def plan_id(items: tuple[MissionItem, ...]) -> int:
    """A 32-bit checksum of a plan (PX4's role of mission_id/opaque_id); 0 for an empty plan."""
    crc = 0
    for it in items:
        crc = zlib.crc32(
            struct.pack(
                "<BHB4fiif",
                it.frame,
                it.command,
                it.autocontinue,
                it.param1,
                it.param2,
                it.param3,
                it.param4,
                it.x,
                it.y,
                it.z,
            ),
            crc,
        )
    return crc


def _wrap_deg(value: float) -> float:
    """Yaw as PX4 returns it: wrap_2pi(radians(v)) in degrees; NaN stays NaN."""
    if not math.isfinite(value):
        return value
    return value % 360.0


def _download_params(item: MissionItem) -> tuple[float, float, float, float]:
    """param1..4 as PX4's format_mavlink_mission_item() fills them from its stored item."""
    p1, p2, p3, p4 = item.param1, item.param2, item.param3, item.param4
    if item.frame == _FRAME_MISSION:
        if item.command == mav.MAV_CMD_DO_JUMP:
            return float(int(p1)), float(int(p2)), p3, p4
        return p1, p2, p3, p4
    cmd = item.command
    if cmd == mav.MAV_CMD_NAV_WAYPOINT:
        return p1, p2, 0.0, _wrap_deg(p4)
    if cmd == mav.MAV_CMD_NAV_LOITER_UNLIM:
        return 0.0, 0.0, p3, _wrap_deg(p4)
    if cmd == mav.MAV_CMD_NAV_LOITER_TIME:
        return p1, float(p2 > 0), p3, float(p4 > 0)
    if cmd == mav.MAV_CMD_NAV_LAND:
        return 0.0, float(int(p2) & 0xFF) if math.isfinite(p2) else 0.0, 0.0, _wrap_deg(p4)
    if cmd in (mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_CMD_NAV_VTOL_TAKEOFF, mav.MAV_CMD_NAV_VTOL_LAND):
        return 0.0, 0.0, 0.0, _wrap_deg(p4)
    if cmd == mav.MAV_CMD_NAV_LOITER_TO_ALT:
        return float(p1 > 0), p2, 0.0, float(p4 > 0)
    if cmd in FENCE_POLYGON_COMMANDS:
        return float(_vertex_count(p1)), 0.0, 0.0, 0.0
    if cmd in FENCE_CIRCLE_COMMANDS:
        return p1, 0.0, 0.0, 0.0
    return 0.0, 0.0, 0.0, 0.0


def _vertex_count(param1: float) -> int:
    """PX4: (uint16_t)(param1 + 0.5f)."""
    if not math.isfinite(param1) or param1 < 0:
        return 0
    return int(param1 + 0.5) & 0xFFFF


def vertex_count(item: MissionItem) -> int:
    """The vertex count a fence polygon vertex item declares (param1, rounded as PX4 does)."""
    return _vertex_count(item.param1)


class MissionServer:
    """One autopilot's mission manager: MISSION, FENCE and RALLY plans and their transfers.

    ``on_message`` and ``step`` never block and never read a clock: the nest passes simulated
    time. ``on_plan_changed(mission_type)`` runs after an upload that changed a plan and after
    every clear (PX4 notifies its navigator in exactly these cases; re-uploading an identical
    plan changes nothing, not even the current item).
    """

    def __init__(self, outbox: Outbox, recorder: Recorder, component_name: str = "autopilot") -> None:
        self._outbox = outbox
        self._recorder = recorder
        self._component = component_name
        self._plans: dict[int, tuple[MissionItem, ...]] = {MISSION: (), FENCE: (), RALLY: ()}
        self._ids: dict[int, int] = {MISSION: 0, FENCE: 0, RALLY: 0}
        self.current_seq = 0
        self.on_plan_changed: Callable[[int], None] | None = None

        self._state = _State.IDLE
        self._int_mode = True  # the recorded PX4 main answers a first MISSION_COUNT with REQUEST_INT
        self._mission_type = MISSION
        self._partner: tuple[int, int] = (0, 0)
        self._transfer_seq = 0
        self._transfer_count = 0
        self._transfer_items: list[MissionItem] = []
        self._transfer_current_seq = -1
        self._time_last_sent: float | None = None
        self._time_last_recv: float | None = None
        self._now_s = 0.0

    # public API ---------------------------------------------------------------------------
    def items(self, mission_type: int) -> tuple[MissionItem, ...]:
        return self._plans.get(mission_type, ())

    def plan_id(self, mission_type: int) -> int:
        return self._ids.get(mission_type, 0)

    @property
    def transfer_in_progress(self) -> bool:
        return self._state is not _State.IDLE

    def mission_current(
        self, mission_state: int | None = None, mission_mode: int = MISSION_MODE_SUSPENDED
    ) -> MAVLinkMessage:
        """MISSION_CURRENT as PX4 sends it (total 65535 and state NO_MISSION without a mission).

        ``mission_state`` (MISSION_STATE_*) and ``mission_mode`` (1 in mission mode, 2 not) come
        from the autopilot; the default state is NO_MISSION or NOT_STARTED.
        """
        count = len(self._plans[MISSION])
        if mission_state is None:
            mission_state = mav.MISSION_STATE_NO_MISSION if count == 0 else mav.MISSION_STATE_NOT_STARTED
        total = count if count > 0 else UINT16_MAX
        return mav.MAVLink_mission_current_message(self.current_seq, total, mission_state, mission_mode)

    def navigator_set_current(
        self, seq: int, mission_state: int | None = None, mission_mode: int = MISSION_MODE_ACTIVE
    ) -> None:
        """The navigator moved to item ``seq``: PX4 sends MISSION_CURRENT at once when it changes."""
        if seq == self.current_seq:
            return
        self.current_seq = seq
        if 0 <= seq < len(self._plans[MISSION]):
            self._outbox.send(self.mission_current(mission_state, mission_mode))
        elif self._plans[MISSION]:
            self._critical("ERROR: wp index out of bounds")

    def on_message(self, msg: MAVLinkMessage, now_s: float) -> bool:
        """Handle one mission-protocol message; True when it was one (addressed to us)."""
        kind = msg.get_type()
        if kind not in _MISSION_MESSAGES or not self._addressed_to_us(msg):
            return False
        self._now_s = now_s
        handler = {
            "MISSION_COUNT": self._handle_count,
            "MISSION_ITEM_INT": self._handle_item,
            "MISSION_ITEM": self._handle_item,
            "MISSION_REQUEST_LIST": self._handle_request_list,
            "MISSION_REQUEST_INT": self._handle_request,
            "MISSION_REQUEST": self._handle_request,
            "MISSION_ACK": self._handle_ack,
            "MISSION_CLEAR_ALL": self._handle_clear_all,
            "MISSION_SET_CURRENT": self._handle_set_current,
        }[kind]
        handler(msg)
        return True

    def step(self, now_s: float) -> None:
        """Re-request a lost item every 0.25 s; abandon a transfer after 5 s of silence."""
        self._now_s = now_s
        if (
            self._state is _State.GETLIST
            and self._time_last_sent is not None
            and now_s - self._time_last_sent > RETRY_TIMEOUT_S
        ):
            self._send_request(self._transfer_seq)
        elif (
            self._state is not _State.IDLE
            and self._time_last_recv is not None
            and now_s - self._time_last_recv > PROTOCOL_TIMEOUT_S
        ):
            self._critical("Operation timeout")
            self._record("mission.timeout", mission_type=self._mission_type, state=self._state.name)
            self._state = _State.IDLE
        elif self._state is _State.IDLE:
            self._time_last_sent = None
            self._time_last_recv = None

    # handlers -----------------------------------------------------------------------------
    def _handle_count(self, msg: MAVLinkMessage) -> None:
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        self._time_last_recv = self._now_s
        if self._state is _State.GETLIST:
            if sender != self._partner:
                self._ack(sender, mav.MAV_MISSION_ERROR)  # another client while receiving
                return
            if self._transfer_seq != 0:
                self._ack(self._partner, mav.MAV_MISSION_ERROR)
                self._critical("WPM: REJ. CMD: Busy")
                return
            self._send_request(0)  # our first request was lost: ask again
            return
        if self._state is _State.SENDLIST:
            self._ack(sender, mav.MAV_MISSION_ERROR)
            self._critical("WPM: IGN MISSION_COUNT: Busy")
            return

        self._partner = sender
        self._mission_type = int(msg.mission_type)
        count = int(msg.count)
        if count > MAX_COUNT.get(self._mission_type, 0):
            self._ack(self._partner, mav.MAV_MISSION_NO_SPACE)
            self._record("mission.rejected", mission_type=self._mission_type, result=4, count=count)
            return
        if count == 0:
            self._clear(self._mission_type)
            self._ack(self._partner, mav.MAV_MISSION_ACCEPTED)
            return
        self._state = _State.GETLIST
        self._transfer_seq = 0
        self._transfer_count = count
        self._transfer_items = []
        self._transfer_current_seq = -1
        self._send_request(0)

    def _handle_item(self, msg: MAVLinkMessage) -> None:
        is_int = msg.get_type() == "MISSION_ITEM_INT"
        self._int_mode = is_int
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        if sender != self._partner:
            self._critical("REJ. MIS ITEM: partner id mismatch")
            return
        if int(msg.mission_type) != self._mission_type:
            self._ack(self._partner, mav.MAV_MISSION_ERROR)
            return
        seq = int(msg.seq)
        if self._state is _State.GETLIST:
            self._time_last_recv = self._now_s
            if seq != self._transfer_seq:
                return  # not the one we asked for: ignored, the retry asks again
        elif self._state is _State.IDLE:
            if self._transfer_seq == seq + 1:
                # the client missed our final ACK and sent the last item again
                self._ack(self._partner, mav.MAV_MISSION_ACCEPTED)
            else:
                self._ack(self._partner, mav.MAV_MISSION_ERROR)
                self._critical("IGN MISSION_ITEM: No transfer")
            return
        else:
            self._ack(self._partner, mav.MAV_MISSION_ERROR)
            self._critical("IGN MISSION_ITEM: Busy")
            return

        try:
            item = self._parse_item(msg, is_int)
        except _Rejected as rejected:
            self._fail(rejected.result, seq, int(msg.command))
            self._critical("IGN MISSION_ITEM: Invalid item")
            return
        if self._mission_type == MISSION and item.command in _FENCE_OR_RALLY:
            self._fail(mav.MAV_MISSION_ERROR, seq, item.command)
            return
        if self._mission_type == FENCE and item.command in FENCE_POLYGON_COMMANDS and vertex_count(item) < 3:
            self._fail(mav.MAV_MISSION_ERROR, seq, item.command)  # PX4: "Fence: too few vertices"
            return

        self._transfer_items.append(item)
        if msg.current:
            self._transfer_current_seq = seq
        self._transfer_seq = seq + 1
        if self._transfer_seq < self._transfer_count:
            self._send_request(self._transfer_seq)
            return
        self._state = _State.IDLE
        self._commit()
        self._ack(self._partner, mav.MAV_MISSION_ACCEPTED)

    def _handle_request_list(self, msg: MAVLinkMessage) -> None:
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        mission_type = int(msg.mission_type)
        if self._state is _State.SENDLIST and self._transfer_seq == self._transfer_count:
            self._state = _State.IDLE  # everything was sent, the client's ACK got lost
        resumable = (
            self._state is _State.SENDLIST and mission_type == self._mission_type and sender == self._partner
        )
        if self._state is not _State.IDLE and not resumable:
            self._outbox.statustext(
                "Mission download request ignored, already active\t", mav.MAV_SEVERITY_INFO
            )
            return
        self._time_last_recv = self._now_s
        self._state = _State.SENDLIST
        self._mission_type = mission_type
        self._partner = sender
        self._transfer_seq = 0
        self._transfer_count = len(self.items(mission_type))
        self._time_last_sent = self._now_s
        self._outbox.send(
            mav.MAVLink_mission_count_message(sender[0], sender[1], self._transfer_count, mission_type)
        )

    def _handle_request(self, msg: MAVLinkMessage) -> None:
        self._int_mode = msg.get_type() == "MISSION_REQUEST_INT"
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        if sender != self._partner:
            self._critical("WPM: REJ. CMD: partner id mismatch")
            return
        if self._state is _State.IDLE:
            return  # PX4 ignores it silently (buggy OSDs)
        if self._state is _State.GETLIST:
            self._critical("WPM: REJ. CMD: Busy")
            return
        if int(msg.mission_type) != self._mission_type:
            return
        self._time_last_recv = self._now_s
        seq = int(msg.seq)
        if seq == self._transfer_seq and self._transfer_seq < self._transfer_count:
            self._transfer_seq += 1
        elif seq != self._transfer_seq - 1:
            self._state = _State.IDLE
            self._ack(self._partner, mav.MAV_MISSION_ERROR)
            self._critical("WPM: REJ. CMD: Req. WP was unexpected")
            return
        items = self.items(self._mission_type)
        if seq >= len(items):
            self._state = _State.IDLE
            self._ack(self._partner, mav.MAV_MISSION_ERROR)
            self._critical("WPM: REJ. CMD: Req. WP was unexpected")
            return
        self._send_item(items[seq])

    def _handle_ack(self, msg: MAVLinkMessage) -> None:
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        if sender != self._partner:
            self._critical("REJ. WP CMD: partner id mismatch")
            return
        result = int(msg.type)
        if self._state is _State.SENDLIST and int(msg.mission_type) == self._mission_type:
            self._time_last_recv = self._now_s
            self._state = _State.IDLE
        elif self._state is _State.GETLIST:
            if result == mav.MAV_MISSION_UNSUPPORTED:  # the client cannot do int (or float) mode
                self._int_mode = not self._int_mode
                self._send_request(self._transfer_seq)
            elif result == mav.MAV_MISSION_OPERATION_CANCELLED:
                self._state = _State.IDLE
                self._record("mission.cancelled", mission_type=self._mission_type, seq=self._transfer_seq)

    def _handle_clear_all(self, msg: MAVLinkMessage) -> None:
        sender = (msg.get_srcSystem(), msg.get_srcComponent())
        if self._state is not _State.IDLE:
            self._critical("WPM: IGN CLEAR CMD: Busy")
            return
        self._time_last_recv = self._now_s
        self._mission_type = int(msg.mission_type)
        types = (MISSION, FENCE, RALLY) if self._mission_type == ALL else (self._mission_type,)
        for mission_type in types:
            self._clear(mission_type)
        self._ack(sender, mav.MAV_MISSION_ACCEPTED)

    def _handle_set_current(self, msg: MAVLinkMessage) -> None:
        if self._state is not _State.IDLE:
            self._critical("WPM: IGN WP CURR CMD: Busy")
            return
        self._time_last_recv = self._now_s
        seq = int(msg.seq)
        if seq < len(self._plans[MISSION]):
            self.current_seq = seq
            self._record("mission.set_current", seq=seq)
        else:
            self._critical("WPM: WP CURR CMD: Not in list")

    # helpers ------------------------------------------------------------------------------
    def _addressed_to_us(self, msg: MAVLinkMessage) -> bool:
        """PX4's CHECK_SYSID_COMPID_MISSION: our system, and our component, 190 or broadcast."""
        if int(msg.target_system) != self._outbox.system_id:
            return False
        return int(msg.target_component) in (
            self._outbox.component_id,
            mav.MAV_COMP_ID_MISSIONPLANNER,
            mav.MAV_COMP_ID_ALL,
        )

    def _parse_item(self, msg: MAVLinkMessage, is_int: bool) -> MissionItem:
        """PX4's parse_mavlink_mission_item(): the stored item, or _Rejected(MAV_MISSION_RESULT)."""
        frame = int(msg.frame)
        command = int(msg.command)
        p1, p2, p3, p4 = float(msg.param1), float(msg.param2), float(msg.param3), float(msg.param4)
        int_frames = (_FRAME_GLOBAL_INT, _FRAME_GLOBAL_REL_INT) if self._int_mode else ()
        if frame in (_FRAME_GLOBAL, _FRAME_GLOBAL_REL, *int_frames):
            if command not in GLOBAL_COMMANDS:
                raise _Rejected(mav.MAV_MISSION_UNSUPPORTED)
            if command in (mav.MAV_CMD_NAV_ROI, mav.MAV_CMD_DO_SET_ROI) and int(p1) not in (
                mav.MAV_ROI_LOCATION,
                mav.MAV_ROI_NONE,
            ):
                raise _Rejected(mav.MAV_MISSION_INVALID_PARAM1)
            if is_int:
                x, y = int(msg.x), int(msg.y)
            else:
                x, y = _deg_e7(float(msg.x)), _deg_e7(float(msg.y))
            relative = frame in (_FRAME_GLOBAL_REL, _FRAME_GLOBAL_REL_INT)
            stored_frame = _FRAME_GLOBAL_REL_INT if relative else _FRAME_GLOBAL_INT
        elif frame == _FRAME_MISSION:
            if command not in MISSION_FRAME_COMMANDS:
                raise _Rejected(mav.MAV_MISSION_UNSUPPORTED)
            if command in (mav.MAV_CMD_NAV_ROI, mav.MAV_CMD_DO_SET_ROI) and int(p1) not in (
                mav.MAV_ROI_NONE,
                mav.MAV_ROI_WPNEXT,
                mav.MAV_ROI_WPINDEX,
            ):
                raise _Rejected(mav.MAV_MISSION_INVALID_PARAM1)
            x, y = (int(msg.x), int(msg.y)) if is_int else (_round(float(msg.x)), _round(float(msg.y)))
            stored_frame = _FRAME_MISSION
        else:
            raise _Rejected(mav.MAV_MISSION_UNSUPPORTED_FRAME)
        return MissionItem(
            seq=int(msg.seq),
            frame=stored_frame,
            command=command,
            param1=p1,
            param2=p2,
            param3=p3,
            param4=p4,
            x=x,
            y=y,
            z=float(msg.z),
            autocontinue=int(msg.autocontinue),
            mission_type=self._mission_type,
        )

    def _commit(self) -> None:
        mission_type = self._mission_type
        items = tuple(self._transfer_items)
        self._transfer_items = []
        new_id = plan_id(items)
        self._record("mission.accepted", mission_type=mission_type, count=len(items))
        if new_id == self._ids[mission_type] and len(items) == len(self._plans[mission_type]):
            return  # PX4: "Only need to update if the mission actually changed"
        self._plans[mission_type] = items
        self._ids[mission_type] = new_id
        if mission_type == MISSION:
            self.current_seq = max(self._transfer_current_seq, 0)
        if self.on_plan_changed is not None:
            self.on_plan_changed(mission_type)

    def _clear(self, mission_type: int) -> None:
        if mission_type not in self._plans:
            return  # PX4 logs "mission type not handled" and still ACKs ACCEPTED
        self._plans[mission_type] = ()
        self._ids[mission_type] = 0
        if mission_type == MISSION:
            self.current_seq = 0
        self._record("mission.cleared", mission_type=mission_type)
        if self.on_plan_changed is not None:
            self.on_plan_changed(mission_type)

    def _fail(self, result: int, seq: int, command: int) -> None:
        self._ack(self._partner, result)
        self._state = _State.IDLE
        self._transfer_items = []
        self._record(
            "mission.rejected", mission_type=self._mission_type, result=result, seq=seq, command=command
        )

    def _send_request(self, seq: int) -> None:
        if seq >= MAX_COUNT.get(self._mission_type, 0):
            self._critical("ERROR: Waypoint index exceeds list capacity")
            return
        self._time_last_sent = self._now_s
        sysid, compid = self._partner
        if self._int_mode:
            self._outbox.send(mav.MAVLink_mission_request_int_message(sysid, compid, seq, self._mission_type))
        else:
            self._outbox.send(mav.MAVLink_mission_request_message(sysid, compid, seq, self._mission_type))

    def _send_item(self, item: MissionItem) -> None:
        self._time_last_sent = self._now_s
        sysid, compid = self._partner
        p1, p2, p3, p4 = _download_params(item)
        current = 1 if (item.mission_type == MISSION and item.seq == self.current_seq) else 0
        if self._int_mode:
            self._outbox.send(
                mav.MAVLink_mission_item_int_message(
                    sysid, compid, item.seq, item.frame, item.command, current, item.autocontinue,
                    p1, p2, p3, p4, item.x, item.y, item.z, item.mission_type,
                )
            )  # fmt: skip
            return
        if item.is_global:
            frame = _FRAME_GLOBAL_REL if item.altitude_is_relative else _FRAME_GLOBAL
            x, y = item.lat_deg, item.lon_deg
        else:
            frame, x, y = item.frame, float(item.x), float(item.y)
        self._outbox.send(
            mav.MAVLink_mission_item_message(
                sysid, compid, item.seq, frame, item.command, current, item.autocontinue,
                p1, p2, p3, p4, x, y, item.z, item.mission_type,
            )
        )  # fmt: skip

    def _ack(self, target: tuple[int, int], result: int) -> None:
        self._outbox.send(mav.MAVLink_mission_ack_message(target[0], target[1], result, self._mission_type))

    def _critical(self, text: str) -> None:
        # Sent after any MISSION_ACK of the same event: PX4 queues texts to its STATUSTEXT
        # stream, so on the wire they follow the ACK (recorded: +35 ms).
        # PX4 ends texts that also go out as events with a tab; the real autopilot sends it.
        self._outbox.statustext(text + "\t", mav.MAV_SEVERITY_CRITICAL)

    def _record(self, kind: str, **data: object) -> None:
        self._recorder.add(self._now_s, self._component, kind, **data)


def _deg_e7(deg: float) -> int:
    return _round(deg * 1e7)


def _round(value: float) -> int:
    if not math.isfinite(value):
        return 0
    return max(-(2**31), min(2**31 - 1, round(value)))
