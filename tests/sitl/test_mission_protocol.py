"""The simulated PX4 mission manager against PX4's recorded handshakes and its error paths.

The server is driven directly: GCS messages are encoded with a GCS encoder and decoded again
(so they carry real source ids), and everything the server sends goes through an Outbox whose
transmit hands the bytes to a fresh parser.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.mission import (
    FENCE,
    MISSION,
    PROTOCOL_TIMEOUT_S,
    RALLY,
    RETRY_TIMEOUT_S,
    MissionServer,
)
from sitl.component import AUTOPILOT_COMPID, Outbox, Recorder

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "px4-reference"
SYSID = 1
GCS = (255, 190)
# Changchun-like home of a nest; the recording was flown around PX4's default SITL home.
HOME_LAT, HOME_LON = 43.8802, 125.3215
RECORDED_HOME_LAT, RECORDED_HOME_LON = 47.397742, 8.545594

WP = mav.MAV_CMD_NAV_WAYPOINT
REL_INT = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT


class Harness:
    """A MissionServer plus a GCS that encodes for it and decodes what it sends."""

    def __init__(self) -> None:
        self.rx = mav.MAVLink(None)
        self.rx.robust_parsing = True
        self.sent: list[Any] = []
        self.recorder = Recorder()
        self.server = MissionServer(Outbox(SYSID, AUTOPILOT_COMPID, self._transmit), self.recorder)
        self.changes: list[int] = []
        self.server.on_plan_changed = self.changes.append
        self.now_s = 100.0
        self._encoders: dict[tuple[int, int], mav.MAVLink] = {}
        self._decoder = mav.MAVLink(None)

    def _transmit(self, data: bytes) -> None:
        self.sent.extend(self.rx.parse_buffer(data) or [])

    def send(self, msg: Any, src: tuple[int, int] = GCS) -> bool:
        encoder = self._encoders.setdefault(src, mav.MAVLink(None, srcSystem=src[0], srcComponent=src[1]))
        decoded = self._decoder.parse_buffer(msg.pack(encoder))
        assert decoded is not None and len(decoded) == 1
        return self.server.on_message(decoded[0], self.now_s)

    def take(self) -> list[Any]:
        out, self.sent = self.sent, []
        return out

    def advance(self, seconds: float, tick_s: float = 0.05) -> None:
        end = self.now_s + seconds
        while self.now_s < end - 1e-9:
            self.now_s = min(end, self.now_s + tick_s)
            self.server.step(self.now_s)

    # GCS-side message builders --------------------------------------------------------------
    @staticmethod
    def count(n: int, mission_type: int = MISSION) -> Any:
        return mav.MAVLink_mission_count_message(SYSID, AUTOPILOT_COMPID, n, mission_type)

    @staticmethod
    def item_int(
        seq: int,
        command: int = WP,
        frame: int = REL_INT,
        lat: float = HOME_LAT,
        lon: float = HOME_LON,
        z: float = 20.0,
        params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, math.nan),
        mission_type: int = MISSION,
        current: int = 0,
    ) -> Any:
        return mav.MAVLink_mission_item_int_message(
            SYSID, AUTOPILOT_COMPID, seq, frame, command, current, 1, *params,
            round(lat * 1e7), round(lon * 1e7), z, mission_type,
        )  # fmt: skip

    def upload(self, items: list[Any], mission_type: int = MISSION) -> list[Any]:
        """A complete, well-behaved upload; returns everything the server sent."""
        out: list[Any] = []
        self.send(self.count(len(items), mission_type))
        out += self.take()
        for item in items:
            self.send(item)
            out += self.take()
        return out

    def download(self, mission_type: int = MISSION, int_mode: bool = True) -> list[Any]:
        """A complete download; returns the items the server sent."""
        self.send(mav.MAVLink_mission_request_list_message(SYSID, AUTOPILOT_COMPID, mission_type))
        (count,) = self.take()
        assert count.get_type() == "MISSION_COUNT"
        items = []
        for seq in range(count.count):
            if int_mode:
                req = mav.MAVLink_mission_request_int_message(SYSID, AUTOPILOT_COMPID, seq, mission_type)
            else:
                req = mav.MAVLink_mission_request_message(SYSID, AUTOPILOT_COMPID, seq, mission_type)
            self.send(req)
            (item,) = self.take()
            items.append(item)
        self.send(mav.MAVLink_mission_ack_message(SYSID, AUTOPILOT_COMPID, 0, mission_type))
        assert self.take() == []
        return items


def waypoints(n: int) -> list[Any]:
    return [Harness.item_int(i, lat=HOME_LAT + 0.001 * i) for i in range(n)]


def types(msgs: list[Any]) -> list[str]:
    return [m.get_type() for m in msgs]


def acks(msgs: list[Any]) -> list[int]:
    return [m.type for m in msgs if m.get_type() == "MISSION_ACK"]


def texts(msgs: list[Any]) -> list[tuple[int, str]]:
    return [(m.severity, m.text) for m in msgs if m.get_type() == "STATUSTEXT"]


@pytest.fixture
def h() -> Harness:
    return Harness()


# conformance with the recording -------------------------------------------------------------
def _adapt(fields: dict[str, Any]) -> dict[str, Any]:
    """Move a recorded item from the recorded home to ours, keeping its offset."""
    out = {k: v for k, v in fields.items() if k != "mavpackettype"}
    if "x" in out:
        out["x"] = round((out["x"] * 1e-7 - RECORDED_HOME_LAT + HOME_LAT) * 1e7)
        out["y"] = round((out["y"] * 1e-7 - RECORDED_HOME_LON + HOME_LON) * 1e7)
    return out


def _build(name: str, fields: dict[str, Any]) -> Any:
    cls = getattr(mav, f"MAVLink_{name.lower()}_message")
    return cls(**fields)


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, float):
        return math.isclose(expected, actual, abs_tol=1e-6)
    return bool(expected == actual)


@pytest.mark.parametrize("section", ["upload", "download", "invalid_upload", "clear"])
def test_replays_recorded_px4_handshakes(h: Harness, section: str) -> None:
    recording = json.loads((REFERENCE / "flight_mission.json").read_text())
    if section != "upload":  # the recorded vehicle held the 3-waypoint mission by then
        for entry in recording["upload"]:
            if entry["dir"] == "GCS->PX4":
                h.send(_build(entry["msg"], _adapt(entry["f"])))
        h.take()

    expected: list[dict[str, Any]] = []
    actual: list[Any] = []
    for entry in recording[section]:
        if entry["dir"] == "PX4->GCS":
            expected.append(entry)
            continue
        assert h.send(_build(entry["msg"], _adapt(entry["f"])))
        actual += h.take()

    mission_msgs = [m for m in actual if m.get_type() != "STATUSTEXT"]
    assert types(mission_msgs) == [e["msg"] for e in expected]
    for want, got in zip(expected, mission_msgs, strict=True):
        for key, value in _adapt(want["f"]).items():
            assert _same(value, getattr(got, key)), (want["msg"], key, value, getattr(got, key))
        assert (got.get_srcSystem(), got.get_srcComponent()) == (SYSID, AUTOPILOT_COMPID)

    if section == "invalid_upload":
        # and PX4's explanation, after the ACK, exactly as recorded in flight_gcs.tlog
        assert types(actual)[-1] == "STATUSTEXT"
        assert texts(actual) == [(mav.MAV_SEVERITY_CRITICAL, "IGN MISSION_ITEM: Invalid item\t")]
        assert len(h.server.items(MISSION)) == 3  # the flown mission survives the rejected upload
    if section == "clear":
        assert h.server.items(MISSION) == ()


def test_upload_stores_items_and_reports_the_change(h: Harness) -> None:
    out = h.upload(waypoints(3))
    assert types(out) == ["MISSION_REQUEST_INT"] * 3 + ["MISSION_ACK"]
    assert [m.seq for m in out[:3]] == [0, 1, 2]
    assert acks(out) == [mav.MAV_MISSION_ACCEPTED]
    items = h.server.items(MISSION)
    assert [i.seq for i in items] == [0, 1, 2]
    assert items[1].lat_deg == pytest.approx(HOME_LAT + 0.001, abs=1e-7)
    assert items[1].frame == REL_INT and items[1].altitude_is_relative
    assert h.changes == [MISSION]
    assert h.server.current_seq == 0
    assert h.recorder.all("mission.accepted")[-1].data == {"mission_type": MISSION, "count": 3}


def test_ack_goes_back_to_whoever_uploaded(h: Harness) -> None:
    src = (42, 77)
    h.send(h.count(1), src=src)
    (req,) = h.take()
    assert (req.target_system, req.target_component) == src
    h.send(h.item_int(0), src=src)
    (ack,) = h.take()
    assert (ack.target_system, ack.target_component, ack.type) == (42, 77, mav.MAV_MISSION_ACCEPTED)


def test_messages_for_other_systems_are_not_consumed(h: Harness) -> None:
    other = mav.MAVLink_mission_count_message(7, AUTOPILOT_COMPID, 3, MISSION)
    assert h.send(other) is False
    assert h.send(mav.MAVLink_mission_count_message(SYSID, 100, 3, MISSION)) is False  # the camera
    assert h.send(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3)) is False
    assert h.take() == []
    # PX4 also answers the mission planner component id and broadcast
    assert h.send(mav.MAVLink_mission_count_message(SYSID, mav.MAV_COMP_ID_MISSIONPLANNER, 1, MISSION))
    assert types(h.take()) == ["MISSION_REQUEST_INT"]


# error paths -------------------------------------------------------------------------------
def test_unsupported_command_keeps_the_old_mission(h: Harness) -> None:
    h.upload(waypoints(2))
    before = h.server.items(MISSION)
    h.changes.clear()
    h.send(h.count(2))
    h.take()
    h.send(h.item_int(0))
    h.take()
    h.send(h.item_int(1, command=mav.MAV_CMD_NAV_LOITER_TURNS))  # PX4 does not fly LOITER_TURNS
    out = h.take()
    assert types(out) == ["MISSION_ACK", "STATUSTEXT"]
    assert acks(out) == [mav.MAV_MISSION_UNSUPPORTED]
    assert texts(out) == [(2, "IGN MISSION_ITEM: Invalid item\t")]
    assert h.server.items(MISSION) == before
    assert h.changes == []
    rejected = h.recorder.all("mission.rejected")[-1].data
    assert rejected["result"] == mav.MAV_MISSION_UNSUPPORTED and rejected["seq"] == 1


@pytest.mark.parametrize(
    ("command", "frame"),
    [
        (mav.MAV_CMD_DO_CHANGE_SPEED, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT),  # DO_ needs frame MISSION
        (mav.MAV_CMD_NAV_LAND, mav.MAV_FRAME_MISSION),  # NAV_LAND needs a position
        (mav.MAV_CMD_DO_SET_SERVO, mav.MAV_FRAME_MISSION),
        (31010, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT),
    ],
)
def test_commands_px4_refuses(h: Harness, command: int, frame: int) -> None:
    h.send(h.count(1))
    h.take()
    h.send(h.item_int(0, command=command, frame=frame))
    assert acks(h.take()) == [mav.MAV_MISSION_UNSUPPORTED]


@pytest.mark.parametrize(
    ("command", "frame", "p1"),
    [
        (mav.MAV_CMD_NAV_TAKEOFF, REL_INT, 0.0),
        (mav.MAV_CMD_NAV_LOITER_TIME, REL_INT, 10.0),
        (mav.MAV_CMD_NAV_LAND, mav.MAV_FRAME_GLOBAL_INT, 0.0),
        (mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, mav.MAV_FRAME_MISSION, 0.0),
        (mav.MAV_CMD_DO_CHANGE_SPEED, mav.MAV_FRAME_MISSION, 1.0),
        (mav.MAV_CMD_DO_JUMP, mav.MAV_FRAME_MISSION, 0.0),
        (mav.MAV_CMD_CONDITION_DELAY, mav.MAV_FRAME_MISSION, 5.0),
        (mav.MAV_CMD_IMAGE_START_CAPTURE, mav.MAV_FRAME_MISSION, 0.0),
        (mav.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW, mav.MAV_FRAME_MISSION, -90.0),
        (mav.MAV_CMD_DO_SET_ROI_LOCATION, REL_INT, 0.0),
    ],
)
def test_commands_px4_accepts(h: Harness, command: int, frame: int, p1: float) -> None:
    out = h.upload([h.item_int(0, command=command, frame=frame, params=(p1, 0.0, 0.0, 0.0))])
    assert acks(out) == [mav.MAV_MISSION_ACCEPTED]
    assert h.server.items(MISSION)[0].command == command


def test_unsupported_frame(h: Harness) -> None:
    h.send(h.count(1))
    h.take()
    h.send(h.item_int(0, frame=mav.MAV_FRAME_LOCAL_NED))
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_UNSUPPORTED_FRAME]
    assert texts(out) == [(2, "IGN MISSION_ITEM: Invalid item\t")]


def test_legacy_item_with_an_int_frame_is_refused(h: Harness) -> None:
    h.send(h.count(1))
    h.take()
    legacy = mav.MAVLink_mission_item_message(
        SYSID, AUTOPILOT_COMPID, 0, REL_INT, WP, 0, 1, 0, 0, 0, 0, HOME_LAT, HOME_LON, 20.0, MISSION
    )
    h.send(legacy)
    assert acks(h.take()) == [mav.MAV_MISSION_UNSUPPORTED_FRAME]


def test_invalid_roi_mode(h: Harness) -> None:
    h.send(h.count(1))
    h.take()
    h.send(h.item_int(0, command=mav.MAV_CMD_DO_SET_ROI, params=(mav.MAV_ROI_TARGET, 0, 0, 0)))
    assert acks(h.take()) == [mav.MAV_MISSION_INVALID_PARAM1]


def test_count_zero_clears(h: Harness) -> None:
    h.upload(waypoints(2))
    h.changes.clear()
    h.send(h.count(0))
    out = h.take()
    assert types(out) == ["MISSION_ACK"] and acks(out) == [mav.MAV_MISSION_ACCEPTED]
    assert h.server.items(MISSION) == ()
    assert h.changes == [MISSION]


def test_too_many_items(h: Harness) -> None:
    h.send(h.count(65, FENCE))  # PX4 keeps 64 fence points
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_NO_SPACE]
    assert out[0].mission_type == FENCE
    h.send(h.count(10_001))
    assert acks(h.take()) == [mav.MAV_MISSION_NO_SPACE]


def test_out_of_sequence_item_is_ignored_and_the_expected_one_requested_again(h: Harness) -> None:
    h.send(h.count(3))
    h.take()
    h.send(h.item_int(0))
    assert [m.seq for m in h.take()] == [1]
    h.send(h.item_int(2))  # skips 1
    assert h.take() == []  # PX4 answers nothing ...
    h.advance(RETRY_TIMEOUT_S + 0.05)
    (again,) = h.take()  # ... and its retry timer asks for seq 1 again
    assert (again.get_type(), again.seq) == ("MISSION_REQUEST_INT", 1)
    h.send(h.item_int(1))
    h.take()
    h.send(h.item_int(2))
    assert acks(h.take()) == [mav.MAV_MISSION_ACCEPTED]
    assert len(h.server.items(MISSION)) == 3


def test_lost_item_is_requested_again_until_it_arrives(h: Harness) -> None:
    h.send(h.count(2))
    h.take()
    h.send(h.item_int(0))
    h.take()  # REQUEST seq 1; the GCS's item 1 gets lost twice
    h.advance(0.6)
    retries = h.take()
    assert types(retries) == ["MISSION_REQUEST_INT"] * 2 and {m.seq for m in retries} == {1}
    h.send(h.item_int(1))
    assert acks(h.take()) == [mav.MAV_MISSION_ACCEPTED]
    assert len(h.server.items(MISSION)) == 2


def test_lost_first_request_is_answered_by_a_repeated_count(h: Harness) -> None:
    h.send(h.count(2))
    h.take()
    h.send(h.count(2))  # the GCS never saw our REQUEST seq 0
    (req,) = h.take()
    assert (req.get_type(), req.seq) == ("MISSION_REQUEST_INT", 0)


def test_silent_uploader_times_out_without_an_ack(h: Harness) -> None:
    h.upload(waypoints(1))
    before = h.server.items(MISSION)
    h.send(h.count(3))
    h.take()
    h.send(h.item_int(0))
    h.take()
    h.advance(PROTOCOL_TIMEOUT_S + 0.3)
    out = h.take()
    assert set(types(out)) == {"MISSION_REQUEST_INT", "STATUSTEXT"}
    assert texts(out) == [(2, "Operation timeout\t")]
    assert acks(out) == []
    assert 15 <= len(out) <= 25  # retried about every 0.25 s for 5 s
    h.advance(2.0)
    assert h.take() == []  # gave up
    assert h.server.items(MISSION) == before
    assert h.upload(waypoints(2))[-1].type == mav.MAV_MISSION_ACCEPTED  # a new upload works


def test_second_uploader_is_refused_while_the_first_continues(h: Harness) -> None:
    h.send(h.count(2))
    h.take()
    h.send(h.item_int(0))
    h.take()
    h.send(h.count(5), src=(254, 190))
    (ack,) = h.take()
    assert (ack.type, ack.target_system) == (mav.MAV_MISSION_ERROR, 254)
    h.send(h.count(5))  # the same GCS restarting mid-transfer: PX4 refuses too
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_ERROR]
    assert texts(out) == [(2, "WPM: REJ. CMD: Busy\t")]
    h.send(h.item_int(1))
    assert acks(h.take()) == [mav.MAV_MISSION_ACCEPTED]
    assert len(h.server.items(MISSION)) == 2


def test_upload_during_download_is_refused(h: Harness) -> None:
    h.upload(waypoints(2))
    h.send(mav.MAVLink_mission_request_list_message(SYSID, AUTOPILOT_COMPID, MISSION))
    h.take()
    h.send(h.count(1))
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_ERROR]
    assert texts(out) == [(2, "WPM: IGN MISSION_COUNT: Busy\t")]
    h.send(mav.MAVLink_mission_clear_all_message(SYSID, AUTOPILOT_COMPID, MISSION))
    assert texts(h.take()) == [(2, "WPM: IGN CLEAR CMD: Busy\t")]
    assert len(h.server.items(MISSION)) == 2


def test_item_without_a_transfer(h: Harness) -> None:
    h.upload(waypoints(2))
    h.send(h.item_int(1))  # the last item again: our ACK got lost, PX4 repeats it
    assert acks(h.take()) == [mav.MAV_MISSION_ACCEPTED]
    h.send(h.item_int(0))
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_ERROR]
    assert texts(out) == [(2, "IGN MISSION_ITEM: No transfer\t")]


def test_client_can_cancel_an_upload(h: Harness) -> None:
    h.send(h.count(2))
    h.take()
    h.send(mav.MAVLink_mission_ack_message(SYSID, AUTOPILOT_COMPID, mav.MAV_MISSION_OPERATION_CANCELLED, 0))
    h.advance(1.0)
    assert h.take() == []  # no more requests
    assert h.server.items(MISSION) == () and not h.server.transfer_in_progress


def test_reuploading_the_same_mission_keeps_the_current_item(h: Harness) -> None:
    h.upload(waypoints(3))
    h.send(mav.MAVLink_mission_set_current_message(SYSID, AUTOPILOT_COMPID, 2))
    h.changes.clear()
    h.upload(waypoints(3))
    assert h.server.current_seq == 2 and h.changes == []
    h.upload(waypoints(4))
    assert h.server.current_seq == 0 and h.changes == [MISSION]


def test_item_marked_current_becomes_current(h: Harness) -> None:
    items = [h.item_int(i, lat=HOME_LAT + 0.001 * i, current=int(i == 1)) for i in range(3)]
    h.upload(items)
    assert h.server.current_seq == 1


# download, current item, legacy float mode -----------------------------------------------------
def test_download_marks_the_current_item_and_set_current_moves_it(h: Harness) -> None:
    h.upload(waypoints(3))
    assert [i.current for i in h.download()] == [1, 0, 0]
    h.send(mav.MAVLink_mission_set_current_message(SYSID, AUTOPILOT_COMPID, 2))
    assert h.take() == []  # PX4 answers with its next 1 Hz MISSION_CURRENT, not at once
    assert h.server.current_seq == 2
    current = h.server.mission_current()
    assert (current.seq, current.total, current.mission_state) == (2, 3, mav.MISSION_STATE_NOT_STARTED)
    assert [i.current for i in h.download()] == [0, 0, 1]
    h.send(mav.MAVLink_mission_set_current_message(SYSID, AUTOPILOT_COMPID, 3))
    assert texts(h.take()) == [(2, "WPM: WP CURR CMD: Not in list\t")]
    assert h.server.current_seq == 2


def test_mission_current_without_a_mission_matches_px4(h: Harness) -> None:
    msg = h.server.mission_current()
    # recorded: MISSION_CURRENT {seq : 0, total : 65535, mission_state : 1, mission_mode : 2}
    assert (msg.seq, msg.total, msg.mission_state, msg.mission_mode) == (0, 65535, 1, 2)


def test_navigator_progress_sends_mission_current_once(h: Harness) -> None:
    h.upload(waypoints(3))
    h.server.navigator_set_current(1, mav.MISSION_STATE_ACTIVE)
    (msg,) = h.take()
    assert (msg.get_type(), msg.seq, msg.total, msg.mission_state, msg.mission_mode) == (
        "MISSION_CURRENT", 1, 3, mav.MISSION_STATE_ACTIVE, 1,
    )  # fmt: skip
    h.server.navigator_set_current(1, mav.MISSION_STATE_ACTIVE)
    assert h.take() == []


def test_download_formats_items_as_px4_stores_them(h: Harness) -> None:
    h.upload([h.item_int(0, params=(2.0, 3.0, 7.0, 370.0)), h.item_int(1, params=(0, 0, 0, -90.0))])
    first, second = h.download()
    assert (first.param1, first.param2, first.param3, first.param4) == (2.0, 3.0, 0.0, 10.0)
    assert second.param4 == 270.0
    assert h.server.items(MISSION)[0].param3 == 7.0  # the autopilot still sees what was sent


def test_legacy_float_upload_and_download(h: Harness) -> None:
    h.send(h.count(2))
    (req,) = h.take()
    assert req.get_type() == "MISSION_REQUEST_INT"  # PX4 main starts in int mode
    h.send(
        mav.MAVLink_mission_item_message(
            SYSID, AUTOPILOT_COMPID, 0, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT, WP, 0, 1,
            0, 0, 0, 0, HOME_LAT, HOME_LON, 30.0, MISSION,
        )
    )  # fmt: skip
    (req,) = h.take()
    assert (req.get_type(), req.seq) == ("MISSION_REQUEST", 1)  # switched to float mode
    h.send(
        mav.MAVLink_mission_item_message(
            SYSID, AUTOPILOT_COMPID, 1, mav.MAV_FRAME_MISSION, mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, 0, 1,
            0, 0, 0, 0, 0, 0, 0, MISSION,
        )
    )  # fmt: skip
    assert acks(h.take()) == [mav.MAV_MISSION_ACCEPTED]
    stored = h.server.items(MISSION)[0]
    assert stored.frame == REL_INT and stored.lat_deg == pytest.approx(HOME_LAT, abs=1e-5)
    first, second = h.download(int_mode=False)
    assert first.get_type() == "MISSION_ITEM" and first.frame == mav.MAV_FRAME_GLOBAL_RELATIVE_ALT
    assert first.x == pytest.approx(HOME_LAT, abs=1e-5) and first.z == 30.0
    assert second.frame == mav.MAV_FRAME_MISSION and second.command == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH


def test_client_without_int_support_gets_float_requests(h: Harness) -> None:
    h.send(h.count(1))
    h.take()
    h.send(mav.MAVLink_mission_ack_message(SYSID, AUTOPILOT_COMPID, mav.MAV_MISSION_UNSUPPORTED, MISSION))
    (req,) = h.take()
    assert (req.get_type(), req.seq) == ("MISSION_REQUEST", 0)


def test_unexpected_download_request_aborts(h: Harness) -> None:
    h.upload(waypoints(3))
    h.send(mav.MAVLink_mission_request_list_message(SYSID, AUTOPILOT_COMPID, MISSION))
    h.take()
    h.send(mav.MAVLink_mission_request_int_message(SYSID, AUTOPILOT_COMPID, 2, MISSION))
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_ERROR]
    assert texts(out) == [(2, "WPM: REJ. CMD: Req. WP was unexpected\t")]
    assert not h.server.transfer_in_progress


def test_download_of_an_empty_plan(h: Harness) -> None:
    h.send(mav.MAVLink_mission_request_list_message(SYSID, AUTOPILOT_COMPID, RALLY))
    (count,) = h.take()
    assert (count.count, count.mission_type) == (0, RALLY)


# fence and rally plans ---------------------------------------------------------------------------
def _fence_square(h: Harness, vertices: int = 4) -> list[Any]:
    d = 0.01
    corners = [(-d, -d), (-d, d), (d, d), (d, -d)][:vertices]
    return [
        h.item_int(
            i, command=mav.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, frame=mav.MAV_FRAME_GLOBAL_INT,
            lat=HOME_LAT + dn, lon=HOME_LON + de, z=0.0, params=(float(vertices), 0, 0, 0),
            mission_type=FENCE,
        )
        for i, (dn, de) in enumerate(corners)
    ]  # fmt: skip


def test_fence_mission_and_rally_are_separate_plans(h: Harness) -> None:
    h.upload(waypoints(3))
    fence_out = h.upload(_fence_square(h), FENCE)
    assert {m.mission_type for m in fence_out} == {FENCE}
    assert acks(fence_out) == [mav.MAV_MISSION_ACCEPTED]
    rally = [h.item_int(0, command=mav.MAV_CMD_NAV_RALLY_POINT, mission_type=RALLY, params=(0, 0, 0, 0))]
    assert acks(h.upload(rally, RALLY)) == [mav.MAV_MISSION_ACCEPTED]
    assert (len(h.server.items(MISSION)), len(h.server.items(FENCE)), len(h.server.items(RALLY))) == (3, 4, 1)
    assert h.changes == [MISSION, FENCE, RALLY]
    fence = h.download(FENCE)
    assert [(i.mission_type, i.param1, i.current) for i in fence] == [(FENCE, 4.0, 0)] * 4
    h.send(mav.MAVLink_mission_clear_all_message(SYSID, AUTOPILOT_COMPID, FENCE))
    (ack,) = h.take()
    assert (ack.type, ack.mission_type) == (mav.MAV_MISSION_ACCEPTED, FENCE)
    assert h.server.items(FENCE) == () and len(h.server.items(MISSION)) == 3


def test_clear_all_types(h: Harness) -> None:
    h.upload(waypoints(2))
    h.upload(_fence_square(h), FENCE)
    h.send(mav.MAVLink_mission_clear_all_message(SYSID, AUTOPILOT_COMPID, mav.MAV_MISSION_TYPE_ALL))
    assert acks(h.take()) == [mav.MAV_MISSION_ACCEPTED]
    assert all(h.server.items(t) == () for t in (MISSION, FENCE, RALLY))


def test_fence_polygon_needs_three_vertices(h: Harness) -> None:
    h.send(h.count(2, FENCE))
    h.take()
    h.send(_fence_square(h, vertices=2)[0])
    out = h.take()
    assert acks(out) == [mav.MAV_MISSION_ERROR]  # PX4 refuses at the first vertex
    assert types(out) == ["MISSION_ACK"] and out[0].mission_type == FENCE
    assert h.server.items(FENCE) == () and not h.server.transfer_in_progress


def test_fence_item_in_a_mission_is_refused(h: Harness) -> None:
    h.send(h.count(1))
    h.take()
    h.send(h.item_int(0, command=mav.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, params=(50.0, 0, 0, 0)))
    assert acks(h.take()) == [mav.MAV_MISSION_ERROR]


def test_item_of_another_plan_type_during_upload(h: Harness) -> None:
    h.send(h.count(2))
    h.take()
    h.send(h.item_int(0, mission_type=FENCE))
    assert acks(h.take()) == [mav.MAV_MISSION_ERROR]
    h.send(h.item_int(0))  # the transfer itself goes on
    assert [m.seq for m in h.take()] == [1]


# over UDP, with a pymavlink client and a lossy link -----------------------------------------------
def _pymavlink_upload_and_download(url: str, lat: float, lon: float, deadline_s: float) -> list[Any]:
    """A blocking pymavlink ground station: upload 5 waypoints, read them back, resend on silence."""
    import time

    from pymavlink import mavutil

    conn = mavutil.mavlink_connection(url, source_system=255, source_component=190)
    conn.mav = mav.MAVLink(conn, srcSystem=255, srcComponent=190)  # MAVLink 2 and our dialect
    conn.mav.robust_parsing = True
    try:
        end = time.monotonic() + deadline_s
        assert conn.wait_heartbeat(timeout=deadline_s) is not None
        items = [
            conn.mav.mission_item_int_encode(
                SYSID,
                AUTOPILOT_COMPID,
                seq,
                REL_INT,
                WP,
                0,
                1,
                0,
                0,
                0,
                math.nan,
                round((lat + 0.0005 * seq) * 1e7),
                round(lon * 1e7),
                25.0,
                MISSION,
            )
            for seq in range(5)
        ]
        # upload: answer every request; repeat COUNT / the last item while nothing comes back
        conn.mav.mission_count_send(SYSID, AUTOPILOT_COMPID, len(items), MISSION)
        last: Any = None
        while True:
            assert time.monotonic() < end, "upload did not finish"
            msg = conn.recv_match(type=["MISSION_REQUEST_INT", "MISSION_ACK"], blocking=True, timeout=1.0)
            if msg is None:
                if last is None:
                    conn.mav.mission_count_send(SYSID, AUTOPILOT_COMPID, len(items), MISSION)
                else:
                    conn.mav.send(last)
                continue
            if msg.get_type() == "MISSION_ACK":
                assert msg.type == mav.MAV_MISSION_ACCEPTED
                break
            last = items[msg.seq]
            conn.mav.send(last)
        # download, re-asking for an item that does not arrive
        conn.mav.mission_request_list_send(SYSID, AUTOPILOT_COMPID, MISSION)
        count = None
        while count is None:
            assert time.monotonic() < end, "no MISSION_COUNT"
            got = conn.recv_match(type="MISSION_COUNT", blocking=True, timeout=0.5)
            if got is None:
                conn.mav.mission_request_list_send(SYSID, AUTOPILOT_COMPID, MISSION)
            else:
                count = got.count
        received: list[Any] = []
        while len(received) < count:
            assert time.monotonic() < end, "download did not finish"
            conn.mav.mission_request_int_send(SYSID, AUTOPILOT_COMPID, len(received), MISSION)
            got = conn.recv_match(type="MISSION_ITEM_INT", blocking=True, timeout=0.5)
            if got is not None and got.seq == len(received):
                received.append(got)
        conn.mav.mission_ack_send(SYSID, AUTOPILOT_COMPID, mav.MAV_MISSION_ACCEPTED, MISSION)
        return received
    finally:
        conn.close()


async def test_pymavlink_client_over_a_lossy_udp_link(port_base: tuple[int, int]) -> None:
    import asyncio

    from sitl.clock import SimClock
    from sitl.environment import Faults
    from sitl.link import NestLink

    sim_port, client_port = port_base[0] + 1, port_base[1] + 1
    clock = SimClock(speed=1.0)
    faults = Faults(packet_loss_pct=15.0)
    holder: dict[str, MissionServer] = {}

    def dispatch(msg: Any) -> None:
        holder["s"].on_message(msg, clock.now())

    link = NestLink(SYSID, clock, faults, ("127.0.0.1", client_port), dispatch)
    recorder = Recorder()
    server = MissionServer(Outbox(SYSID, AUTOPILOT_COMPID, link.transmit), recorder)
    holder["s"] = server
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: link, local_addr=("127.0.0.1", sim_port))

    heartbeat = mav.MAVLink_heartbeat_message(
        mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_PX4, 0, 0, mav.MAV_STATE_STANDBY, 3
    )
    beats = Outbox(SYSID, AUTOPILOT_COMPID, link.transmit)

    async def run() -> None:  # a udpin client answers whoever sent last: the nest must speak first
        next_beat_s = 0.0
        while True:
            now_s = clock.now()
            if now_s >= next_beat_s:
                beats.send(heartbeat)
                next_beat_s = now_s + 0.5
            server.step(now_s)
            await asyncio.sleep(0.02)

    stepper = asyncio.create_task(run())
    try:
        url = f"udpin:127.0.0.1:{client_port}"
        received = await asyncio.to_thread(_pymavlink_upload_and_download, url, HOME_LAT, HOME_LON, 60.0)
    finally:
        stepper.cancel()
        link.close()
    stored = server.items(MISSION)
    assert len(stored) == 5
    assert [r.x for r in received] == [s.x for s in stored]
    assert [round((HOME_LAT + 0.0005 * i) * 1e7) for i in range(5)] == [s.x for s in stored]
    assert recorder.all("mission.accepted")
