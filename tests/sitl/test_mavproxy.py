"""A ground station nobody here wrote, MAVProxy, against a simulated nest (issue 18): it sees the
PX4 autopilot, downloads its parameters, opens the dock's cover (the dock component), arms, takes
off to a target below PX4's minimum (PX4 climbs to MIS_TAKEOFF_ALT and says so), holds, and
returns home with RTL until it lands on its pad and disarms. Checked both in what MAVProxy prints
and in the simulator's state.

MAVProxy runs as its own process on its console (stdin/stdout), as a pilot would run it. It is
installed without its GUI dependencies (the README's test command: its wheel asks for
opencv-python and vtk for map and console modules, which would replace opencv-python-headless).

Modes are set with MAV_CMD_DO_SET_MODE through ``long``, as QGroundControl sets PX4's modes:
MAVProxy's ``mode`` command picks PX4 or ArduPilot encoding from the latest HEARTBEAT of the
system, and the nest's dock, payload and camera are components of the drone's system with their
own heartbeats (MAV_AUTOPILOT_INVALID), so ``mode`` would encode for ArduPilot half the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.mavlink import dronectl_v20 as mav
from sitl.dock import CoverState
from sitl.nest import SimNest
from sitl.world import SimWorld, make_sites
from tests.adapters.fake_peer import wait_until
from tests.conftest import allocate_port_base

MAVPROXY = Path(sys.executable).parent / "mavproxy.py"
SPEED = 4.0
DOCK_COMPID = 25
PX4_AUTO, PX4_AUTO_LOITER = 4, 3
NAV_MC_ALT_RAD_M = 0.8


class Console:
    """MAVProxy's console: lines it printed, and a way to type."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())
            self._new.set()

    async def type(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n".encode())
        await self.proc.stdin.drain()

    async def expect(self, pattern: str, timeout_s: float, since: int = 0) -> re.Match[str]:
        """The first line from ``since`` on matching ``pattern``; fails after ``timeout_s``."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for line in self.lines[since:]:
                        if found := regex.search(line):
                            return found
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            tail = "\n".join(self.lines[-30:])
            raise AssertionError(f"MAVProxy never printed /{pattern}/; its last lines:\n{tail}") from None

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
        self._reader.cancel()


@pytest.fixture
async def nest_and_mavproxy(tmp_path: Path) -> AsyncIterator[tuple[SimNest, Console]]:
    if not MAVPROXY.exists():
        pytest.fail(f"MAVProxy is not installed in {MAVPROXY.parent} (see the README's test command)")
    sites = make_sites(count=1, sim_port_base=allocate_port_base(), client_port_base=allocate_port_base())
    remote = sites[0].remote
    assert remote is not None
    async with SimWorld(sites, speed=SPEED) as world:
        proc = await asyncio.create_subprocess_exec(
            str(MAVPROXY),
            f"--master=udpin:127.0.0.1:{remote[1]}",  # where the simulated nest sends its traffic
            f"--state-basedir={tmp_path}",
            "--streamrate=-1",  # PX4 streams on its own; no REQUEST_DATA_STREAM
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        console = Console(proc)
        try:
            yield world.nests[sites[0].nest_id], console
        finally:
            await console.close()


async def test_mavproxy_reads_parameters_and_flies_takeoff_hold_rtl(
    nest_and_mavproxy: tuple[SimNest, Console],
) -> None:
    nest, mp = nest_and_mavproxy
    sysid = nest.site.system_id
    await mp.expect(rf"Detected vehicle {sysid}:1 on link", 20)

    # the parameters, as a ground station downloads them at connect (FTP first: not offered)
    await mp.type("param fetch")
    received = await mp.expect(r"Received (\d+) parameters", 60)
    assert int(received.group(1)) == len(nest.autopilot.params._names)
    mark = len(mp.lines)
    await mp.type("param show MIS_TAKEOFF_ALT")
    minimum = float((await mp.expect(r"MIS_TAKEOFF_ALT\s+([\d.]+)", 10, mark)).group(1))
    assert minimum == nest.autopilot.params["MIS_TAKEOFF_ALT"] == 2.5

    # the dock's cover, through its own component
    await mp.type(f"set target_component {DOCK_COMPID}")
    await mp.type(f"long {mav.MAV_CMD_DRONECTL_DOCK_COVER} 1")
    await wait_until(lambda: nest.dock.cover_state is CoverState.OPEN, 30, "the cover open")
    await mp.type("set target_component 1")

    # take-off to 1 m AMSL, far below the pad: PX4 takes its minimum and says so
    mark = len(mp.lines)
    await mp.type("arm throttle")
    await mp.expect(r"COMPONENT_ARM_DISARM: ACCEPTED", 10, mark)
    await mp.type("takeoff 1")
    await mp.expect(r"NAV_TAKEOFF: ACCEPTED", 10, mark)
    await mp.expect(rf"Using minimum takeoff altitude: {minimum:.2f} m", 10, mark)
    await mp.expect(r"Takeoff detected", 20, mark)
    await mp.expect(r"Mode LOITER", 30, mark)  # PX4 holds once the take-off altitude is reached
    height_m = -nest.autopilot.position_ned_m()[2]
    assert nest.autopilot.airborne()
    # reached within PX4's altitude acceptance (NAV_MC_ALT_RAD, 0.8 m): not 1 m AMSL, 214 m below
    assert minimum - NAV_MC_ALT_RAD_M <= height_m <= minimum + 0.5, height_m

    # hold, as a ground station commands it (DO_SET_MODE, AUTO.LOITER)
    mark = len(mp.lines)
    await mp.type(f"long DO_SET_MODE 1 {PX4_AUTO} {PX4_AUTO_LOITER}")
    await mp.expect(r"DO_SET_MODE: ACCEPTED", 10, mark)
    assert nest.autopilot.mode.name == "LOITER" and nest.autopilot.airborne()

    # and home: RTL lands it on its pad, and it disarms
    mark = len(mp.lines)
    await mp.type("long NAV_RETURN_TO_LAUNCH")
    await mp.expect(r"NAV_RETURN_TO_LAUNCH: ACCEPTED", 10, mark)
    await mp.expect(r"Returning to launch", 10, mark)
    await wait_until(
        lambda: nest.autopilot.on_pad() and not nest.autopilot.armed, 90, "landed on the pad, disarmed"
    )
    await mp.expect(r"RTL> .*Landing detected", 20, mark)  # its prompt shows the mode: RTL
    await mp.expect(r"Disarmed by landing", 20, mark)
