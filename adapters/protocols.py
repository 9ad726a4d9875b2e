"""What the controller asks of each kind of nest hardware, in its own terms.

One ``typing.Protocol`` per capability (flight controller, dock, payload) and the frozen values
they speak in, with units in the names. No vendor import here: the MAVSDK and pymavlink
implementations live beside this module, and the core (``dronectl/``) only sees these types.

Commands are coroutines that return when the component confirmed the action and raise an
``adapters.errors.AdapterError`` otherwise (``LinkLost`` fast while the component is not heard,
``CommandRejected`` with a :class:`CommandResult` and the component's reason, ``CommandTimeout``).
Telemetry and status are async iterators: each yields the latest known value first (when there is
one), then every update, until the caller stops iterating.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


class CommandResult(enum.Enum):
    """Outcome of one command, in the style of MAVSDK's per-plugin ``Result`` enums."""

    SUCCESS = "success"
    NO_SYSTEM = "no_system"  # the component was never heard
    LINK_LOST = "link_lost"  # it was heard, and is silent now
    BUSY = "busy"  # the same command to the same component is still in flight here
    DENIED = "denied"
    TEMPORARILY_REJECTED = "temporarily_rejected"  # e.g. PX4 before its pre-arm checks pass
    UNSUPPORTED = "unsupported"
    UNSUPPORTED_FRAME = "unsupported_frame"  # MAV_RESULT 9: valid command, wrong MAV_FRAME
    NOT_IN_CONTROL = "not_in_control"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    INVALID_ARGUMENT = "invalid_argument"
    UNKNOWN = "unknown"

    @property
    def ok(self) -> bool:
        return self is CommandResult.SUCCESS

    @property
    def retryable(self) -> bool:
        """Worth trying again a little later without changing anything."""
        return self in (CommandResult.TEMPORARILY_REJECTED, CommandResult.BUSY)

    def describe(self) -> str:
        return _RESULT_WORDS[self]


_RESULT_WORDS = {
    CommandResult.SUCCESS: "succeeded",
    CommandResult.NO_SYSTEM: "not sent: component never heard",
    CommandResult.LINK_LOST: "not completed: link lost",
    CommandResult.BUSY: "refused: the same command is still in progress",
    CommandResult.DENIED: "denied",
    CommandResult.TEMPORARILY_REJECTED: "temporarily rejected (try again shortly)",
    CommandResult.UNSUPPORTED: "not supported by the component",
    CommandResult.UNSUPPORTED_FRAME: "not supported in this coordinate frame",
    CommandResult.NOT_IN_CONTROL: "refused: another station is in control",
    CommandResult.FAILED: "failed",
    CommandResult.CANCELLED: "cancelled",
    CommandResult.TIMEOUT: "timed out",
    CommandResult.INVALID_ARGUMENT: "refused: invalid argument",
    CommandResult.UNKNOWN: "answered with an unknown result",
}


# link --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkState:
    """Whether a component is heard. ``silent_s`` is the time since its last heartbeat."""

    connected: bool
    silent_s: float | None  # None: never heard


@dataclass(frozen=True)
class LinkSecurityStatus:
    """What a nest's MAVLink link accepts (``adapters.mavlink.link_security``)."""

    policy: str  # "required" | "when_provisioned" | "off"
    provisioned: bool  # we hold a key for the nest
    signed: bool  # frames are signed and the nest's own frames verify
    last_verified_s_ago: float | None  # None: no verified frame yet
    rejected: dict[str, int]  # frames dropped, by reason (unsigned, bad_signature, replay, ...)
    fault: str | None  # why the nest's own frames are refused, in words; None when they are not


# flight ------------------------------------------------------------------------------------------
class AltitudeReference(enum.Enum):
    AMSL = "amsl"  # metres above mean sea level
    RELATIVE = "relative"  # metres above the home (take-off) position


@dataclass(frozen=True)
class GeoTarget:
    """A point to fly to."""

    lat_deg: float
    lon_deg: float
    altitude_m: float
    reference: AltitudeReference


@dataclass(frozen=True)
class Position:
    """Implementations deliver only places on Earth (finite, latitude ±90°, longitude ±180°)."""

    lat_deg: float
    lon_deg: float
    alt_amsl_m: float
    alt_rel_m: float  # above home
    # where the drone's nose points, 0 north, clockwise, [0, 360); None where unknown (an
    # autopilot without a heading estimate, an implementation that cannot tell)
    heading_deg: float | None = None


@dataclass(frozen=True)
class Battery:
    remaining_pct: float
    voltage_v: float
    # the drone says its battery failed (MAVLink BATTERY_STATUS: charge state FAILED or a fault
    # bit); its remaining_pct is still what it reports, and no longer to be trusted
    failed: bool = False


class FlightMode(enum.Enum):
    UNKNOWN = "unknown"
    READY = "ready"
    MANUAL = "manual"
    ALTITUDE = "altitude"
    POSITION = "position"
    TAKEOFF = "takeoff"
    HOLD = "hold"
    MISSION = "mission"
    RETURN_TO_LAUNCH = "return_to_launch"
    LAND = "land"
    OFFBOARD = "offboard"
    FOLLOW_ME = "follow_me"
    ACRO = "acro"
    STABILIZED = "stabilized"
    PRECISION_LAND = "precision_land"


class LandedState(enum.Enum):
    UNKNOWN = "unknown"
    ON_GROUND = "on_ground"
    TAKING_OFF = "taking_off"
    IN_AIR = "in_air"
    LANDING = "landing"


@dataclass(frozen=True)
class Health:
    gyrometer_ok: bool
    accelerometer_ok: bool
    magnetometer_ok: bool
    local_position_ok: bool
    global_position_ok: bool
    home_position_ok: bool
    armable: bool

    @property
    def all_ok(self) -> bool:
        return all(
            (
                self.gyrometer_ok,
                self.accelerometer_ok,
                self.magnetometer_ok,
                self.local_position_ok,
                self.global_position_ok,
                self.home_position_ok,
                self.armable,
            )
        )


@dataclass(frozen=True)
class MissionItem:
    lat_deg: float
    lon_deg: float
    alt_rel_m: float
    speed_mps: float | None = None  # None: keep the current speed
    hold_s: float = 0.0
    acceptance_radius_m: float = 2.0


@dataclass(frozen=True)
class MissionProgress:
    current: int  # index of the item being flown to
    total: int


class FlightController(Protocol):
    """The drone's autopilot."""

    async def set_cruise_speed(self, speed_mps: float) -> None:
        """The horizontal speed the autopilot flies missions, go-tos without a speed and returns at."""

    async def arm(self) -> None: ...

    async def disarm(self) -> None: ...

    async def takeoff(self, alt_rel_m: float) -> None:
        """Climb to ``alt_rel_m`` above home and hold there."""

    async def goto(self, target: GeoTarget, speed_mps: float | None = None) -> None:
        """Fly to ``target`` and hold there."""

    async def orbit(self, center: GeoTarget, radius_m: float, speed_mps: float) -> None: ...

    async def hold(self) -> None: ...

    async def upload_mission(self, items: Sequence[MissionItem]) -> None: ...

    async def start_mission(self) -> None: ...

    async def pause_mission(self) -> None: ...

    async def resume_mission(self) -> None: ...

    async def return_to_launch(self) -> None: ...

    async def land(self) -> None: ...

    async def emergency_stop(self, *, confirm: bool) -> None:
        """Stop the motors at once, wherever the drone is. Refused unless ``confirm`` is True."""

    def position(self) -> AsyncIterator[Position]: ...

    def battery(self) -> AsyncIterator[Battery]: ...

    # The four status streams below yield the current value first, then each change: an
    # implementation may leave out a value equal to the last one it yielded.
    def flight_mode(self) -> AsyncIterator[FlightMode]: ...

    def armed(self) -> AsyncIterator[bool]: ...

    def landed_state(self) -> AsyncIterator[LandedState]: ...

    def health(self) -> AsyncIterator[Health]: ...

    def mission_progress(self) -> AsyncIterator[MissionProgress]: ...

    def link_state(self) -> AsyncIterator[LinkState]: ...


# dock --------------------------------------------------------------------------------------------
class CoverState(enum.Enum):
    UNKNOWN = "unknown"
    CLOSED = "closed"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    JAMMED = "jammed"


class ChargerState(enum.Enum):
    IDLE = "idle"
    CHARGING = "charging"
    FULL = "full"
    FAULT = "fault"


class DockFault(enum.Enum):
    COVER_JAMMED = "cover_jammed"
    CHARGER = "charger"
    WEATHER_STATION = "weather_station"
    POWER = "power"
    INTRUSION_ALARM = "intrusion_alarm"


class Precipitation(enum.Enum):
    NONE = "none"
    RAIN = "rain"
    SNOW = "snow"
    SLEET = "sleet"
    HAIL = "hail"


@dataclass(frozen=True)
class DockStatus:
    cover: CoverState
    cover_position_pct: float  # 0 closed, 100 open
    drone_in_dock: bool
    charger: ChargerState
    charge_current_a: float
    faults: frozenset[DockFault]
    internal_temperature_c: float


@dataclass(frozen=True)
class DockWeather:
    wind_speed_mps: float
    wind_gust_mps: float
    wind_from_deg: float  # direction the wind comes from, 0 north, clockwise
    air_temperature_c: float
    road_temperature_c: float
    humidity_pct: float
    precipitation_mmph: float
    precipitation: Precipitation


class Dock(Protocol):
    """The nest's dock: cover (roof), charger, weather station."""

    async def open_cover(self) -> None:
        """Returns once the cover is fully open."""

    async def close_cover(self) -> None:
        """Returns once the cover is fully closed. Refused while a drone is in its way."""

    async def set_charging(self, enabled: bool) -> None: ...

    async def reset_faults(self) -> None:
        """Clear latched faults whose cause is gone; rejected (with the rest named) otherwise."""

    def status(self) -> AsyncIterator[DockStatus]: ...

    def weather(self) -> AsyncIterator[DockWeather]: ...

    def link_state(self) -> AsyncIterator[LinkState]: ...


# payload -----------------------------------------------------------------------------------------
class SpeakerState(enum.Enum):
    IDLE = "idle"
    PLAYING = "playing"
    RECEIVING_CLIP = "receiving_clip"
    FAULT = "fault"


class LightPattern(enum.Enum):
    OFF = "off"
    STEADY = "steady"
    STROBE = "strobe"
    POLICE = "police"  # alternating red and blue


@dataclass(frozen=True)
class SpeakerStatus:
    state: SpeakerState
    volume_pct: int
    clip_id: int  # 0: text-to-speech or nothing
    repeats_left: int


@dataclass(frozen=True)
class LightStatus:
    pattern: LightPattern
    brightness_pct: int
    lamp_failed: bool


@dataclass(frozen=True)
class AudioClip:
    """Mono 16-bit little-endian PCM."""

    clip_id: int  # 1..65535
    pcm_s16le: bytes
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm_s16le) / 2 / self.sample_rate_hz


class Payload(Protocol):
    """Loudspeaker and warning light carried by the drone."""

    async def say(
        self, text: str, *, lang: str = "zh", volume_pct: int | None = None, repeat: int = 0
    ) -> None:
        """Speak ``text`` with the payload's own text-to-speech."""

    async def play_clip(self, clip_id: int, *, repeat: int = 0, volume_pct: int | None = None) -> None: ...

    async def upload_clip(self, clip: AudioClip) -> None: ...

    async def stop_speaker(self) -> None: ...

    async def set_volume(self, volume_pct: int) -> None: ...

    async def set_light(self, pattern: LightPattern, brightness_pct: int = 100) -> None: ...

    def speaker_status(self) -> AsyncIterator[SpeakerStatus]: ...

    def light_status(self) -> AsyncIterator[LightStatus]: ...

    def link_state(self) -> AsyncIterator[LinkState]: ...


# camera ------------------------------------------------------------------------------------------
class VideoTransport(enum.Enum):
    RTP_UDP = "rtp_udp"  # the camera pushes RTP to the ground station's port
    RTSP = "rtsp"
    TCP_MPEG = "tcp_mpeg"
    MPEG_TS_UDP = "mpeg_ts_udp"
    WHEP = "whep"
    UNKNOWN = "unknown"


class VideoEncoding(enum.Enum):
    H264 = "h264"
    H265 = "h265"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VideoStreamInfo:
    """A camera's video stream as it advertises it (MAVLink VIDEO_STREAM_INFORMATION)."""

    stream_id: int
    name: str
    transport: VideoTransport
    encoding: VideoEncoding
    uri: str  # RTP/UDP: "udp://0.0.0.0:<port>", the port the ground station listens on
    width_px: int
    height_px: int
    framerate_hz: float
    bitrate_bps: int
    hfov_deg: int


@dataclass(frozen=True)
class AccessUnit:
    """One coded picture as the camera sent it: H.264 NAL units in Annex-B (start codes)."""

    data: bytes
    rtp_timestamp: int  # 90 kHz
    keyframe: bool  # an IDR picture, with its SPS and PPS in front
    capture_time_us: int | None  # wall clock when the picture was taken, when the camera says
    received_time_us: int  # wall clock when its last packet arrived


class Camera(Protocol):
    """The drone's camera: its live stream, passed on as coded (never re-encoded)."""

    async def stream_info(self) -> VideoStreamInfo:
        """Ask the camera what it streams (and where)."""

    async def start_streaming(self) -> None:
        """Make the camera stream to us; returns once it accepted. Idempotent."""

    async def stop_streaming(self) -> None:
        """Tell the camera to stop; the access-unit iterators end."""

    def access_units(self) -> AsyncIterator[AccessUnit]:
        """Each complete access unit from the next keyframe on, until streaming stops."""

    def link_state(self) -> AsyncIterator[LinkState]: ...
