"""What a drone does when it found black ice, step by step, as the automation.

1. hold over the ice: go to it first when it lies more than ``HOLD_RADIUS_M`` away, then hold;
2. the warning light in the police pattern (red and blue);
3. the picture stored (``SnapshotStore``) and published (MQTT, through ``snapshot_sinks``);
4. a ``detection`` event (where, how much, the picture's id and URL) and a
   ``ground_units_requested`` event (where, why, what was seen), each also an audit record;
5. the warning on the loudspeaker, Mandarin then English, ``WARNING_ROUNDS`` times, each clip
   given time to play out before the next (a new clip would cut the one playing).

Steps 1, 2 and 5 are commands through ``owner.execute``: checked, audited and refused like any
other (a pilot holding manual control refuses them all). A refused or failed step is logged,
kept in the result and reported in the events; the response goes on with the steps that remain
(the ground units are requested whatever the drone could do). Nothing is retried or overridden.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from pydantic import BaseModel

from dronectl.audit import AuditError, CommandOutcome, CommandRecord, FlightEvent
from dronectl.automations.lookout.findings import GroundFinding
from dronectl.automations.lookout.snapshots import SnapshotSink, SnapshotStore
from dronectl.domain.clock import Clock
from dronectl.domain.config import BlackIceConfig
from dronectl.domain.control_authority import AUTOMATION
from dronectl.domain.errors import CommandTimeout
from dronectl.domain.geo import distance_m
from dronectl.nest.controller import NestController
from dronectl.nest.fleet import Fleet
from dronectl.nest.tts import TtsError, render_speech_async
from dronectl.operations.models import (
    TERMINAL_STATES,
    ErrorCode,
    Event,
    EventKind,
    GotoArgs,
    LightSetArgs,
    Method,
    NoArgs,
    ProgressState,
    Role,
    SpeakerSayArgs,
    Target,
)
from dronectl.operations.port import Command, Operations
from dronectl.operations.views import utc


class Lookout(Protocol):
    """What a response needs of the lookout that found the ice (``lookout.Lookout``)."""

    owner: Operations
    clock: Clock
    fleet: Fleet
    store: SnapshotStore
    config: BlackIceConfig
    snapshot_sinks: list[SnapshotSink]


log = structlog.get_logger("dronectl.automations.lookout.response")

HOLD_RADIUS_M = 15.0
MIN_ALT_M = 5.0
COMMAND_TTL_S = 60.0
STEP_TIMEOUT_S = 180.0  # real seconds a step is followed (a go to of a few tens of metres)
WARNING_ROUNDS = 2
WARNING_GAP_S = 0.5  # between two clips, simulated seconds
FINDING_KIND = "black_ice"
_seq = itertools.count(1)
# a command that was never sent (as opposed to one sent that failed)
_REFUSALS = frozenset(
    {ErrorCode.REFUSED, ErrorCode.BUSY, ErrorCode.FORBIDDEN, ErrorCode.LINK_LOST, ErrorCode.EXPIRED}
)


@dataclass(frozen=True)
class ResponseStep:
    """One command of the response and how it ended."""

    action: str  # goto, hold, light, warning_zh, warning_en
    command_id: str
    state: str  # succeeded, failed, cancelled, refused, no_answer
    message: str
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == ProgressState.SUCCEEDED.value

    def data(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "command_id": self.command_id,
            "state": self.state,
            "message": self.message,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class IceResponse:
    nest_id: int
    detection_id: str  # the audit record of the detection (and of the ground-units request + ".units")
    snapshot_id: str
    snapshot_url: str
    steps: tuple[ResponseStep, ...]
    snapshot_published: bool  # handed to at least one transport

    @property
    def refused(self) -> tuple[ResponseStep, ...]:
        return tuple(s for s in self.steps if not s.ok)

    def describe(self) -> str:
        done = ", ".join(s.action for s in self.steps if s.ok) or "nothing"
        text = f"black ice: snapshot {self.snapshot_id}; ground units requested; done: {done}"
        if self.refused:
            text += "; not done: " + "; ".join(f"{s.action} ({s.message})" for s in self.refused)
        return text


class IceResponder:
    """One response to one finding (``Lookout.respond_to_ice``)."""

    def __init__(
        self,
        lookout: Lookout,
        nest_id: int,
        finding: GroundFinding,
        actor_id: str,
        incident_id: str | None,
        mission_id: str | None,
    ) -> None:
        self.lookout = lookout
        self.owner = lookout.owner
        self.clock = lookout.clock
        self.nest_id = nest_id
        self.controller: NestController = lookout.fleet.nest(nest_id)
        self.finding = finding
        self.actor_id = actor_id
        self.incident_id = incident_id
        self.mission_id = mission_id
        self.steps: list[ResponseStep] = []
        self.stored = False
        base = incident_id or mission_id or "lookout"
        self.detection_id = f"{base}.ice.{next(_seq)}.n{nest_id}"

    async def run(self) -> IceResponse:
        bound = log.bind(nest=self.nest_id, detection=self.detection_id)
        await self._hold_over_ice()
        await self._step("light", Method.LIGHT_SET, LightSetArgs(mode="police"))
        store = self.lookout.store
        snapshot_id = store.new_id("ice", self.nest_id, self.finding.capture_unix_s)
        try:
            await asyncio.to_thread(store.save, snapshot_id, self.finding.jpeg)
            self.stored = True
        except (OSError, ValueError) as exc:  # the ground units are requested all the same
            log.error("lookout.snapshot_not_stored", nest=self.nest_id, snapshot=snapshot_id, error=str(exc))
        published = await self._publish_snapshot(snapshot_id)
        url = store.url(snapshot_id)
        await self._detection(snapshot_id, url)
        await self._ground_units(snapshot_id, url)
        config = self.lookout.config
        for _ in range(WARNING_ROUNDS):
            await self._warn("warning_zh", config.warning_zh, "zh")
            await self._warn("warning_en", config.warning_en, "en")
        response = IceResponse(
            self.nest_id, self.detection_id, snapshot_id, url, tuple(self.steps), published
        )
        bound.info("lookout.responded", refused=[s.action for s in response.refused])
        return response

    # --- the drone ---------------------------------------------------------------------------

    async def _hold_over_ice(self) -> None:
        c = self.controller
        drone = c.drone_position()
        if drone is not None and distance_m(drone.position, self.finding.position) > HOLD_RADIUS_M:
            target = Target(
                lat=self.finding.position.lat_deg,
                lon=self.finding.position.lon_deg,
                alt_m=max(MIN_ALT_M, round(drone.alt_above_home_m, 1)),
            )
            await self._step("goto", Method.GOTO, GotoArgs(target=target))
        await self._step("hold", Method.HOLD, NoArgs())

    async def _warn(self, action: str, text: str, lang: str) -> None:
        step = await self._step(action, Method.SPEAKER_SAY, SpeakerSayArgs(text=text, lang=lang))
        if step.ok:  # let it play out: the next clip would cut it off
            await self._wait_sim_s(await _speech_s(text, lang) + WARNING_GAP_S)

    async def _wait_sim_s(self, seconds: float) -> None:
        """``seconds`` on the service's clock (the simulator's, when it runs faster): checked on
        each telemetry change of the nest, at most ``seconds`` + 1 real seconds."""
        end = self.clock.monotonic() + seconds
        with contextlib.suppress(CommandTimeout):
            await self.controller.wait_for(lambda: self.clock.monotonic() >= end, seconds + 1.0, "warning")

    async def _step(self, action: str, method: Method, args: BaseModel) -> ResponseStep:
        command = self._command(method, args)
        last = None
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                async for update in self.owner.execute(command):
                    last = update
        except TimeoutError:
            pass
        if last is None or last.state not in TERMINAL_STATES:
            step = ResponseStep(action, command.id, "no_answer", f"no outcome within {STEP_TIMEOUT_S:g} s")
        else:
            state = last.state.value
            if last.state is ProgressState.FAILED and last.error in _REFUSALS:
                state = "refused"
            step = ResponseStep(action, command.id, state, last.message, tuple(last.reasons))
        if not step.ok:
            log.warning(
                "lookout.step_not_done",
                nest=self.nest_id,
                action=action,
                state=step.state,
                message=step.message,
                reasons=list(step.reasons),
            )
        self.steps.append(step)
        return step

    def _command(self, method: Method, args: BaseModel) -> Command:
        now = self.clock.wall()
        return Command(
            id=f"{self.detection_id}.{next(_seq)}.{method.value}",
            method=method,
            nest_id=self.nest_id,
            args=args,
            actor_id=self.actor_id,
            actor_role=Role(AUTOMATION),
            issued_at_unix_s=now,
            deadline_unix_s=now + COMMAND_TTL_S,
            received_at_unix_s=now,
        )

    # --- the picture and the events ----------------------------------------------------------

    async def _publish_snapshot(self, snapshot_id: str) -> bool:
        published = False
        for sink in list(self.lookout.snapshot_sinks):
            try:
                await sink(self.nest_id, snapshot_id, self.finding.jpeg)
                published = True
            except Exception:  # one transport's failure must not stop the response; logged
                log.exception("lookout.snapshot_sink_failed", nest=self.nest_id, sink=repr(sink))
        return published

    def _ids(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "mission_id": self.mission_id}

    async def _detection(self, snapshot_id: str, url: str) -> None:
        f = self.finding
        data: dict[str, Any] = {
            "kind": FINDING_KIND,
            "lat": round(f.position.lat_deg, 7),
            "lon": round(f.position.lon_deg, 7),
            "coverage_pct": round(f.coverage_pct, 2),
            "snapshot_id": snapshot_id,
            "snapshot_url": url,
            "snapshot_stored": self.stored,
            "captured_at": utc(f.capture_unix_s).isoformat(),
            "frames": f.frames,
            "width_px": f.width_px,
            "height_px": f.height_px,
            "drone": {
                "lat": round(f.drone_position.lat_deg, 7),
                "lon": round(f.drone_position.lon_deg, 7),
                "height_m": round(f.drone_height_m, 1),
                "heading_deg": round(f.heading_deg, 1),
                "heading_measured": f.heading_measured,
            },
            **self._ids(),
            "detection_id": self.detection_id,
            "response": [s.data() for s in self.steps],
        }
        text = (
            f"black ice found by nest {self.nest_id} at {f.position} "
            f"({f.coverage_pct:.1f} % of the picture); snapshot {snapshot_id}"
        )
        await self._record(self.detection_id, "detection", data, text)
        self._publish(EventKind.DETECTION, text, data)

    async def _ground_units(self, snapshot_id: str, url: str) -> None:
        f = self.finding
        seen = (
            f"an icy road surface over {f.coverage_pct:.1f} % of the drone's picture, "
            f"in {f.frames} consecutive frames"
        )
        data: dict[str, Any] = {
            "position": {"lat": round(f.position.lat_deg, 7), "lon": round(f.position.lon_deg, 7)},
            "reason": "black ice on the road: grit or salt it and warn the traffic",
            "seen": seen,
            "finding": FINDING_KIND,
            "snapshot_id": snapshot_id,
            "snapshot_url": url,
            **self._ids(),
            "detection_id": self.detection_id,
            "response": [s.data() for s in self.steps],
        }
        text = f"ground units requested to {f.position}: black ice (nest {self.nest_id})"
        await self._record(f"{self.detection_id}.units", "ground_units.request", data, text)
        self._publish(EventKind.GROUND_UNITS_REQUESTED, text, data)

    def _publish(self, kind: EventKind, text: str, data: dict[str, Any]) -> None:
        flight = self.controller.flight
        self.owner.publish(
            Event(
                kind=kind,
                at=utc(self.clock.wall()),
                nest_id=self.nest_id,
                message=text,
                flight_id=flight.flight_id if flight is not None else None,
                data=data,
            )
        )

    async def _record(self, record_id: str, method: str, data: dict[str, Any], text: str) -> None:
        """An audit record with the automation as actor (and an event with the flight)."""
        audit = self.lookout.fleet.audit
        now = self.clock.wall()
        flight = self.controller.flight
        try:
            await audit.record_command(
                CommandRecord(
                    command_id=record_id,
                    at_unix_s=now,
                    actor_id=self.actor_id,
                    actor_role=AUTOMATION,
                    nest_id=self.nest_id,
                    method=method,
                    args=data,
                    outcome=CommandOutcome.SUCCEEDED,
                    code=method,
                    message=text,
                )
            )
            if flight is not None:
                await audit.record_event(FlightEvent(flight.flight_id, now, method, text, data))
        except AuditError as exc:
            log.error("lookout.audit_failed", record=record_id, error=str(exc))


async def _speech_s(text: str, lang: str) -> float:
    """How long the loudspeaker takes to say ``text``: the rendered audio's length (the nest
    renders the same text the same way), else an estimate from the characters."""
    try:
        pcm, rate = await render_speech_async(text, lang)
    except TtsError:
        wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in ("W", "F"))
        return 0.3 * wide + 0.08 * (len(text) - wide)
    return len(pcm) / 2 / rate
