"""``python -m sitl --shards K``: the nests split over K simulator processes (issue 15).

One process steps every nest every 20 ms; a few hundred nests are more than one core does, and a
simulator that falls behind makes the service look slow. With ``--shards K`` this process starts K
children (``python -m sitl run --shard I/K``), each running a contiguous share of the nests on the
same endpoints they would have in one process, and stays in front of them:

- their nest lines go to its stdout, so a reader (``dronectl up``) sees one line per nest as before;
- its control port takes the same requests and sends each to the shard that runs the nest ("all"
  and ``nests``: to every shard, the replies merged);
- the children hold their standard input from it (``--exit-with-parent``): when it stops, however,
  so do they; when a child exits, it stops the others and exits with that child's code.

Each shard has its own simulated clock and city scene (what a camera films): they start within a
second of each other; a scene event is seen by the drones of its shard only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from sitl.control import MAX_LINE_BYTES, request

log = structlog.get_logger("sitl.shards")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4): shard 2 (from 1) of 4."""
    index, sep, count = text.partition("/")
    try:
        i, k = int(index), int(count)
    except ValueError:
        raise ValueError(f"--shard wants I/K (e.g. 2/4), got {text!r}") from None
    if not sep or not 1 <= i <= k:
        raise ValueError(f"--shard wants I/K with 1 <= I <= K, got {text!r}")
    return i, k


def shard_ids(nest_ids: Sequence[int], index: int, count: int) -> list[int]:
    """The nests of shard ``index`` (from 1) of ``count``: contiguous, sizes differing by one at most."""
    n = len(nest_ids)
    start = (index - 1) * n // count
    end = index * n // count
    return list(nest_ids[start:end])


class Shard:
    """One child simulator: its process, the nests it runs, its own control port."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.control_port = 0
        self.nest_ids: set[int] = set()


class ShardedSimulator:
    """Starts the shards, relays their nest lines, and serves the control port in front of them."""

    def __init__(self, child_args: list[str], count: int, host: str = "127.0.0.1", port: int = 0) -> None:
        """``child_args``: the run arguments every child gets (config, ports, speed, ...)."""
        self._child_args = child_args
        self._count = count
        self._host = host
        self._port = port
        self.shards: list[Shard] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Start every shard and wait until each has printed its control port."""
        for index in range(1, self._count + 1):
            cmd = [sys.executable, "-m", "sitl", "--control-port", "0", "run", *self._child_args]
            cmd += ["--shard", f"{index}/{self._count}", "--exit-with-parent"]
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=MAX_LINE_BYTES
            )
            self.shards.append(Shard(index, proc))
        async with asyncio.timeout(START_TIMEOUT_S):
            for shard in self.shards:
                first = await self._line(shard)
                shard.control_port = int(first["control_port"])
        self._server = await asyncio.start_server(self._client, self._host, self._port, limit=MAX_LINE_BYTES)
        log.info("sitl.shards.started", shards=self._count, control_port=self._port)

    async def relay(self) -> int:
        """Copy every shard's nest lines to stdout until one shard exits; its exit code."""
        tasks = [asyncio.create_task(self._relay(s), name=f"sitl.shard[{s.index}]") for s in self.shards]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for shard in self.shards:
            if shard.proc.returncode is None:
                shard.proc.terminate()
        for shard in self.shards:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await shard.proc.wait()
            except TimeoutError:
                shard.proc.kill()
                await shard.proc.wait()

    async def _line(self, shard: Shard) -> dict[str, Any]:
        assert shard.proc.stdout is not None
        line = await shard.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator shard {shard.index} exited with {await shard.proc.wait()}")
        data: dict[str, Any] = json.loads(line)
        return data

    async def _relay(self, shard: Shard) -> int:
        assert shard.proc.stdout is not None
        while line := await shard.proc.stdout.readline():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                shard.nest_ids.add(int(json.loads(line)["id"]))
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        code = await shard.proc.wait()
        log.error("sitl.shards.exited", shard=shard.index, code=code)
        return code if code != 0 else 1

    # the control port ---------------------------------------------------------------------------
    async def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One control request, sent to the shard(s) it concerns."""
        nest = payload.get("nest")
        if payload.get("op") == "nests" or nest == "all":
            replies = [await request(payload, port=s.control_port) for s in self.shards]
            return _merge(replies)
        try:
            nest_id = int(nest)  # type: ignore[arg-type]  # anything else: a shard says what is wrong
        except (TypeError, ValueError):
            return await request(payload, port=self.shards[0].control_port)
        for shard in self.shards:
            if nest_id in shard.nest_ids:
                return await request(payload, port=shard.control_port)
        return {"ok": False, "error": f"no simulated nest {nest_id}"}

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    payload = json.loads(line)
                    if not isinstance(payload, dict):
                        raise ValueError("a request is a JSON object")
                    reply = await self.handle(payload)
                except (ValueError, OSError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(reply, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def _merge(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The replies of every shard as one: the first error, else the lists joined."""
    for reply in replies:
        if not reply.get("ok"):
            return reply
    merged: dict[str, Any] = {"ok": True}
    for reply in replies:
        for key, value in reply.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
    return merged
