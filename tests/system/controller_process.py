"""The whole service in a child process, driven over stdin and stdout (JSON lines), so a test
can kill -9 it and start it again against the same simulator and audit store.

    python -m tests.system.controller_process --config CITY.yaml --audit AUDIT.sqlite3 --speed 10

Requests on stdin: ``{"op": "launch", "nest": 3, "lat": .., "lon": .., "alt_m": 40}``,
``{"op": "return", "nest": 3}``, ``{"op": "state", "nest": 3}``, ``{"op": "wait_sensors", "nest": 3}``
(answers once the dock's weather and the drone's battery are known).
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
from pathlib import Path
from typing import Any

from dronectl.clock import ScaledClock
from dronectl.config import load_config
from dronectl.errors import DronectlError
from dronectl.fleet import Fleet
from dronectl.geo import GeoPoint
from dronectl.logging import configure_logging
from dronectl.nest_controller import NestController, NestEvent
from dronectl.service import open_service
from dronectl.supervisor import Backoff


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


async def handle(fleet: Fleet, request: dict[str, Any]) -> None:
    op = request.get("op")
    controller = fleet.nest(int(request["nest"]))
    try:
        if op == "launch":
            target = GeoPoint(float(request["lat"]), float(request["lon"]))
            await controller.launch(target, float(request["alt_m"]), command_id=request.get("command_id"))
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
    async with open_service(
        config,
        Path(args.audit),
        clock=ScaledClock(speed),
        backoff=Backoff(first_s=0.2, max_s=2.0),
        heartbeat_interval_s=1.0 / speed,
    ) as fleet:
        for controller in fleet.controllers.values():

            def on_event(event: NestEvent, controller: NestController = controller) -> None:
                if event.kind == "phase":
                    report(controller)
                else:
                    emit({"nest": event.nest_id, "event": event.kind, "message": event.message})

            controller.listeners.append(on_event)
            report(controller)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            await handle(fleet, json.loads(line))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--audit", required=True)
    parser.add_argument("--speed", type=float, default=10.0)
    configure_logging()
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
