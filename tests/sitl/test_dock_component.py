"""SimDock driven directly in simulated time: cover, charger, faults, streams, weather station."""

from __future__ import annotations

import itertools

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.component import DOCK_COMPID
from sitl.dock import ChargerState, CoverState, DockConfig, DockFault, SimDock
from sitl.environment import DroneView, FaultKind, Weather
from sitl.weather import WeatherStation
from tests.sitl.dock_payload_fakes import (
    GCS_COMPID,
    GCS_SYSID,
    CapturedOutbox,
    FakeDrone,
    MinimalDrone,
    Stepper,
    command_long,
    make_ctx,
)

COVER = mav.MAV_CMD_DRONECTL_DOCK_COVER
CHARGER = mav.MAV_CMD_DRONECTL_DOCK_CHARGER
RESET = mav.MAV_CMD_DRONECTL_DOCK_RESET_FAULTS


def make_dock(drone: DroneView, config: DockConfig | None = None) -> tuple[SimDock, CapturedOutbox, Stepper]:
    outbox = CapturedOutbox(DOCK_COMPID)
    dock = SimDock(make_ctx(), outbox, drone, config)
    stepper = Stepper(dock)
    stepper.run(0.1)
    return dock, outbox, stepper


def send(dock: SimDock, command: int, *params: float, target_component: int = DOCK_COMPID) -> None:
    dock.on_message(command_long(command, *params, target_component=target_component))


def open_cover(dock: SimDock, stepper: Stepper) -> None:
    send(dock, COVER, 1)
    stepper.run_until(dock.cover_open, timeout_s=30)


def test_streams_heartbeat_status_and_weather_at_their_rates() -> None:
    _, outbox, stepper = make_dock(FakeDrone(), DockConfig(auto_charge=False))
    outbox.clear()
    stepper.run(10.0)
    heartbeats = outbox.of_type("HEARTBEAT")
    assert 9 <= len(heartbeats) <= 11
    hb = heartbeats[0]
    assert hb.type == mav.MAV_TYPE_CHARGING_STATION
    assert hb.autopilot == mav.MAV_AUTOPILOT_INVALID
    assert hb.system_status == mav.MAV_STATE_STANDBY
    assert hb.get_srcComponent() == DOCK_COMPID
    assert 9 <= len(outbox.of_type("DOCK_STATUS")) <= 11
    assert 4 <= len(outbox.of_type("DOCK_WEATHER")) <= 6
    status = outbox.of_type("DOCK_STATUS")[-1]
    assert status.cover_state == mav.DOCK_COVER_STATE_CLOSED
    assert status.drone_in_dock == 1
    assert 10.0 <= status.internal_temperature <= 33.0


def test_cover_opens_in_realistic_time_with_progress_acks() -> None:
    dock, outbox, stepper = make_dock(FakeDrone())
    send(dock, COVER, 1)
    first = outbox.acks(COVER)
    assert [a.result for a in first] == [mav.MAV_RESULT_IN_PROGRESS]
    assert first[0].target_system == GCS_SYSID and first[0].target_component == GCS_COMPID
    assert dock.cover_state is CoverState.OPENING
    took_s = stepper.run_until(dock.cover_open, timeout_s=30)
    assert 15.0 <= took_s <= 20.0
    acks = outbox.acks(COVER)
    progress = [a.progress for a in acks if a.result == mav.MAV_RESULT_IN_PROGRESS]
    assert len(progress) >= 15
    assert progress == sorted(progress) and progress[-1] >= 90
    assert acks[-1].result == mav.MAV_RESULT_ACCEPTED
    kinds = [r.kind for r in dock.ctx.recorder.all("cover.")]
    assert kinds == ["cover.opening", "cover.opened"]
    opened = dock.ctx.recorder.all("cover.opened")[0]
    assert opened.time_s == pytest.approx(0.1 + dock.config.cover_travel_s, abs=0.2)
    assert outbox.of_type("DOCK_STATUS")[-1].cover_state == mav.DOCK_COVER_STATE_OPEN
    assert outbox.of_type("DOCK_STATUS")[-1].cover_position == 100


def test_open_when_open_is_accepted_at_once_and_repeat_while_moving_reports_progress() -> None:
    dock, outbox, stepper = make_dock(FakeDrone())
    send(dock, COVER, 1)
    stepper.run(9.0)
    send(dock, COVER, 1)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_IN_PROGRESS
    assert 40 <= outbox.acks(COVER)[-1].progress <= 60
    stepper.run_until(dock.cover_open, timeout_s=30)
    outbox.clear()
    send(dock, COVER, 1)
    assert [a.result for a in outbox.acks(COVER)] == [mav.MAV_RESULT_ACCEPTED]


def test_cover_closes_over_an_idle_drone_and_auto_charging_starts() -> None:
    drone = FakeDrone(battery=40.0)
    dock, outbox, stepper = make_dock(drone, DockConfig(start_cover_open=True))
    assert not dock.charging()  # auto-charge waits for the cover
    send(dock, COVER, 0)
    stepper.run_until(lambda: dock.cover_state is CoverState.CLOSED, timeout_s=30)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_ACCEPTED
    stepper.run(0.1)
    assert dock.charging()
    assert dock.charger_state is ChargerState.CHARGING
    assert dock.charge_current_a() == pytest.approx(10.0)
    on = dock.ctx.recorder.all("charger.on")
    assert len(on) == 1 and on[0].data["auto"] is True
    stepper.run(1.1)
    status = outbox.of_type("DOCK_STATUS")[-1]
    assert status.charger_state == mav.DOCK_CHARGER_STATE_CHARGING
    assert status.charge_current == pytest.approx(10.0)
    assert outbox.of_type("HEARTBEAT")[-1].system_status == mav.MAV_STATE_ACTIVE


def test_auto_charge_can_be_switched_off() -> None:
    dock, _, stepper = make_dock(FakeDrone(), DockConfig(auto_charge=False))
    stepper.run(5.0)
    assert not dock.charging()
    assert dock.charger_state is ChargerState.IDLE


def test_close_refused_while_drone_hovers_low_over_the_pad() -> None:
    drone = FakeDrone(landed_on_pad=False, flying=True, position_m=(0.4, -0.3, -1.5))
    dock, outbox, stepper = make_dock(drone, DockConfig(start_cover_open=True))
    send(dock, COVER, 0)
    assert [a.result for a in outbox.acks(COVER)] == [mav.MAV_RESULT_DENIED]
    assert any("hovering" in t for t in outbox.texts())
    stepper.run(20.0)
    assert dock.cover_state is CoverState.OPEN
    # Far away (or high above), the drone is not in the way: closing against rain is fine.
    drone.position_m = (-850.0, 300.0, -60.0)
    outbox.clear()
    send(dock, COVER, 0)
    stepper.run_until(lambda: dock.cover_state is CoverState.CLOSED, timeout_s=30)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_ACCEPTED


def test_close_refused_while_drone_on_pad_has_motors_running() -> None:
    drone = FakeDrone(landed_on_pad=False, flying=False, position_m=(0.0, 0.0, 0.0))
    dock, outbox, _ = make_dock(drone, DockConfig(start_cover_open=True))
    send(dock, COVER, 0)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_DENIED
    assert any("motors running" in t for t in outbox.texts())


def test_drone_descending_into_the_closing_cover_stops_it_and_it_reopens() -> None:
    drone = FakeDrone(landed_on_pad=False, flying=True, position_m=(0.0, 0.0, -40.0))
    dock, outbox, stepper = make_dock(drone, DockConfig(start_cover_open=True))
    send(dock, COVER, 0)
    stepper.run(5.0)
    assert dock.cover_state is CoverState.CLOSING
    drone.position_m = (0.2, 0.1, -2.0)
    stepper.run(0.1)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_FAILED
    assert dock.cover_state is CoverState.OPENING
    assert dock.ctx.recorder.all("cover.obstructed")
    stepper.run_until(dock.cover_open, timeout_s=30)


def test_without_a_position_an_airborne_drone_is_clear_and_a_busy_one_on_the_ground_is_not() -> None:
    drone = MinimalDrone(landed_on_pad=False, flying=True)
    dock, outbox, stepper = make_dock(drone, DockConfig(start_cover_open=True))
    send(dock, COVER, 0)
    stepper.run_until(lambda: dock.cover_state is CoverState.CLOSED, timeout_s=30)
    drone.flying = False
    send(dock, COVER, 1)
    stepper.run_until(dock.cover_open, timeout_s=30)
    outbox.clear()
    send(dock, COVER, 0)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_DENIED


def test_cover_jam_latches_a_fault_until_reset_after_the_jam_is_gone() -> None:
    dock, outbox, stepper = make_dock(FakeDrone())
    send(dock, COVER, 1)
    stepper.run(6.0)
    dock.ctx.faults.inject(FaultKind.COVER_JAM, stepper.now_s)
    stepper.run(0.1)
    assert dock.cover_state is CoverState.JAMMED
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_FAILED
    assert DockFault.COVER_JAMMED in dock.fault_flags
    jammed_at = dock.cover_position_pct
    assert 25.0 < jammed_at < 45.0
    stepper.run(2.0)
    assert dock.cover_position_pct == jammed_at
    status = outbox.of_type("DOCK_STATUS")[-1]
    assert status.cover_state == mav.DOCK_COVER_STATE_JAMMED
    assert status.fault_flags & mav.DOCK_FAULT_COVER_JAMMED
    assert outbox.of_type("HEARTBEAT")[-1].system_status == mav.MAV_STATE_CRITICAL
    assert dock.ctx.recorder.all("cover.jammed")

    send(dock, COVER, 1)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_FAILED
    send(dock, RESET)
    assert outbox.acks(RESET)[-1].result == mav.MAV_RESULT_FAILED  # still jammed
    dock.ctx.faults.inject(FaultKind.CLEAR, stepper.now_s)
    send(dock, RESET)
    assert outbox.acks(RESET)[-1].result == mav.MAV_RESULT_ACCEPTED
    assert dock.fault_flags == DockFault(0)
    assert dock.cover_state is CoverState.UNKNOWN
    send(dock, COVER, 1)
    took_s = stepper.run_until(dock.cover_open, timeout_s=30)
    assert took_s < 14.0  # only the rest of the way
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_ACCEPTED


def test_command_on_a_jammed_cover_fails_at_once() -> None:
    dock, outbox, _ = make_dock(FakeDrone())
    dock.ctx.faults.cover_jammed = True
    send(dock, COVER, 1)
    assert [a.result for a in outbox.acks(COVER)] == [mav.MAV_RESULT_FAILED]
    assert dock.cover_state is CoverState.JAMMED


def test_charger_denied_with_no_drone_in_the_dock() -> None:
    dock, outbox, _ = make_dock(FakeDrone(landed_on_pad=False, flying=True, position_m=(500.0, 0.0, -80.0)))
    send(dock, CHARGER, 1)
    assert outbox.acks(CHARGER)[-1].result == mav.MAV_RESULT_DENIED
    assert any("no drone" in t for t in outbox.texts())
    assert not dock.charging()


def test_charger_tapers_and_reports_full() -> None:
    drone = FakeDrone(battery=85.0)
    dock, outbox, stepper = make_dock(drone, DockConfig(auto_charge=False))
    send(dock, CHARGER, 1)
    assert outbox.acks(CHARGER)[-1].result == mav.MAV_RESULT_ACCEPTED
    assert dock.charge_current_a() == pytest.approx(10.0)
    currents: list[float] = []
    for _ in range(2000):  # the autopilot's part: the battery rises while the dock charges
        if dock.charging():
            currents.append(dock.charge_current_a())
            drone.battery = min(100.0, drone.battery + dock.charge_current_a() * 0.01)
        stepper.run(0.05)
        if dock.charger_state is ChargerState.FULL:
            break
    assert dock.charger_state is ChargerState.FULL
    assert not dock.charging()
    assert dock.charge_current_a() == 0.0
    assert currents[0] == pytest.approx(10.0)
    assert currents[-1] < 2.0
    assert all(a >= b for a, b in itertools.pairwise(currents))
    assert dock.ctx.recorder.all("charger.full")
    # The battery sags: the charger tops it up.
    drone.battery = 90.0
    stepper.run(0.1)
    assert dock.charging()


def test_charger_off_by_command_stays_off_until_next_docking() -> None:
    drone = FakeDrone()
    dock, outbox, stepper = make_dock(drone)
    stepper.run(0.1)
    assert dock.charging()  # docked with the cover closed: auto-charge
    send(dock, CHARGER, 0)
    assert outbox.acks(CHARGER)[-1].result == mav.MAV_RESULT_ACCEPTED
    stepper.run(3.0)
    assert not dock.charging()
    drone.landed_on_pad, drone.flying = False, True
    stepper.run(0.1)
    drone.landed_on_pad, drone.flying = True, False
    stepper.run(0.1)
    assert dock.charging()
    offs = [r.data["reason"] for r in dock.ctx.recorder.all("charger.off")]
    assert offs == ["command"]


def test_drone_leaving_stops_the_charger() -> None:
    drone = FakeDrone()
    dock, _, stepper = make_dock(drone)
    stepper.run(0.1)
    assert dock.charging()
    drone.landed_on_pad, drone.flying = False, False
    stepper.run(0.1)
    assert not dock.charging()
    assert dock.ctx.recorder.all("charger.off")[-1].data["reason"] == "drone left the pad"


def test_failed_battery_trips_the_charger() -> None:
    dock, outbox, stepper = make_dock(FakeDrone())
    stepper.run(0.1)
    assert dock.charging()
    dock.ctx.faults.inject(FaultKind.BATTERY_FAILURE, stepper.now_s)
    stepper.run(0.1)
    assert dock.charger_state is ChargerState.FAULT
    assert DockFault.CHARGER in dock.fault_flags
    send(dock, CHARGER, 1)
    assert outbox.acks(CHARGER)[-1].result == mav.MAV_RESULT_FAILED


def test_unknown_and_invalid_commands() -> None:
    dock, outbox, _ = make_dock(FakeDrone())
    send(dock, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    assert outbox.acks(mav.MAV_CMD_COMPONENT_ARM_DISARM)[-1].result == mav.MAV_RESULT_UNSUPPORTED
    outbox.clear()
    send(dock, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1, target_component=0)  # broadcast: the autopilot's
    assert outbox.acks(mav.MAV_CMD_COMPONENT_ARM_DISARM) == []
    send(dock, COVER, 2)
    assert outbox.acks(COVER)[-1].result == mav.MAV_RESULT_DENIED


def test_request_message_and_message_interval() -> None:
    dock, outbox, stepper = make_dock(FakeDrone())
    outbox.clear()
    send(dock, mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_DOCK_WEATHER)
    types = [m.get_type() for m in outbox.sent]
    assert types == ["COMMAND_ACK", "DOCK_WEATHER"]
    assert outbox.sent[0].result == mav.MAV_RESULT_ACCEPTED
    send(dock, mav.MAV_CMD_REQUEST_MESSAGE, mav.MAVLINK_MSG_ID_ATTITUDE)
    assert outbox.acks(mav.MAV_CMD_REQUEST_MESSAGE)[-1].result == mav.MAV_RESULT_DENIED
    send(dock, mav.MAV_CMD_SET_MESSAGE_INTERVAL, mav.MAVLINK_MSG_ID_DOCK_WEATHER, 200_000)
    assert outbox.acks(mav.MAV_CMD_SET_MESSAGE_INTERVAL)[-1].result == mav.MAV_RESULT_ACCEPTED
    outbox.clear()
    stepper.run(2.0)
    assert 9 <= len(outbox.of_type("DOCK_WEATHER")) <= 11
    send(dock, mav.MAV_CMD_SET_MESSAGE_INTERVAL, mav.MAVLINK_MSG_ID_DOCK_STATUS, -1)
    outbox.clear()
    stepper.run(3.0)
    assert outbox.of_type("DOCK_STATUS") == []
    send(dock, mav.MAV_CMD_GET_MESSAGE_INTERVAL, mav.MAVLINK_MSG_ID_DOCK_WEATHER)
    assert outbox.of_type("MESSAGE_INTERVAL")[-1].interval_us == 200_000


def test_weather_report_follows_the_set_weather_and_injected_gusts() -> None:
    dock, outbox, stepper = make_dock(FakeDrone())
    dock.ctx.weather.wind_speed_mps = 15.0
    dock.ctx.weather.wind_gust_mps = 19.0
    dock.ctx.weather.air_temp_c = -18.0
    stepper.run(4.0)
    w = outbox.of_type("DOCK_WEATHER")[-1]
    assert w.wind_speed == pytest.approx(15.0, abs=2.0)
    assert w.wind_gust >= w.wind_speed
    assert w.air_temperature == pytest.approx(-18.0, abs=0.5)
    dock.ctx.faults.inject(FaultKind.WIND_GUST, stepper.now_s, value=8.0, duration_s=30.0)
    stepper.run(4.0)
    gusty = outbox.of_type("DOCK_WEATHER")[-1]
    assert gusty.wind_gust == pytest.approx(27.0, abs=2.5)
    stepper.run(40.0)
    calm = outbox.of_type("DOCK_WEATHER")[-1]
    assert calm.wind_gust == pytest.approx(19.0, abs=2.5)


def test_weather_station_is_deterministic_per_seed_and_drifts() -> None:
    base = Weather(wind_speed_mps=6.0, wind_gust_mps=9.0, humidity_pct=99.5)
    a, b, c = WeatherStation(3), WeatherStation(3), WeatherStation(4)
    times = [0.0, 17.3, 250.0, 1234.5]
    readings_a = [a.read(base, t) for t in times]
    assert readings_a == [b.read(base, t) for t in reversed(times)][::-1]
    assert readings_a != [c.read(base, t) for t in times]
    assert len({r.wind_speed_mps for r in readings_a}) == len(times)  # it is not a constant
    assert all(0.0 <= r.humidity_pct <= 100.0 for r in readings_a)
    assert all(r.wind_gust_mps >= r.wind_speed_mps for r in readings_a)
