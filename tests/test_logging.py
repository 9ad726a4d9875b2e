"""The log is JSON lines only: what libraries log through the standard library (amqtt, aiohttp,
asyncio) is rendered by the same structlog chain, a traceback as one field of one line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

CODE = """
import logging
from dronectl.logging import configure_logging
configure_logging("INFO")
log = logging.getLogger("amqtt.broker")
log.info("a library's chatter")
try:
    raise ValueError("a broken client")
except ValueError:
    log.exception("client handler failed")
logging.getLogger("aiohttp.access").warning("slow request %s", "/api")
"""


def test_standard_library_records_are_json_lines_with_their_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert [(e["logger"], e["level"], e["event"]) for e in lines] == [
        ("amqtt.broker", "error", "client handler failed"),
        ("aiohttp.access", "warning", "slow request /api"),
    ]
    assert "ValueError: a broken client" in lines[0]["exception"]
    assert all(e["timestamp"].endswith("Z") for e in lines)
