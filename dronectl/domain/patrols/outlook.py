"""What the automations will do on their own, and when (pure): said at start by ``dronectl up``
and shown on the command-center page, so nobody is surprised by drones launching by themselves.

For each patrol kind: enabled or not (stretches to watch and something to start it), the
stretches, and the next time it acts -- "now, until 09:00" while a schedule window is open,
else the next window's opening. Black-ice patrols also start whenever a nest's weather station
reports ice risk, at any hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dronectl.domain.config import PatrolsConfig
from dronectl.domain.patrols.schedule import Window, active_window, city_time, next_window

CONGESTION = "congestion"
BLACK_ICE = "black_ice"
_NAMES = {CONGESTION: "congestion patrols", BLACK_ICE: "black-ice patrols"}


@dataclass(frozen=True)
class AutomationOutlook:
    kind: str  # "congestion" | "black_ice"
    enabled: bool
    stretches: tuple[str, ...]
    window: Window | None  # the schedule window open now, else the next one (None: no schedule)
    open_now: bool  # ``window`` is open at the instant asked about
    weather_trigger: str | None  # what else starts it, in words (black ice: the weather)
    now: datetime

    @property
    def next(self) -> datetime | None:
        """The next time it acts by schedule: now while its window is open."""
        if not self.enabled or self.window is None:
            return None
        return self.now if self.open_now else self.window.start

    def describe(self) -> str:
        """One line for an operator, in the city's time."""
        name = _NAMES.get(self.kind, self.kind)
        if not self.enabled:
            why = "no road stretch to watch" if not self.stretches else "no schedule"
            return f"{name}: off ({why})"
        where = ", ".join(self.stretches)
        parts: list[str] = []
        w = self.window
        if w is not None and self.open_now:
            parts.append(f"now, until {w.end:%H:%M}")
        elif w is not None:
            parts.append(f"next {w.start:%a %Y-%m-%d %H:%M}-{w.end:%H:%M}")
        if self.weather_trigger is not None:
            parts.append(("and " if parts else "") + self.weather_trigger)
        return f"{name} over {where}: " + ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        nxt = self.next
        w = self.window
        return {
            "kind": self.kind,
            "enabled": self.enabled,
            "stretches": list(self.stretches),
            "next": nxt.isoformat() if nxt is not None else None,
            "active": self.enabled and self.open_now,
            "until": w.end.isoformat() if self.enabled and self.open_now and w is not None else None,
            "window": {"start": w.start.isoformat(), "end": w.end.isoformat()}
            if w and self.enabled
            else None,
            "weather_trigger": self.weather_trigger if self.enabled else None,
            "text": self.describe(),
        }


def _window(crons: Any, now: datetime) -> tuple[Window | None, bool]:
    open_now = active_window(crons, now)
    if open_now is not None:
        return open_now, True
    return next_window(crons, now), False


def outlook(config: PatrolsConfig, now_local: datetime) -> tuple[AutomationOutlook, ...]:
    """Congestion then black ice, at ``now_local`` (timezone-aware, in the city's timezone)."""
    cg = config.congestion
    window, open_now = _window(cg.schedule, now_local)
    congestion = AutomationOutlook(
        kind=CONGESTION,
        enabled=bool(cg.stretches and cg.schedule),
        stretches=tuple(cg.stretches),
        window=window,
        open_now=open_now,
        weather_trigger=None,
        now=now_local,
    )
    bi = config.black_ice
    window, open_now = _window(bi.schedule, now_local)
    weather = (
        f"whenever a nest's weather station reports ice risk (road at or below {bi.road_temp_max_c:.1f} °C "
        f"with {'precipitation or ' if bi.precipitation_triggers else ''}humidity at or above "
        f"{bi.humidity_min_pct:.0f} %)"
    )
    black_ice = AutomationOutlook(
        kind=BLACK_ICE,
        enabled=bool(bi.stretches),  # the weather trigger is always on
        stretches=tuple(bi.stretches),
        window=window,
        open_now=open_now,
        weather_trigger=weather,
        now=now_local,
    )
    return congestion, black_ice


def summary(items: tuple[AutomationOutlook, ...]) -> str:
    """The human line: every automation, ";"-separated."""
    return "automations: " + "; ".join(i.describe() for i in items)


def report(config: PatrolsConfig, timezone: str, calendar_unix_s: float) -> dict[str, Any]:
    """The outlook at ``calendar_unix_s`` (the service clock's calendar) as JSON: the instant in
    the city's time, every automation, and the human line."""
    now = city_time(calendar_unix_s, timezone)
    items = outlook(config, now)
    return {"at": now.isoformat(), "automations": [i.as_json() for i in items], "text": summary(items)}
