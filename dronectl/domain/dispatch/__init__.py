"""Incident dispatch: which nest puts a drone over the scene soonest (pure, no I/O).

- ``settings``: the automation policy, readiness timings and the 1-3-5 targets.
- ``estimate``: time to scene from a dock or from the air, with the wind.
- ``planner``: every nest considered with the safety checks; the soonest with a go chosen.
- ``milestones``: dispatched, airborne, on scene, video live, against the targets.
- ``coverage``: the expected time to scene over the whole city (drawn by
  ``python -m dronectl.transports.web.coverage_image``).

The async service that carries a plan out is ``dronectl.automations.incidents.dispatcher``.
"""

from dronectl.domain.dispatch.estimate import SceneEstimate, launch_estimate, retask_estimate
from dronectl.domain.dispatch.milestones import Mark, Milestone, mark
from dronectl.domain.dispatch.planner import (
    Action,
    Candidate,
    DispatchPlan,
    Mode,
    Option,
    PassedOver,
    Reason,
    SceneRequest,
    Work,
    decide,
    plan,
)
from dronectl.domain.dispatch_settings import DEFAULT_SETTINGS, DispatchSettings

__all__ = [
    "DEFAULT_SETTINGS",
    "Action",
    "Candidate",
    "DispatchPlan",
    "DispatchSettings",
    "Mark",
    "Milestone",
    "Mode",
    "Option",
    "PassedOver",
    "Reason",
    "SceneEstimate",
    "SceneRequest",
    "Work",
    "decide",
    "launch_estimate",
    "mark",
    "plan",
    "retask_estimate",
]
