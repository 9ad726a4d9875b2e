"""``python -m sitl`` / ``dronectl sim``: one JSON line per nest, stable endpoints, and the control
port for faults, weather and records at run time."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sitl.control import request
from tests.conftest import allocate_port_base


@asynccontextmanager
async def running_sim(
    *args: str, bases: tuple[int, int] | None = None
) -> AsyncIterator[tuple[list[dict[str, Any]], int]]:
    sim_base, client_base = bases or (allocate_port_base(), allocate_port_base())
    control_port = allocate_port_base(span=1)
    errors = tempfile.TemporaryFile()  # noqa: SIM115  # closed in the finally below
    proc = await asyncio.create_subprocess_exec(
        *args,
        "--control-port", str(control_port),
        "--sim-port-base", str(sim_base),
        "--client-port-base", str(client_base),
        stdout=asyncio.subprocess.PIPE,
        stderr=errors,  # a file, not a pipe nobody reads (the simulator's log would fill it)
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[dict[str, Any]] = []
    try:
        count = int(args[args.index("--nests") + 1])
        async with asyncio.timeout(30):
            for _ in range(count):
                line = await proc.stdout.readline()
                if not line:  # it exited: say why
                    errors.seek(0)
                    raise AssertionError(f"the simulator exited: {errors.read()[-2000:]!r}")
                lines.append(json.loads(line))
        yield lines, control_port
    finally:
        proc.terminate()
        await proc.wait()
        errors.close()


async def test_sixteen_nests_print_their_endpoints_and_answer_the_control_port() -> None:
    async with running_sim(sys.executable, "-m", "sitl", "--nests", "16") as (lines, control_port):
        assert [line["id"] for line in lines] == list(range(1, 17))
        assert len({line["system_id"] for line in lines}) == 16
        for line in lines:
            assert 43.7 < line["lat"] < 44.1 and 125.1 < line["lon"] < 125.6
            port = int(line["mavsdk_url"].rsplit(":", 1)[1])
            assert line["mavsdk_url"] == f"udpin://127.0.0.1:{port}"
            assert line["pymavlink_url"] == f"udpin:127.0.0.1:{port}"
        assert lines[2]["name"] == "Nanhu Park"

        reply = await request({"op": "fault", "nest": 3, "kind": "wind_gust", "value": 8, "duration_s": 5},
                              port=control_port)  # fmt: skip
        assert reply == {"ok": True, "nests": [3]}
        reply = await request({"op": "weather", "nest": "all", "wind_speed_mps": 14}, port=control_port)
        assert reply["ok"] and len(reply["nests"]) == 16
        state = await request({"op": "state", "nest": 3}, port=control_port)
        assert state["state"][0]["weather"]["wind_speed_mps"] == 14.0
        assert state["state"][0]["on_pad"] is True
        records = await request({"op": "records", "nest": 3, "kind": "fault"}, port=control_port)
        assert records["records"][0]["data"]["fault"] == "WIND_GUST"

        bad = await request({"op": "fault", "nest": 99, "kind": "link_loss"}, port=control_port)
        assert bad == {"ok": False, "error": "no simulated nest 99"}
        bad = await request({"op": "fault", "nest": 3, "kind": "meteor"}, port=control_port)
        assert not bad["ok"] and "unknown fault kind" in bad["error"]
        bad = await request({"op": "weather", "nest": 3, "snow_depth": 1}, port=control_port)
        assert not bad["ok"] and "unknown weather field" in bad["error"]


async def test_dronectl_sim_is_the_same_and_endpoints_are_stable() -> None:
    bases = (allocate_port_base(), allocate_port_base())
    dronectl_sim = (sys.executable, "-m", "dronectl", "sim", "--nests", "2")
    async with running_sim(*dronectl_sim, bases=bases) as (first, _):
        pass
    async with running_sim(sys.executable, "-m", "sitl", "--nests", "2", bases=bases) as (second, _):
        pass
    assert first == second
    assert [n["sim_endpoint"] for n in first] == [f"127.0.0.1:{bases[0] + 1}", f"127.0.0.1:{bases[0] + 2}"]


async def test_broken_config_is_refused_with_its_line(tmp_path: Any) -> None:
    bad = tmp_path / "city.yaml"
    bad.write_text("city: X\nnests:\n  - {id: 1, name: A, lat: 95, lon: 125, ground_alt_m: 200}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sitl", "--config", str(bad),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 2
    assert f"{bad}:3: nests.0.lat" in err.decode()
    assert out == b""


async def test_a_second_simulator_on_taken_ports_says_so_and_exits() -> None:
    bases = (allocate_port_base(), allocate_port_base())
    async with running_sim(sys.executable, "-m", "sitl", "--nests", "1", bases=bases):
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sitl", "--nests", "1",
            "--control-port", str(allocate_port_base(span=1)),
            "--sim-port-base", str(bases[0]),
            "--client-port-base", str(bases[1]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            out, err = await second.communicate()
    assert second.returncode == 1
    assert out == b""  # no nest line: nothing was announced
    assert b"sitl.port_in_use" in err and b"a simulator left from an earlier run" in err


async def test_exit_with_parent_stops_when_its_stdin_closes() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sitl", "--nests", "1", "--exit-with-parent",
        "--control-port", str(allocate_port_base(span=1)),
        "--sim-port-base", str(allocate_port_base()),
        "--client-port-base", str(allocate_port_base()),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert json.loads(await proc.stdout.readline())["id"]  # up: its nest announced
        proc.stdin.close()  # what the kernel does when dronectl up dies, even by kill -9
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sharded_simulator_prints_every_nest_and_routes_the_control_port() -> None:
    args = (sys.executable, "-m", "sitl", "--nests", "6", "--shards", "3")
    async with running_sim(*args) as (lines, control_port):
        assert sorted(line["id"] for line in lines) == list(range(1, 7))
        reply = await request({"op": "fault", "nest": 5, "kind": "wind_gust", "value": 8}, port=control_port)
        assert reply == {"ok": True, "nests": [5]}
        state = await request({"op": "state", "nest": 5}, port=control_port)
        assert state["ok"] and state["state"][0]["nest"] == 5 and state["state"][0]["on_pad"] is True
        reply = await request({"op": "weather", "nest": "all", "wind_speed_mps": 14}, port=control_port)
        assert reply["ok"] and sorted(reply["nests"]) == list(range(1, 7))
        nests = await request({"op": "nests"}, port=control_port)
        assert sorted(n["id"] for n in nests["nests"]) == list(range(1, 7))
        bad = await request({"op": "state", "nest": 99}, port=control_port)
        assert bad == {"ok": False, "error": "no simulated nest 99"}
