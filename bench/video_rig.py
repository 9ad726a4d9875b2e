"""What the video benches share: the simulator, the service with its video routes, and viewers.

``async with video_rig(nests, speed=..., sim_args=[...]) as rig``: the simulator in a child
process (``python -m sitl``; its cameras' options in ``sim_args``, e.g. ``--camera-replay``), the
service in this process (``open_service`` + ``open_video`` + the WHEP routes on an aiohttp
server at ``rig.base_url``, every request allowed as an observer), every nest launched and
airborne. ``rig.service`` is this process, ``rig.sim`` the simulator (psutil), for CPU.

Viewers: ``python bench/video_rig.py --viewer URL --viewer-nests 1,2 --duration S`` (run by
:func:`start_viewers` as child processes of up to 8 streams each, counted apart) opens one aiortc WHEP
session per nest, prints ``ready`` once every stream has delivered a frame, waits ``WARM_UP_S``,
counts frames for ``--duration`` seconds and prints one JSON line: the frame rate of each stream,
the RTP packets lost on the way from the service (% over the sessions) and the sessions refused.
It only reassembles frames (SRTP, RTP, jitter buffer); it decodes none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from aiohttp import web  # noqa: E402

from dronectl.domain.clock import Clock, ScaledClock, SystemClock  # noqa: E402
from dronectl.domain.config import CityConfig, MavlinkConfig, load_config  # noqa: E402
from dronectl.domain.geo import destination  # noqa: E402
from dronectl.domain.nest_state import AIRBORNE  # noqa: E402
from dronectl.operations.models import Actor, Role  # noqa: E402
from sitl.ports import free_tcp_port, free_udp_range  # noqa: E402

WARM_UP_S = 4.0
STREAMS_PER_VIEWER = 8  # a Python process receiving more falls behind on a busy 2-core machine
HOLD_S = 3.0  # the viewers keep watching after their window, so the bench's ends while they watch


class BenchError(Exception):
    """The set-up failed."""


@dataclass
class Rig:
    base_url: str
    fleet: Any  # dronectl.nest.fleet.Fleet
    hub: Any  # dronectl.video.VideoHub
    nest_ids: list[int]
    service: psutil.Process
    sim: psutil.Process
    workdir: Path
    env: dict[str, str]


def cpu_s(proc: psutil.Process) -> float:
    """User + system CPU seconds of ``proc`` itself (never its children's)."""
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except psutil.NoSuchProcess:
        return 0.0


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def video_rig(
    nest_count: int,
    *,
    speed: float = 1.0,
    sim_args: Sequence[str] = (),
    routes: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[Rig]:
    from dronectl.nest.service import open_service
    from dronectl.transports.whep import add_video_routes
    from dronectl.video import open_video

    workdir = Path(tempfile.mkdtemp(prefix="video-bench-"))
    sim_base = free_udp_range(120)
    base = load_config()
    config: CityConfig = base.model_copy(
        update={
            "nests": base.nests[:nest_count],
            "mavlink": MavlinkConfig(
                host="127.0.0.1", sim_port_base=sim_base, client_port_base=sim_base + 60
            ),
        }
    )
    config_path = workdir / "city.yaml"
    config_path.write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")  # JSON is YAML
    env = dict(os.environ, DRONECTL_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    sim_cmd = [sys.executable, "-m", "sitl", "--speed", f"{speed:g}", "--config", str(config_path),
               "--control-port", str(free_tcp_port()), *sim_args]  # fmt: skip
    with (workdir / "sitl.err").open("wb") as err:
        sim = await asyncio.create_subprocess_exec(
            *sim_cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=err
        )
    try:
        assert sim.stdout is not None
        async with asyncio.timeout(60):
            for _ in range(nest_count):
                if not await sim.stdout.readline():
                    raise BenchError(f"the simulator exited; see {workdir / 'sitl.err'}")
        clock: Clock = SystemClock() if speed == 1.0 else ScaledClock(speed)
        service = open_service(config, workdir / "audit.sqlite3", clock=clock, heartbeat_interval_s=1 / speed)
        async with service as fleet, open_video(fleet, None) as hub:
            app = web.Application()

            async def allow(request: web.Request, action: str) -> Actor:
                return Actor(id="bench", role=Role.OBSERVER)

            add_video_routes(app, hub, allow)
            if routes is not None:
                routes(app)
            runner = web.AppRunner(app)
            await runner.setup()
            port = free_tcp_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                controllers = list(fleet.controllers.values())
                for c in controllers:
                    await c.wait_for(lambda c=c: _ready(c), 90, "ready")  # type: ignore[misc]
                for c in controllers:
                    await c.launch(destination(c.home, 0.0, 300.0), 40.0)
                for c in controllers:
                    await c.wait_for(lambda c=c: c.state.phase in AIRBORNE, 120, "airborne")  # type: ignore[misc]
                yield Rig(f"http://127.0.0.1:{port}", fleet, hub, [c.nest_id for c in controllers],
                          psutil.Process(), psutil.Process(sim.pid), workdir, env)  # fmt: skip
            finally:
                await runner.cleanup()
                await fleet.return_all("bench over")
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await sim.wait()
            except TimeoutError:
                sim.kill()
                await sim.wait()


def _ready(c: Any) -> bool:
    return bool(
        c.dock.weather is not None
        and c.drone.battery_pct is not None
        and c.state.phase.value in ("ready", "charging")
    )


async def wait_ingests_stopped(rig: Rig, nests: Sequence[int], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while any(rig.hub.ingest_running(n) for n in nests):  # noqa: ASYNC110 - no event for it
            await asyncio.sleep(0.1)


# the viewers (a child process) ------------------------------------------------------------------
@dataclass
class ViewerRun:
    processes: list[asyncio.subprocess.Process]
    psutils: list[psutil.Process]

    def cpu_s(self) -> float:
        return sum(cpu_s(p) for p in self.psutils)

    async def result(self, timeout_s: float) -> dict[str, Any]:
        """Every process's result together: fps of each stream, loss % (weighted), refusals."""
        merged: dict[str, Any] = {"fps": [], "refused": [], "loss_pct": 0.0}
        async with asyncio.timeout(timeout_s):
            for process in self.processes:
                assert process.stdout is not None
                line = await process.stdout.readline()
                await process.wait()
                if not line:
                    raise BenchError("the viewers exited without a result")
                part = json.loads(line)
                merged["fps"] += part["fps"]
                merged["refused"] += part["refused"]
                merged["loss_pct"] += part["loss_pct"] * len(part["fps"])
        merged["loss_pct"] = round(merged["loss_pct"] / max(len(merged["fps"]), 1), 2)
        return merged


async def start_viewers(rig: Rig, nests: Sequence[int], duration_s: float) -> ViewerRun:
    """Start the viewers, at most ``STREAMS_PER_VIEWER`` streams per process, and return once
    every stream delivers (they then warm up for WARM_UP_S)."""
    processes = []
    for first in range(0, len(nests), STREAMS_PER_VIEWER):
        group = ",".join(map(str, nests[first : first + STREAMS_PER_VIEWER]))
        args = ["--viewer", rig.base_url, "--viewer-nests", group, "--duration", str(duration_s)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *args, cwd=ROOT, env=rig.env, stdout=asyncio.subprocess.PIPE
        )
        processes.append(process)
    async with asyncio.timeout(90):
        for process in processes:
            assert process.stdout is not None
            line = await process.stdout.readline()
            if line.strip() != b"ready":
                raise BenchError(f"viewers failed to start: {line!r}")
    return ViewerRun(processes, [psutil.Process(p.pid) for p in processes])


async def viewers(base_url: str, nests: list[int], duration_s: float) -> dict[str, Any]:
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.codecs import h264

    counts: list[int] = []
    original_init = h264.H264Decoder.__init__

    def init(self: Any) -> None:
        original_init(self)
        self.bench_index = len(counts)
        counts.append(0)

    def decode(self: Any, encoded: Any) -> list[Any]:  # count the reassembled frame, decode nothing
        counts[self.bench_index] += 1
        return []

    h264.H264Decoder.__init__ = init
    h264.H264Decoder.decode = decode

    pcs: list[RTCPeerConnection] = []
    locations: list[str] = []
    refused: list[str] = []
    async with aiohttp.ClientSession() as http:
        for nest in nests:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTransceiver("video", direction="recvonly")
            pc.on("track", lambda track: None)  # frames reach the decoder through the receiver anyway
            await pc.setLocalDescription(await pc.createOffer())
            async with http.post(
                f"{base_url}/whep/nests/{nest}",
                data=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp"},
            ) as resp:
                answer = await resp.text()
                if resp.status != 201:
                    refused.append(f"nest {nest}: {resp.status} {answer}")
                    await pc.close()
                    continue
                locations.append(resp.headers["Location"])
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            pcs.append(pc)
        if not pcs:
            raise BenchError("no stream opened: " + "; ".join(refused))
        deadline = time.monotonic() + 60
        while len(counts) < len(pcs) or min(counts) == 0:
            if time.monotonic() > deadline:
                raise BenchError(f"frames came on {sum(1 for c in counts if c)} of {len(pcs)} streams")
            await asyncio.sleep(0.1)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.sleep(WARM_UP_S)
        start = list(counts)
        t0 = time.monotonic()
        await asyncio.sleep(duration_s)
        elapsed = time.monotonic() - t0
        fps = [(c - s) / elapsed for c, s in zip(counts, start, strict=True)]
        received = lost = 0
        for pc in pcs:
            for receiver in pc.getReceivers():
                for stat in (await receiver.getStats()).values():
                    if stat.type == "inbound-rtp":
                        received += stat.packetsReceived
                        lost += max(stat.packetsLost, 0)
        await asyncio.sleep(HOLD_S)  # the bench's own window (in step with this one) ends first
        for location in locations:
            async with http.delete(f"{base_url}{location}"):
                pass
    for pc in pcs:
        await pc.close()
    loss_pct = round(100 * lost / max(received + lost, 1), 2)  # over the whole session
    return {"fps": fps, "refused": refused, "loss_pct": loss_pct}


def main() -> int:
    parser = argparse.ArgumentParser(description="viewers for the video benches (run by them)")
    parser.add_argument("--viewer", required=True, help="the service's base URL")
    parser.add_argument("--viewer-nests", required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    nests = [int(n) for n in args.viewer_nests.split(",")]
    result = asyncio.run(viewers(args.viewer, nests, args.duration))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
