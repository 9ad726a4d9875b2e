"""Plain-text descriptions for the operator: a nest's status, the nest list, events. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dronectl.operations.models import Event, NestState
from dronectl.transports.console.fleet import FleetModel, NestRow


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def local_time(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def format_event(event: Event) -> str:
    where = f"nest {event.nest_id} " if event.nest_id is not None else ""
    return f"{local_time(event.at)} {where}{event.kind.value}: {event.message}"


def format_row(row: NestRow) -> str:
    holder = f"control {row.holder} ({row.holder_role})" if row.holder else "control free"
    return (
        f"{row.nest_id:>3} {row.name[:24]:<24} {row.phase:<11} bat {_num(row.battery_pct, '.0f', '%'):>4}"
        f" alt {_num(row.alt_m, '.0f', 'm'):>5} spd {_num(row.speed_mps, '.1f'):>4} link {row.link:<4}"
        f" {holder}"
    )


def nests_text(fleet: FleetModel, now: datetime) -> str:
    rows = fleet.rows(now)
    if not rows:
        return "no nests known yet (is the service online?)"
    return "\n".join(format_row(row) for row in rows)


def status_text(state: NestState) -> str:
    drone, dock = state.drone, state.dock
    lines = [
        f"nest {state.nest_id} {state.name}: {state.phase.value}" + (" (maintenance)" * state.maintenance)
    ]
    armed = {True: "armed", False: "disarmed", None: "armed ?"}[drone.armed]
    where = "position unknown"
    if drone.position is not None:
        p = drone.position
        where = f"at {p.lat:.5f},{p.lon:.5f} alt {p.alt_m:.0f} m"
    lines.append(
        f"  drone: {armed}, mode {drone.mode}, battery {_num(drone.battery_pct, '.0f', '%')}, "
        f"link {drone.link}, {where}"
    )
    if state.link is not None:
        link = state.link
        refused = ", ".join(f"{why} {n}" for why, n in sorted(link.rejected.items()))
        lines.append(
            f"  mavlink: {'signed' if link.signed else 'UNSIGNED'}, policy {link.policy}"
            + (f", FAULT: {link.fault}" if link.fault else "")
            + (
                f", last verified {link.last_verified_s_ago:.1f} s ago"
                if link.last_verified_s_ago is not None
                else ""
            )
            + (f", refused {refused}" if refused else "")
        )
    in_dock = {True: "drone in dock", False: "dock empty", None: "dock ?"}[dock.drone_in_dock]
    charging = {True: ", charging", False: "", None: ""}[dock.charging]
    weather = "weather unknown"
    if dock.weather is not None:
        w = dock.weather
        weather = (
            f"wind {w.wind_speed_mps:.1f} m/s gust {w.wind_gust_mps:.1f}, {w.air_temp_c:.0f} C, "
            f"rain {w.precipitation_mmph:.1f} mm/h, {'go' if w.go else 'NO-GO'}"
        )
    lines.append(f"  dock: cover {dock.cover}, {in_dock}{charging}; {weather}")
    if state.flight is None:
        lines.append("  flight: none")
    else:
        f = state.flight
        to = f" to {f.target.lat:.5f},{f.target.lon:.5f} alt {f.target.alt_m:.0f} m" if f.target else ""
        lines.append(f"  flight: {f.id}{to} since {local_time(f.started_at)}")
    control = f"{state.control.id} ({state.control.role.value})" if state.control else "nobody"
    lines.append(f"  control: {control}")
    if state.fault:
        lines.append(f"  fault: {state.fault}")
    if state.blockers:
        lines.append("  a launch now would be refused:")
        lines.extend(f"    - {b.message}" for b in state.blockers)
    else:
        lines.append("  ready to launch: nothing blocks it")
    return "\n".join(lines)


def events_text(events: Iterable[Event]) -> str:
    lines = [format_event(e) for e in events]
    return "\n".join(lines) if lines else "no events yet"
