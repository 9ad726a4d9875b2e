"""Road patrols: black-ice watch and rush-hour congestion watch over configured road stretches.

The pure core (no I/O, no await), read by the runtime (``service``, ``missions``, ``store``):

- ``route``: a configured stretch as something to fly (points by distance, waypoints, nearest).
- ``triggers``: black-ice risk from a nest's weather station, with the reasons in words.
- ``schedule``: cron windows (rush hours, winter mornings) in the city's timezone.
- ``congestion``: free / light / heavy / standstill from the traffic a camera measures.
- ``handover``: when a patrolling drone needs relief, and which nest sends it.

The configuration (``PatrolsConfig`` and its parts) lives in ``dronectl.domain.config``.
"""

from dronectl.domain.patrols.congestion import CongestionLevel, classify, describe
from dronectl.domain.patrols.handover import (
    Endurance,
    ReliefPlan,
    endurance,
    endurance_left_s,
    plan_relief,
    relief_due,
)
from dronectl.domain.patrols.route import Route, routes_of
from dronectl.domain.patrols.schedule import Window, active_window, city_time, next_window
from dronectl.domain.patrols.triggers import IceRisk, RoadWeather, ice_risk, road_weather

__all__ = [
    "CongestionLevel",
    "Endurance",
    "IceRisk",
    "ReliefPlan",
    "RoadWeather",
    "Route",
    "Window",
    "active_window",
    "city_time",
    "classify",
    "describe",
    "endurance",
    "endurance_left_s",
    "ice_risk",
    "next_window",
    "plan_relief",
    "relief_due",
    "road_weather",
    "routes_of",
]
