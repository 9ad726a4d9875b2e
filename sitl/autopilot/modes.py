"""PX4 flight modes and how PX4 encodes them in HEARTBEAT.

``custom_mode = main_mode << 16 | sub_mode << 24`` (PX4's ``px4_custom_mode``); base_mode carries
CUSTOM_MODE_ENABLED, the *_ENABLED flags of the mode and SAFETY_ARMED.
"""

from __future__ import annotations

import enum

from adapters.mavlink import dronectl_v20 as mav


class MainMode(enum.IntEnum):
    MANUAL = 1
    ALTCTL = 2
    POSCTL = 3
    AUTO = 4
    ACRO = 5
    OFFBOARD = 6
    STABILIZED = 7


class AutoSub(enum.IntEnum):
    READY = 1
    TAKEOFF = 2
    LOITER = 3
    MISSION = 4
    RTL = 5
    LAND = 6
    FOLLOW_TARGET = 8
    PRECLAND = 9


POSCTL_SUB_ORBIT = 1


class FlightMode(enum.Enum):
    """The modes the simulator flies: (main, sub) as PX4 reports them."""

    MANUAL = (MainMode.MANUAL, 0)
    ALTCTL = (MainMode.ALTCTL, 0)
    POSCTL = (MainMode.POSCTL, 0)
    ORBIT = (MainMode.POSCTL, POSCTL_SUB_ORBIT)
    ACRO = (MainMode.ACRO, 0)
    OFFBOARD = (MainMode.OFFBOARD, 0)
    STABILIZED = (MainMode.STABILIZED, 0)
    TAKEOFF = (MainMode.AUTO, AutoSub.TAKEOFF)
    LOITER = (MainMode.AUTO, AutoSub.LOITER)
    MISSION = (MainMode.AUTO, AutoSub.MISSION)
    RTL = (MainMode.AUTO, AutoSub.RTL)
    LAND = (MainMode.AUTO, AutoSub.LAND)
    FOLLOW_TARGET = (MainMode.AUTO, AutoSub.FOLLOW_TARGET)
    PRECLAND = (MainMode.AUTO, AutoSub.PRECLAND)

    @property
    def main(self) -> int:
        return int(self.value[0])

    @property
    def sub(self) -> int:
        return int(self.value[1])

    @property
    def custom_mode(self) -> int:
        return custom_mode(self.main, self.sub)

    @property
    def label(self) -> str:
        """The name PX4 uses in its messages ("Hold", "Mission", ...)."""
        return _LABELS[self]

    @property
    def is_auto(self) -> bool:
        return self.main == MainMode.AUTO

    @property
    def prevents_arming(self) -> bool:
        """PX4's ``mode_req_prevent_arming`` (commander ``ModeUtil/mode_requirements.cpp``): never
        armed in; after a disarm PX4 leaves it for the last mode selected that does not."""
        return self in (
            FlightMode.RTL,
            FlightMode.LAND,
            FlightMode.PRECLAND,
            FlightMode.FOLLOW_TARGET,
            FlightMode.ORBIT,
        )

    @property
    def needs_manual_control(self) -> bool:
        return self in (
            FlightMode.MANUAL,
            FlightMode.ALTCTL,
            FlightMode.POSCTL,
            FlightMode.ACRO,
            FlightMode.STABILIZED,
        )


_LABELS = {
    FlightMode.MANUAL: "Manual",
    FlightMode.ALTCTL: "Altitude",
    FlightMode.POSCTL: "Position",
    FlightMode.ORBIT: "Orbit",
    FlightMode.ACRO: "Acro",
    FlightMode.OFFBOARD: "Offboard",
    FlightMode.STABILIZED: "Stabilized",
    FlightMode.TAKEOFF: "Takeoff",
    FlightMode.LOITER: "Hold",
    FlightMode.MISSION: "Mission",
    FlightMode.RTL: "Return",
    FlightMode.LAND: "Land",
    FlightMode.FOLLOW_TARGET: "Follow Target",
    FlightMode.PRECLAND: "Precision Land",
}


def custom_mode(main: int, sub: int = 0) -> int:
    return (int(main) << 16) | (int(sub) << 24)


def decode_custom_mode(value: int) -> tuple[int, int]:
    """(main, sub) of a PX4 custom_mode."""
    return (value >> 16) & 0xFF, (value >> 24) & 0xFF


class UnsupportedMode(ValueError):
    """The main mode (or sub mode) is not one PX4 knows."""


def mode_from_custom(main: int, sub: int) -> FlightMode:
    """The flight mode DO_SET_MODE's (param2, param3) select, as PX4's commander reads them."""
    try:
        main_mode = MainMode(main)
    except ValueError:
        raise UnsupportedMode(f"main mode {main}") from None
    if main_mode is MainMode.AUTO:
        for mode in FlightMode:
            if mode.main == MainMode.AUTO and mode.sub == sub:
                return mode
        if sub == AutoSub.READY or sub == 0:
            return FlightMode.LOITER
        raise UnsupportedMode(f"auto sub mode {sub}")
    if main_mode is MainMode.POSCTL and sub == POSCTL_SUB_ORBIT:
        return FlightMode.ORBIT
    for mode in FlightMode:
        if mode.main == main_mode and mode.sub == 0:
            return mode
    raise UnsupportedMode(f"main mode {main}")  # pragma: no cover - every main mode has a sub 0


_MODE_FLAGS = {
    MainMode.MANUAL: mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED,
    MainMode.ALTCTL: mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED | mav.MAV_MODE_FLAG_STABILIZE_ENABLED,
    MainMode.POSCTL: mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
    | mav.MAV_MODE_FLAG_STABILIZE_ENABLED
    | mav.MAV_MODE_FLAG_GUIDED_ENABLED,
    MainMode.AUTO: mav.MAV_MODE_FLAG_STABILIZE_ENABLED
    | mav.MAV_MODE_FLAG_GUIDED_ENABLED
    | mav.MAV_MODE_FLAG_AUTO_ENABLED,
    MainMode.ACRO: mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED,
    MainMode.OFFBOARD: 0,
    MainMode.STABILIZED: mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED | mav.MAV_MODE_FLAG_STABILIZE_ENABLED,
}


def base_mode(mode: FlightMode, armed: bool) -> int:
    """HEARTBEAT.base_mode as PX4 fills it (AUTO.LOITER disarmed: 29; armed: 157; OFFBOARD: 1)."""
    flags = mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | _MODE_FLAGS[MainMode(mode.main)]
    if armed:
        flags |= mav.MAV_MODE_FLAG_SAFETY_ARMED
    return int(flags)
