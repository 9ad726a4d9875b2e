"""Shared fixtures: free UDP port ranges so test runs never collide; event loops that close
within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import blocking
from sitl.ports import free_udp_range

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

REPO_ROOT = Path(__file__).resolve().parents[1]
PX4_REFERENCE = (REPO_ROOT / ".." / "shared" / "px4-reference").resolve()

_used: set[int] = set()


def allocate_port_base(span: int = 20) -> int:
    """A base B such that UDP ports B..B+span are free on 127.0.0.1 (never handed out twice)."""
    return free_udp_range(span, exclude=_used)


@pytest.fixture
def port_base() -> tuple[int, int]:
    """(sim_port_base, client_port_base) for make_sites: nest N uses base+N of each."""
    return allocate_port_base(), allocate_port_base()


def _bounded_loop() -> asyncio.AbstractEventLoop:
    """A new event loop whose default executor is bounded: a blocking call that never returns (a
    MAVSDK call to a simulated vehicle already gone) cannot keep the loop from closing."""
    loop = asyncio.new_event_loop()
    blocking.install(loop)
    return loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, LoopFactory]:
    return {"bounded": _bounded_loop}
