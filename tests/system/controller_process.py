"""The whole service in a child process, driven over stdin and stdout (JSON lines), so a test
can kill -9 it and start it again against the same simulator and audit store.

    python -m tests.system.controller_process --config CITY.yaml --audit AUDIT.sqlite3 --speed 10

With ``--audit-spool FILE`` records made while PostgreSQL is away wait there (dronectl/audit/spool.py).
With ``--audit postgresql://... --instance-id NAME`` it is one of several instances: it controls
only the nests its leases give it (``--lease-ttl``; dronectl/nest/leases.py).

Requests on stdin: ``{"op": "launch", "nest": 3, "lat": .., "lon": .., "alt_m": 40}``,
``{"op": "return", "nest": 3}``, ``{"op": "light", "nest": 3, "pattern": "steady"}``,
``{"op": "state", "nest": 3}``, ``{"op": "wait_sensors", "nest": 3}``
(answers once the dock's weather and the drone's battery are known),
``{"op": "command", "id": "c1", "method": "launch", "nest": 3, "lat": .., "lon": .., "alt_m": 40}``
(through the operations port, recorded first, as MQTT and HTTP commands are).
With ``--incidents`` the API side runs too (FleetOperations, its IncidentDispatcher started as
``dronectl/app/up.py`` starts it: the incidents a previous life left open are picked up), requests
``{"op": "incident", "id": "inc-1", "lat": .., "lon": .., "priority": 1, "kind": "accident"}``
report an incident, and each ``incident_progress`` event is printed as
``{"incident": "inc-1", "state": "on_scene", "message": "...", "nest": 3}`` (after it was stored).
On stdout: ``{"nest": 3, "phase": "on_station", "flight_id": "..."}`` at every phase change
and after every request, ``{"nest": 3, "event": "en_route", "message": "..."}`` for every other
event the controller announces (both only after the controller committed them to the audit
store), and ``{"reply": "launch", "ok": true}`` for each request. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.protocols import LightPattern
from dronectl.app.compose import compose_operations, incident_dispatcher
from dronectl.app.ha import lease_keeping
from dronectl.domain.clock import ScaledClock
from dronectl.domain.config import load_config
from dronectl.domain.dispatch import DispatchSettings
from dronectl.domain.errors import DronectlError
from dronectl.domain.geo import GeoPoint
from dronectl.logging import configure_logging
from dronectl.nest.controller import NestController, NestEvent
from dronectl.nest.fleet import Fleet
from dronectl.nest.leases import LeaseSettings
from dronectl.nest.service import open_service
from dronectl.nest.supervisor import Backoff
from dronectl.operations.fleet_ops import FleetOperations
from dronectl.operations.models import (
    Actor,
    Event,
    EventKind,
    GroundPoint,
    Incident,
    LaunchArgs,
    Method,
    NoArgs,
    ProgressState,
    Role,
    Target,
)
from dronectl.operations.port import Command

commands: list[asyncio.Task[None]] = []  # commands through the operations port, running
ports: dict[int, FleetOperations] = {}  # without --incidents: the port the commands go through


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def report(controller: NestController) -> None:
    flight = controller.flight
    emit(
        {
            "nest": controller.nest_id,
            "phase": controller.state.phase.value,
            "flight_id": flight.flight_id if flight is not None else None,
            "weather_known": controller.dock.weather is not None,
            "battery_pct": controller.drone.battery_pct,
        }
    )


async def command(api: FleetOperations, request: dict[str, Any]) -> None:
    """A command through the operations port, as MQTT or HTTP hand it in (recorded first, so refused
    while the audit store is unreachable): ``launch`` (with lat, lon, alt_m) or ``return_home``.
    The reply line once its first update is known (accepted, or refused with the reason), then a
    ``{"command": id, "state": ...}`` line for every update."""
    now = datetime.now(UTC).timestamp()
    method = Method(request["method"])
    args: Any = NoArgs()
    if method is Method.LAUNCH:
        args = LaunchArgs(target=Target(lat=request["lat"], lon=request["lon"], alt_m=request["alt_m"]))
    cmd = Command(
        request["id"], method, int(request["nest"]), args, "officer-7", Role.PILOT, now, now + 30, now
    )
    first = True
    async for update in api.execute(cmd):
        line = {"state": update.state.value, "error": update.error, "message": update.message}
        if first:
            first = False
            ok = update.state is not ProgressState.FAILED
            emit({"reply": "command", "id": cmd.id, "ok": ok, **line})
        emit({"command": cmd.id, **line})


async def handle(fleet: Fleet, request: dict[str, Any], api: FleetOperations | None = None) -> None:
    op = request.get("op")
    if op == "command":
        if api is None:  # the port alone, none of its automations; one for the process
            api = ports.get(0) or ports.setdefault(0, compose_operations(fleet))
        commands.append(asyncio.create_task(command(api, request), name=f"command {request['id']}"))
        return
    if op == "incident":
        try:
            if api is None:
                raise ValueError("started without --incidents")
            api.report_incident(
                Incident(
                    id=request["id"],
                    kind=request.get("kind", "accident"),
                    position=GroundPoint(lat=float(request["lat"]), lon=float(request["lon"])),
                    priority=int(request.get("priority", 1)),
                    reported_at=datetime.now(UTC),
                    actor=Actor(id="cc-test", role=Role.COMMANDER),
                )
            )
            emit({"reply": op, "ok": True, "id": request["id"]})  # the id: each reply a line of its own
        except (KeyError, ValueError) as exc:
            emit({"reply": op, "ok": False, "id": request.get("id"), "error": str(exc)})
        return
    controller = fleet.nest(int(request["nest"]))
    try:
        if op == "launch":
            target = GeoPoint(float(request["lat"]), float(request["lon"]))
            await controller.launch(target, float(request["alt_m"]), command_id=request.get("command_id"))
        elif op == "light":  # harmless: the warning light, a command the nest acts on and records
            await controller.set_light(LightPattern(request.get("pattern", "steady")))
        elif op == "return":
            await controller.return_home("operator")
        elif op == "wait_sensors":  # until the dock's weather and the drone's battery are known
            await controller.wait_for(
                lambda: controller.dock.weather is not None and controller.drone.battery_pct is not None,
                float(request.get("timeout_s", 10.0)),
                "weather and battery",
            )
        elif op != "state":
            raise ValueError(f"unknown op {op!r}")
        emit({"reply": op, "ok": True})
    except (DronectlError, ValueError) as exc:
        emit({"reply": op, "ok": False, "error": str(exc)})
    report(controller)


async def serve(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    speed = float(args.speed)
    leases = LeaseSettings(
        ttl_s=args.lease_ttl, renew_interval_s=args.lease_ttl / 5, safety_margin_s=args.lease_ttl / 4
    )
    async with (
        lease_keeping(
            args.audit if args.instance_id else "", args.instance_id, [n.id for n in config.nests], leases, {}
        ) as keeper,
        open_service(
            config,
            args.audit if args.audit.startswith("postgresql://") else Path(args.audit),
            clock=ScaledClock(speed),
            backoff=Backoff(first_s=0.2, max_s=2.0),
            heartbeat_interval_s=1.0 / speed,
            gate=keeper,
            audit_spool=Path(args.audit_spool) if args.audit_spool else None,
        ) as fleet,
    ):
        if keeper is not None:  # as dronectl up: every write about a nest carries the fencing token
            fleet.audit.fence_for = keeper.fence
        for controller in fleet.controllers.values():

            def on_event(event: NestEvent, controller: NestController = controller) -> None:
                if event.kind == "phase":
                    report(controller)
                else:
                    emit({"nest": event.nest_id, "event": event.kind, "message": event.message})

            controller.listeners.append(on_event)
            report(controller)
        api: FleetOperations | None = None
        progress: asyncio.Task[None] | None = None
        if args.incidents:
            api = compose_operations(fleet, dispatch=DispatchSettings(replan_period_s=0.5))
            progress = asyncio.create_task(incident_progress(api), name="incident_progress")
            incident_dispatcher(api).start()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while line := await reader.readline():
                await handle(fleet, json.loads(line), api)
        finally:
            if progress is not None:
                progress.cancel()
            if api is not None:
                await api.aclose()


async def incident_progress(api: FleetOperations) -> None:
    async for item in api.updates():
        if isinstance(item, Event) and item.kind is EventKind.INCIDENT_PROGRESS:
            emit(
                {
                    "incident": item.data.get("incident_id"),
                    "state": item.data.get("state"),
                    "message": item.message,
                    "nest": item.nest_id,
                }
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--audit", required=True)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument(
        "--audit-spool", default="", help="with a postgresql:// store: where records wait while it is away"
    )
    parser.add_argument("--incidents", action="store_true", help="run the API side and its dispatcher")
    parser.add_argument(
        "--instance-id", default="", help="with a postgresql:// store: one of several, by leases"
    )
    parser.add_argument(
        "--lease-ttl", type=float, default=2.0, help="seconds before a lost instance's nests move"
    )
    configure_logging()
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
