"""Shared fixtures: free UDP port ranges so test runs never collide."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PX4_REFERENCE = (REPO_ROOT / ".." / "shared" / "px4-reference").resolve()

_used: set[int] = set()


def _free(base: int, span: int) -> bool:
    socks = []
    try:
        for offset in range(span + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", base + offset))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def allocate_port_base(span: int = 20) -> int:
    """A base B such that UDP ports B..B+span are free on 127.0.0.1."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000, 50)
        if base in _used:
            continue
        if _free(base, span):
            _used.add(base)
            return base
    raise RuntimeError("no free UDP port range found")


@pytest.fixture
def port_base() -> tuple[int, int]:
    """(sim_port_base, client_port_base) for make_sites: nest N uses base+N of each."""
    return allocate_port_base(), allocate_port_base()
