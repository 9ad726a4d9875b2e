"""The service's parts above the fleet, in one module that ``dronectl up`` loads only once the
fleet's MAVLink endpoints are sending (``up.run``): these imports (operations, automations,
transports, video) are most of a start's time, and an airborne drone waits for our heartbeat.
"""

from __future__ import annotations

from dronectl.automations.incidents.dispatcher import IncidentDispatcher
from dronectl.automations.incidents.intake import IncidentIntake
from dronectl.automations.lookout import Lookout
from dronectl.automations.patrols.service import PatrolService
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.topics import Topics
from dronectl.transports.mqtt.instance_status import Holding, InstanceStatusPublisher
from dronectl.transports.mqtt.service import serve_api
from dronectl.transports.web.coverage import CoverageLayer, add_coverage_routes, fleet_wind
from dronectl.transports.web.health import Health, Probes
from dronectl.transports.web.replay import add_replay_routes
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import Sessions
from dronectl.transports.web.snapshots import add_snapshot_routes
from dronectl.transports.web.updates import TelemetryRates
from dronectl.transports.whep import add_video_routes
from dronectl.video import open_video

__all__ = [
    "AuditOutcomes",
    "CommandGateway",
    "CoverageLayer",
    "FleetOperations",
    "Health",
    "Holding",
    "IncidentDispatcher",
    "IncidentIntake",
    "InstanceStatusPublisher",
    "LoginAudit",
    "Lookout",
    "PatrolService",
    "Probes",
    "Sessions",
    "TelemetryRates",
    "Topics",
    "WebServer",
    "add_coverage_routes",
    "add_replay_routes",
    "add_snapshot_routes",
    "add_video_routes",
    "fleet_wind",
    "open_video",
    "serve_api",
]
