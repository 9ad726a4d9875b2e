"""Incident dispatch settings: the automation policy, the readiness timings and the 1-3-5 targets.

Frozen and plain; the defaults suit the simulated police dock quadrotor (sitl/) and the city's
doctrine. The readiness figures are what a launch from a closed, charging dock takes before the
drone leaves at cruise altitude: the cover travel is the simulator's (and the dock vendor's) 18 s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DispatchSettings:
    # policy: priority 1 is the most urgent; 1..auto_launch_max_priority launch without asking
    auto_launch_max_priority: int = 2
    cruise_alt_m: float = 60.0  # above the nest's pad
    cruise_speed_mps: float | None = None  # None: the energy model's cruise airspeed
    orbit_radius_m: float = 60.0
    orbit_speed_mps: float = 5.0
    on_scene_s: float = 300.0  # the time on scene the battery check plans for (as a launch does)
    # readiness of a drone in its dock (seconds), as PX4 with its defaults and the dock do it
    preflight_s: float = 1.0  # checklist, charger off
    cover_open_s: float = 18.0  # cover travel, closed to open
    arm_s: float = 1.0  # arming accepted by the autopilot
    takeoff_s: float = 2.0  # spool up and lift off the pad
    takeoff_climb_mps: float = 1.5  # PX4 MPC_TKO_SPEED: the take-off climbs at this rate
    climbed_fraction: float = 0.9  # the controller heads out at 90 % of the cruise altitude
    leg_overhead_s: float = 4.0  # accelerating to cruise speed and settling over the point
    # a drone already in the air
    retask_s: float = 2.0  # the new go-to accepted and the turn begun
    idle_priority: int = 6  # the "priority" of a drone flying no incident (returning, ferrying)
    # the doctrine, in seconds after the incident was received
    dispatch_target_s: float = 60.0  # dispatched within 1 minute
    moving_target_s: float = 180.0  # units moving (airborne) within 3
    on_scene_target_s: float = 300.0  # on scene within 5
    # a queued or proposed incident is planned again this often (and on every change of a nest)
    replan_period_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.auto_launch_max_priority <= 5:
            raise ValueError("auto_launch_max_priority must be 0 (always ask) .. 5 (never ask)")
        if self.cruise_speed_mps is not None and self.cruise_speed_mps <= 0:
            raise ValueError("cruise_speed_mps must be positive")

    def launches_automatically(self, priority: int) -> bool:
        """At or above the configured priority (numerically at or below it) the drone goes at once;
        otherwise a commander confirms first."""
        return priority <= self.auto_launch_max_priority


DEFAULT_SETTINGS = DispatchSettings()
