"""Every MQTT payload as a pydantic model: the API's contract, and the source of docs/api/.

Conventions:
- JSON objects, UTF-8; unknown fields are refused (``extra="forbid"``); NaN and infinities too.
- Times are ISO 8601 with a UTC offset (``2025-01-13T08:30:00Z``); durations and rates carry their
  unit in the name (``ttl_s``, ``radius_m``, ``speed_mps``, ``battery_pct``).
- Positions: ``lat``/``lon`` in degrees (WGS84), ``alt_m`` in metres above the nest's pad.
- What comes in (requests, their args, incidents) is validated strictly: no type coercion
  (``"7"`` is not ``7``, ``"true"`` is not ``true``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from dronectl.domain.limits import MAX_NEST_ID
from dronectl.domain.roles import Method, Role

Lat = Annotated[float, Field(ge=-90.0, le=90.0, description="degrees, WGS84")]
Lon = Annotated[float, Field(ge=-180.0, le=180.0, description="degrees, WGS84")]
NestId = Annotated[int, Field(ge=1, le=MAX_NEST_ID, description="nest number")]
CommandId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
        description="correlation and idempotency key, unique per command (a UUID is fine)",
    ),
]
Text = Annotated[str, Field(max_length=500)]


MAX_TTL_S = 600.0  # the longest a request may wait to be executed
MAX_ARGS_BYTES = 4096  # a request's args as JSON: the largest method's args fit many times over


class _Inbound(BaseModel):
    """What clients send: strict, closed, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _Outbound(BaseModel):
    """What the service publishes: closed and immutable; built in Python by the service."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- vocabulary ------------------------------------------------------------------------------


class ErrorCode(StrEnum):
    MALFORMED = "malformed"  # not JSON, or not a valid request envelope
    UNKNOWN_METHOD = "unknown_method"  # no such method on this topic
    INVALID_ARGS = "invalid_args"  # the method's arguments do not validate
    UNKNOWN_NEST = "unknown_nest"  # the topic names a nest we do not manage
    FORBIDDEN = "forbidden"  # the sender's role may not call this method (or report incidents)
    IDENTITY = "identity"  # the envelope's actor or reply_to is not the sender's, or no such user
    NO_REPLY_ADDRESS = "no_reply_address"  # an MQTT request with no reply_to nor Response Topic
    EXPIRED = "expired"  # issued_at + ttl_s has passed (or issued_at lies in the future)
    REFUSED = "refused"  # the controller's safety checks said no; nothing was sent
    BUSY = "busy"  # the nest is doing something that excludes this now (or the sender's backlog was full)
    FAILED = "failed"  # sent, and it did not succeed
    TIMEOUT = "timeout"  # sent, and no answer came in time
    LINK_LOST = "link_lost"  # the nest's link is down; nothing was sent
    UNAVAILABLE = "unavailable"  # the service cannot take commands now (shutting down)
    INTERNAL = "internal"  # a bug on our side; nothing was sent


class ProgressState(StrEnum):
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({ProgressState.SUCCEEDED, ProgressState.FAILED, ProgressState.CANCELLED})


class Phase(StrEnum):
    """The nest's state machine state (same values as ``dronectl.domain.nest_state.NestPhase``)."""

    OFFLINE = "offline"
    CHARGING = "charging"
    STANDBY = "standby"
    READY = "ready"
    PREFLIGHT = "preflight"
    LAUNCHING = "launching"
    EN_ROUTE = "en_route"
    ON_STATION = "on_station"
    RETURNING = "returning"
    LANDING = "landing"
    POST_FLIGHT = "post_flight"
    FAULT = "fault"
    MAINTENANCE = "maintenance"


AIRBORNE_PHASES = frozenset(
    {Phase.LAUNCHING, Phase.EN_ROUTE, Phase.ON_STATION, Phase.RETURNING, Phase.LANDING}
)


class EventKind(StrEnum):
    LAUNCHED = "launched"
    ON_STATION = "on_station"
    RETURNING = "returning"
    LANDED = "landed"
    REFUSED = "refused"  # an operation was refused by the controller (reasons in data)
    FAULT = "fault"
    FAULT_CLEARED = "fault_cleared"
    WEATHER_NO_GO = "weather_no_go"
    LINK_LOST = "link_lost"
    LINK_RESTORED = "link_restored"
    LINK_SIGNING = "link_signing"  # the nest's MAVLink link started or stopped being signed (data: signed)
    BATTERY_RESERVE = "battery_reserve"  # turned back to keep the battery reserve
    GEOFENCE = "geofence"
    DETECTION = "detection"  # something found in a drone's video (data: kind, lat, lon, snapshot_id...)
    GROUND_UNITS_REQUESTED = "ground_units_requested"  # police on the ground asked to a place
    INCIDENT_PROGRESS = "incident_progress"
    MAINTENANCE = "maintenance"
    CONTROL = "control"  # manual control taken or released
    COMMAND_REJECTED = "command_rejected"  # a request on MQTT was malformed, expired, forbidden...
    COMMAND_INTERRUPTED = "command_interrupted"  # left running by an instance that lost the nest
    PATROL = "patrol"  # a patrol mission changed state (planned, launching, patrolling, ..., ended)
    CONGESTION = "congestion"  # a congestion patrol's reading of a road stretch (level, density, speed)


# --- shared pieces ---------------------------------------------------------------------------


class Actor(_Inbound):
    id: str = Field(min_length=1, max_length=64, description="who asks: a person or a program")
    role: Role


class Target(_Inbound):
    """A point to fly to."""

    lat: Lat
    lon: Lon
    alt_m: float = Field(ge=5.0, le=500.0, description="metres above the nest's pad")


class GroundPoint(_Inbound):
    lat: Lat
    lon: Lon


class Position(_Outbound):
    lat: Lat
    lon: Lon
    alt_m: float = Field(ge=-500.0, le=10000.0, description="metres above the nest's pad")


class ErrorBody(_Outbound):
    code: ErrorCode
    message: str = Field(description="what went wrong, in words an operator understands")
    reasons: list[str] = Field(default_factory=list, description="every reason, when there are several")


# --- request arguments, one model per method -------------------------------------------------


class LaunchArgs(_Inbound):
    target: Target
    speed_mps: float | None = Field(
        default=None, gt=0.0, le=25.0, description="cruise speed; default: nest's"
    )


class GotoArgs(_Inbound):
    target: Target
    speed_mps: float | None = Field(default=None, gt=0.0, le=25.0)


class OrbitArgs(_Inbound):
    center: Target
    radius_m: float = Field(ge=10.0, le=1000.0)
    speed_mps: float | None = Field(default=None, gt=0.0, le=25.0)
    clockwise: bool = True


class NoArgs(_Inbound):
    """hold, return_home, land, speaker.stop, control.take, control.release."""


class AbortArgs(_Inbound):
    reason: Text = ""


class SpeakerSayArgs(_Inbound):
    text: str = Field(min_length=1, max_length=500, description="what the loudspeaker says (UTF-8)")
    lang: str = Field(default="zh", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="e.g. zh, en")


class LightSetArgs(_Inbound):
    mode: Literal["off", "steady", "strobe", "police"]


class MaintenanceSetArgs(_Inbound):
    on: bool
    reason: Text = ""


class ReturnAllArgs(_Inbound):
    reason: Text = ""


class IncidentConfirmArgs(_Inbound):
    incident_id: CommandId
    nest: NestId | None = Field(default=None, description="another nest with a go; default: the proposed one")


StretchId = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="a road stretch of the city config")
]


class PatrolStartArgs(_Inbound):
    kind: Literal["black_ice", "congestion"]
    stretch_id: StretchId


class PatrolStopArgs(_Inbound):
    mission_id: CommandId


class PatrolListArgs(_Inbound):
    active_only: bool = False


NEST_METHOD_ARGS: dict[Method, type[_Inbound]] = {
    Method.LAUNCH: LaunchArgs,
    Method.GOTO: GotoArgs,
    Method.ORBIT: OrbitArgs,
    Method.HOLD: NoArgs,
    Method.RETURN_HOME: NoArgs,
    Method.LAND: NoArgs,
    Method.ABORT: AbortArgs,
    Method.SPEAKER_SAY: SpeakerSayArgs,
    Method.SPEAKER_STOP: NoArgs,
    Method.LIGHT_SET: LightSetArgs,
    Method.CONTROL_TAKE: NoArgs,
    Method.CONTROL_RELEASE: NoArgs,
    Method.MAINTENANCE_SET: MaintenanceSetArgs,
}
FLEET_METHOD_ARGS: dict[Method, type[_Inbound]] = {
    Method.RETURN_ALL: ReturnAllArgs,
    Method.INCIDENT_CONFIRM: IncidentConfirmArgs,
    Method.PATROL_START: PatrolStartArgs,
    Method.PATROL_STOP: PatrolStopArgs,
    Method.PATROL_LIST: PatrolListArgs,
}
assert set(NEST_METHOD_ARGS) | set(FLEET_METHOD_ARGS) == set(Method)


# --- requests and answers --------------------------------------------------------------------


class Request(_Inbound):
    """A command, on ``{root}/nests/{nest}/commands/{user}`` or ``{root}/commands/{user}`` (fleet)."""

    id: CommandId
    method: str = Field(min_length=1, max_length=64, description="see Method; args depend on it")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description=f"at most {MAX_ARGS_BYTES} bytes as JSON, numbers finite (no NaN, no infinity)",
    )
    actor: Actor | None = Field(
        default=None,
        description="optional: the service knows the sender (the topic's user, the session); "
        "when given it must be that user with its role, or the request is refused",
    )
    issued_at: AwareDatetime = Field(description="when the client issued it; the clocks must agree")
    ttl_s: float | None = Field(
        default=None,
        gt=0.0,
        le=MAX_TTL_S,
        description="refused unless it arrives before issued_at + ttl_s; required, except over "
        "MQTT 5 with a Message Expiry Interval (then the earlier of the two deadlines holds)",
    )
    reply_to: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^[^$+#\x00][^+#\x00]*$",
        description="topic for the reply and the progress messages (no wildcards), "
        "under the sender's own {root}/replies/{user}",
    )
    client: Literal["console"] | None = Field(
        default=None,
        description="optional, informational: the client program (dronectl's console says "
        "'console'); over MQTT the audit records it as the channel. It is the sender's word: it "
        "names no one and grants nothing (the identity is the authenticated user)",
    )

    @field_validator("args")
    @classmethod
    def _storable_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Whatever the method, args must be storable as they came: every request, refused ones
        included, is recorded with its args (NaN and infinities are not JSON, a blob would fill
        the audit store). The method's own model checks them further."""
        try:
            text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            raise ValueError("args hold NaN or an infinity: numbers must be finite") from None
        if len(text.encode()) > MAX_ARGS_BYTES:
            raise ValueError(f"args larger than {MAX_ARGS_BYTES} bytes as JSON")
        return value


class Reply(_Outbound):
    """The first outcome of a request: accepted (ok) or refused (error). Sent once per request id;
    a repeated id gets the same reply again with ``repeated`` set."""

    kind: Literal["reply"] = "reply"
    id: str | None = Field(description="the request's id; null when it could not be read")
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None
    repeated: bool = False

    @model_validator(mode="after")
    def _ok_xor_error(self) -> Reply:
        if self.ok == (self.error is not None):
            raise ValueError("a reply carries an error exactly when ok is false")
        if not self.ok and self.result is not None:
            raise ValueError("a refused request has no result")
        return self


class Progress(_Outbound):
    """How an accepted command goes, on the request's reply_to:
    accepted -> in_progress (zero or more) -> succeeded | failed | cancelled."""

    kind: Literal["progress"] = "progress"
    id: str
    method: Method
    nest_id: NestId | None = None
    state: ProgressState
    at: AwareDatetime
    message: str = ""
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None


# --- what the service publishes --------------------------------------------------------------


class Weather(_Outbound):
    wind_speed_mps: float = Field(ge=0.0)
    wind_gust_mps: float = Field(ge=0.0)
    wind_from_deg: float = Field(ge=0.0, lt=360.0)
    air_temp_c: float
    precipitation_mmph: float = Field(ge=0.0)
    go: bool = Field(description="within the configured weather limits")


class DockState(_Outbound):
    cover: Literal["unknown", "closed", "opening", "open", "closing", "stopped"]
    drone_in_dock: bool | None
    charging: bool | None
    weather: Weather | None


class DroneState(_Outbound):
    armed: bool | None
    mode: Literal["unknown", "takeoff", "hold", "mission", "position", "orbit", "return", "land"]
    position: Position | None
    battery_pct: float | None = Field(ge=0.0, le=100.0)
    link: Literal["up", "lost"]


class LinkSecurity(_Outbound):
    """The nest's MAVLink link: signed or not, and what it refused (issue 13)."""

    signed: bool = Field(description="frames are signed and the nest's own frames verify")
    policy: Literal["required", "when_provisioned", "off"]
    rejected: dict[str, int] = Field(
        default_factory=dict,
        description="frames dropped, by reason: unsigned, bad_signature, replay, wrong_system, "
        "wrong_peer, no_key, malformed",
    )
    fault: str | None = Field(default=None, description="why the nest's own frames are refused, if they are")
    last_verified_s_ago: float | None = Field(
        default=None, ge=0.0, description="seconds since a frame of the nest last verified; null: none yet"
    )


class Flight(_Outbound):
    id: str
    command_id: str | None
    started_at: AwareDatetime
    target: Position | None


class Blocker(_Outbound):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str


class NestState(_Outbound):
    """Retained on ``{root}/nests/{nest}/state``; republished on every change."""

    nest_id: NestId
    name: str
    at: AwareDatetime
    phase: Phase
    dock: DockState
    drone: DroneState
    flight: Flight | None
    control: Actor | None = Field(default=None, description="who holds manual control, if anyone")
    maintenance: bool = False
    fault: str | None = None
    blockers: list[Blocker] = Field(default_factory=list, description="what would refuse a launch now")
    link: LinkSecurity | None = Field(
        default=None, description="MAVLink signing on the nest's link, once attached"
    )


class Telemetry(_Outbound):
    """On ``{root}/nests/{nest}/telemetry`` (QoS 0, not retained; stale samples are dropped)."""

    nest_id: NestId
    at: AwareDatetime
    position: Position
    heading_deg: float = Field(ge=0.0, lt=360.0)
    ground_speed_mps: float = Field(ge=0.0)
    climb_rate_mps: float
    battery_pct: float = Field(ge=0.0, le=100.0)
    link_quality_pct: float = Field(ge=0.0, le=100.0)


class Event(_Outbound):
    """On ``{root}/nests/{nest}/events`` (nest_id set) and ``{root}/events`` (every event)."""

    kind: EventKind
    at: AwareDatetime
    nest_id: NestId | None = None
    message: str
    command_id: str | None = None
    flight_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Incident(_Inbound):
    """On ``{root}/incidents/{user}``, from the command center (used by incident dispatch); the
    sender needs a role that may report incidents (commander, automation, reporter)."""

    id: CommandId
    kind: str = Field(
        min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$", description="e.g. traffic_accident"
    )
    position: GroundPoint
    priority: int = Field(ge=1, le=5, description="1 is the most urgent")
    text: str = Field(default="", max_length=1000)
    reported_at: AwareDatetime
    actor: Actor = Field(description="the sender, with its role: anything else is refused")


class ControllerStatus(_Outbound):
    """Retained on ``{root}/status``; ``offline`` is the broker's last will for the service."""

    state: Literal["online", "offline"]
    at: AwareDatetime | None = Field(default=None, description="when it went online (null in the last will)")
    version: str | None = None
    nests: list[NestId] = Field(default_factory=list)


class InstanceStatus(_Outbound):
    """Retained on ``{root}/instances/{instance}/status``: one dronectl instance among several (its
    own connection's last will says ``offline``)."""

    instance: str = Field(min_length=1, max_length=64, description="its --instance-id")
    state: Literal["online", "offline"]
    at: AwareDatetime | None = Field(
        default=None, description="when this status was published (null in the last will)"
    )
    version: str | None = None
    nests: list[NestId] = Field(
        default_factory=list, description="the nests it holds (controls) now; none in the last will"
    )
    automations_leader: bool = Field(
        default=False, description="it runs incident dispatch and the patrols (one instance does)"
    )
