"""Child process for test_mavsdk_flight: MAVSDK's own ``goto_location`` against a nest.

Run as ``python mavsdk_goto_probe.py URL LAT LON ALT``; prints the ActionResult name as JSON.
It lives in its own process because in MAVSDK 4.1, after PX4's result 9 (which MAVSDK does not
know: "Received unknown ack"), ``Mavsdk.destroy()`` never returns; the child exits without it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys

from mavsdk.asyncio import ComponentType, Configuration, Mavsdk
from mavsdk.asyncio.plugins.action import ActionAsync
from mavsdk.plugins.action import ActionError


async def main(url: str, lat: float, lon: float, alt: float) -> str:
    mavsdk = Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION))
    await mavsdk.add_any_connection(url)
    system = await mavsdk.first_autopilot(timeout_s=20.0)
    if system is None:
        return "NO_SYSTEM"
    try:
        await ActionAsync(system).goto_location(lat, lon, alt, math.nan)
    except ActionError as err:
        return str(err.result.name)
    return "SUCCESS"


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
    sys.stdout.write(json.dumps({"result": result}) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip MAVSDK's atexit destroy (see the module docstring)
