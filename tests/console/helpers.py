"""Building a fleet as the console sees it, from the API's own models (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime

from dronectl.domain.config import load_config
from dronectl.operations.models import (
    Actor,
    ControllerStatus,
    DockState,
    DroneState,
    GroundPoint,
    Incident,
    NestState,
    Phase,
    Position,
    Role,
    Telemetry,
)
from dronectl.operations.topics import Topics
from dronectl.transports.console.commands import Context
from dronectl.transports.console.fleet import FleetModel
from dronectl.transports.console.places import Places

TOPICS = Topics()
NOW = datetime(2025, 1, 13, 8, 30, tzinfo=UTC)
PILOT = Actor(id="pilot-a", role=Role.PILOT)


def state(
    nest_id: int, phase: Phase = Phase.READY, *, holder: Actor | None = None, alt_m: float = 0.0
) -> NestState:
    return NestState(
        nest_id=nest_id,
        name=f"Nest {nest_id}",
        at=NOW,
        phase=phase,
        dock=DockState(cover="closed", drone_in_dock=True, charging=False, weather=None),
        drone=DroneState(
            armed=False,
            mode="hold",
            position=Position(lat=43.85, lon=125.30, alt_m=alt_m),
            battery_pct=88.0,
            link="up",
        ),
        flight=None,
        control=holder,
    )


def fleet(nest_ids: tuple[int, ...] = (3, 5, 7)) -> FleetModel:
    model = FleetModel(TOPICS)
    status = ControllerStatus(state="online", at=NOW, nests=list(nest_ids))
    model.apply(TOPICS.status(), status.model_dump_json().encode())
    for n in nest_ids:
        model.apply(TOPICS.nest_state(n), state(n).model_dump_json().encode())
    return model


def add_incident(model: FleetModel, incident_id: str, lat: float, lon: float) -> None:
    incident = Incident(
        id=incident_id,
        kind="traffic_accident",
        position=GroundPoint(lat=lat, lon=lon),
        priority=1,
        reported_at=NOW,
        actor=Actor(id="cc", role=Role.COMMANDER),
    )
    model.apply(TOPICS.incidents("cc"), incident.model_dump_json().encode())


def telemetry(nest_id: int, at: datetime, alt_m: float, speed_mps: float) -> bytes:
    sample = Telemetry(
        nest_id=nest_id,
        at=at,
        position=Position(lat=43.86, lon=125.31, alt_m=alt_m),
        heading_deg=90.0,
        ground_speed_mps=speed_mps,
        climb_rate_mps=0.0,
        battery_pct=75.0,
        link_quality_pct=98.0,
    )
    return sample.model_dump_json().encode()


def context(model: FleetModel | None = None, actor: Actor = PILOT) -> Context:
    return Context(
        fleet=model if model is not None else fleet(),
        places=Places.from_config(load_config()),
        actor=actor,
        now=NOW,
        default_alt_m=60.0,
        video_base_url="http://video.local:8889",
    )
