"""The drone's battery: a 6S 12 Ah pack, drained by the power the flight needs, charged in the dock.

Power model of a ~6 kg police quadrotor: about 420 W to hover, a little less in cruise
(translational lift), more when fast or climbing; this gives 35-38 minutes from full to empty
in hover, about 30 minutes of useful endurance to the dock's reserve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CELLS = 6
CAPACITY_AH = 12.0
NOMINAL_V = 3.7 * CELLS
CAPACITY_WH = CAPACITY_AH * NOMINAL_V
HOVER_POWER_W = 420.0
IDLE_ARMED_POWER_W = 35.0
AVIONICS_POWER_W = 8.0
MASS_KG = 6.0
CLIMB_EFFICIENCY = 0.7
PACK_RESISTANCE_OHM = 0.025
CHARGE_CURRENT_A = 10.0


def flight_power_w(air_speed_mps: float, climb_rate_mps: float) -> float:
    """Electrical power in flight at an air speed and climb rate (m/s, up positive)."""
    v = max(0.0, air_speed_mps)
    shape = 1.0 - 0.25 * (1.0 - math.exp(-v / 6.0)) + 0.0009 * v * v
    climb = MASS_KG * 9.81 * climb_rate_mps / CLIMB_EFFICIENCY
    if climb < 0:
        climb *= 0.3  # descending recovers little
    return max(0.2 * HOVER_POWER_W, HOVER_POWER_W * shape + climb)


def cell_ocv(soc: float) -> float:
    """Open-circuit voltage of one LiPo cell at a state of charge 0..1."""
    soc = max(0.0, min(1.0, soc))
    return 3.3 + 0.55 * soc + 0.35 * soc**4 - 0.25 * (1.0 - soc) ** 8


@dataclass
class Battery:
    soc: float = 1.0  # 0..1
    current_a: float = 0.0  # positive: discharging
    consumed_mah: float = 0.0
    consumed_wh: float = 0.0
    charging: bool = False
    failed: bool = False

    @property
    def remaining_pct(self) -> float:
        return 100.0 * self.soc

    @property
    def voltage_v(self) -> float:
        return CELLS * cell_ocv(self.soc) - self.current_a * PACK_RESISTANCE_OHM

    def drain(self, power_w: float, dt_s: float, factor: float = 1.0) -> None:
        """Deliver ``power_w`` for ``dt_s`` seconds (``factor`` multiplies the drain: a fault)."""
        self.charging = False
        volts = max(1.0, CELLS * cell_ocv(self.soc))
        self.current_a = power_w / volts
        energy_wh = power_w * dt_s / 3600.0 * factor
        self.soc = max(0.0, self.soc - energy_wh / CAPACITY_WH)
        self.consumed_wh += energy_wh
        self.consumed_mah += self.current_a * factor * dt_s / 3.6

    def charge(self, dt_s: float) -> None:
        """Charge from the dock: constant current, tapering above 90 %."""
        self.charging = True
        taper = 1.0 if self.soc < 0.9 else max(0.05, (1.0 - self.soc) / 0.1)
        amps = CHARGE_CURRENT_A * taper
        self.current_a = -amps
        self.soc = min(1.0, self.soc + amps * dt_s / 3600.0 / CAPACITY_AH)

    def time_remaining_s(self, power_w: float) -> float:
        return self.soc * CAPACITY_WH / max(1.0, power_w) * 3600.0
