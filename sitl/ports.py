"""Free local ports for simulated nests, their clients and control ports (tests and benches)."""

from __future__ import annotations

import random
import socket


def udp_range_free(base: int, span: int, host: str = "127.0.0.1") -> bool:
    """Whether UDP ports base..base+span can all be bound on ``host`` now."""
    socks: list[socket.socket] = []
    try:
        for offset in range(span + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((host, base + offset))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_udp_range(span: int, exclude: set[int] | None = None, host: str = "127.0.0.1") -> int:
    """A base B such that UDP ports B..B+span are free (nest N then uses B+N)."""
    rng = random.Random()
    for _ in range(300):
        # below Linux's ephemeral range (32768-60999): a port found free there can be handed to any
        # process's next outgoing socket before the simulator binds it. 908 bases, 25 apart (spans
        # of up to 20 never overlap): a whole test session hands out a few hundred and never reuses one
        base = rng.randrange(10000, 32700, 25)
        if exclude is not None and base in exclude:
            continue
        if udp_range_free(base, span, host):
            if exclude is not None:
                exclude.add(base)
            return base
    raise OSError("no free UDP port range found")


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
