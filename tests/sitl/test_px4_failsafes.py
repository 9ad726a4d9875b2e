"""PX4's failsafes on the simulated autopilot, in simulated time (no sockets)."""

from __future__ import annotations

import math

from adapters.mavlink import dronectl_v20 as mav
from sitl.autopilot.modes import FlightMode
from sitl.environment import FaultKind

from .px4_harness import HOME, Harness, make

NAN = math.nan


def airborne(h: Harness, height_m: float = 20.0, north_m: float = 0.0) -> None:
    h.run(6.0)
    assert h.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    h.command(mav.MAV_CMD_NAV_TAKEOFF, NAN, 0, 0, NAN, NAN, NAN, HOME.alt_amsl_m + height_m)
    h.run_until(lambda: h.ap.mode is FlightMode.LOITER and not h.ap.landed, 60)
    if north_m:
        p = h.ctx.frame.to_geo(north_m, 0.0, -height_m)
        h.command(mav.MAV_CMD_DO_REPOSITION, -1, 1, 0, NAN, p.lat_deg, p.lon_deg, p.alt_amsl_m)
        h.run_until(lambda: abs(h.ap.vehicle.state.north_m - north_m) < 1.0, 200)


def lands_in_dock(h: Harness, timeout_s: float = 400) -> None:
    h.run_until(lambda: not h.ap.armed, timeout_s)
    assert h.ap.landed and h.ap.on_pad()
    assert h.distance_from_pad_m() < 0.5


def failsafes(h: Harness) -> list[dict[str, object]]:
    return [r.data for r in h.ctx.recorder.all("failsafe")]


def test_low_battery_returns_and_lands_in_the_dock() -> None:
    h = make()
    airborne(h, north_m=300.0)
    h.ap.battery.soc = 0.2  # below BAT_LOW_THR (0.25): a warning only
    h.run(2.0)
    assert "Low battery level, return advised\t" in h.texts()
    assert h.ap.mode is FlightMode.LOITER
    h.ctx.faults.inject(FaultKind.BATTERY_DRAIN, h.now_s, 50.0)
    h.run_until(lambda: h.ap.mode is FlightMode.RTL, 120)
    assert failsafes(h)[0]["action"] == "rtl"
    h.ctx.faults.battery_drain_factor = 1.0
    lands_in_dock(h)


def test_data_link_loss_returns_after_com_dl_loss_t() -> None:
    h = make()
    airborne(h, north_m=200.0)
    h.heartbeats = False
    last_heartbeat_s = h.ap._gcs_heartbeat_s
    assert last_heartbeat_s is not None
    h.run_until(lambda: h.ap.mode is FlightMode.RTL, 30)
    assert 10.0 <= h.now_s - last_heartbeat_s <= 10.2  # COM_DL_LOSS_T = 10 s after the last heartbeat
    assert "Connection to ground station lost\t" in h.texts()
    h.heartbeats = True
    h.run(2.0)
    assert "Data link regained\t" in h.texts()
    assert h.ap.mode is FlightMode.RTL
    lands_in_dock(h)


def test_no_link_loss_before_any_ground_station_was_heard() -> None:
    h = make()
    h.heartbeats = False
    airborne(h)
    h.run(30.0)
    assert h.ap.mode is FlightMode.LOITER and not failsafes(h)


def test_geofence_max_distance_breach_returns() -> None:
    h = make()
    h.ap.params.set("GF_MAX_HOR_DIST", 150.0)
    airborne(h)
    p = h.ctx.frame.to_geo(400.0, 0.0, -20.0)
    h.command(mav.MAV_CMD_DO_REPOSITION, -1, 1, 0, NAN, p.lat_deg, p.lon_deg, p.alt_amsl_m)
    h.run_until(lambda: h.ap.mode is FlightMode.RTL, 120)
    assert 145.0 <= h.ap.vehicle.state.north_m <= 170.0
    assert any(t.startswith("Geofence breached") for t in h.texts())
    assert failsafes(h)[0]["reason"] == "geofence"
    lands_in_dock(h)


def test_takeoff_with_the_cover_closed_fails_and_stays_on_the_pad() -> None:
    h = make(cover_open=False)
    h.run(6.0)
    assert h.command(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED
    assert h.command(mav.MAV_CMD_NAV_TAKEOFF, NAN, 0, 0, NAN, NAN, NAN, HOME.alt_amsl_m + 20) == 0
    h.run_until(lambda: not h.ap.armed, 30)
    assert h.height_m < 0.4
    assert h.ap.landed and h.ap.on_pad()
    assert any("dock cover closed" in t for t in h.texts())
    assert h.ctx.recorder.all("takeoff.obstructed")


def test_battery_failure_lands_at_once() -> None:
    h = make()
    airborne(h, north_m=50.0)
    h.ctx.faults.inject(FaultKind.BATTERY_FAILURE, h.now_s)
    h.run(1.0)
    assert h.ap.mode is FlightMode.LAND
    h.run_until(lambda: not h.ap.armed, 120)
    assert abs(h.ap.vehicle.state.north_m - 50.0) < 3.0  # landed where it was, not at home


def test_battery_charges_in_the_dock_and_drains_in_flight() -> None:
    h = make()
    h.ap.battery.soc = 0.5
    h.dock.charger = True
    h.run(600.0, dt_s=0.5)
    assert h.ap.battery_pct > 55.0
    h.dock.charger = False
    before = h.ap.battery_pct
    airborne(h)
    h.run(60.0)
    drained_per_min = before - h.ap.battery_pct
    assert 2.0 < drained_per_min < 4.5  # a 30-40 minute hover endurance
