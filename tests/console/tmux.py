"""Driving the interactive console in a real terminal: tmux with a fixed size, keys in, screen out.

Each console runs in a session of a tmux server of its own (``-L``), so tests never touch the
user's tmux. Waiting is always polling the screen until the expected text appears.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.identity.accounts import TEST_PASSWORD

WIDTH, HEIGHT = 80, 24
_CELL = re.compile(r"(?:^|\s)(\d{1,3}) ([a-z_?]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class TmuxConsole:
    def __init__(self, tmp: Path, broker: str, config: Path, actor: str, role: str = "pilot") -> None:
        self.socket = f"dronectl-test-{uuid.uuid4().hex[:10]}"
        self.session = "console"
        self.actor = actor
        self.stderr = tmp / f"{actor}.stderr"
        console = [
            sys.executable, "-m", "dronectl", "console", "--broker", broker, "--config", str(config),
            "--actor", actor, "--role", role, "--history", "", "--log-file", str(tmp / f"{actor}.log"),
        ]  # fmt: skip
        # keep the pane after an exit, to show how the console ended
        shell = (
            f"cd {shlex.quote(str(REPO_ROOT))} && {shlex.join(console)} 2>{shlex.quote(str(self.stderr))};"
        )
        shell += " echo console-exited-$?; sleep 600"
        self._tmux(
            "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
            "-e", f"PYTHONPATH={REPO_ROOT}", "-e", "TERM=xterm-256color",
            "-e", f"DRONECTL_PASSWORD={TEST_PASSWORD}", shell,
        )  # fmt: skip

        self.socket_path = Path(self._tmux("display-message", "-p", "#{socket_path}").strip())

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def type(self, text: str, enter: bool = True) -> None:
        self._tmux("send-keys", "-t", self.session, "-l", text)
        if enter:
            self.key("Enter")

    def key(self, name: str) -> None:
        self._tmux("send-keys", "-t", self.session, name)

    def prompt_line(self) -> str:
        lines = [line for line in self.screen().splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def panel(self) -> dict[int, list[str]]:
        """Each nest's cell in the fleet panel: [phase, battery, altitude, speed, link, control]."""
        lines = self.screen().splitlines()
        cells: dict[int, list[str]] = {}
        for line in lines[1:]:
            if line.startswith("─"):
                break
            for match in _CELL.finditer(line):
                cells[int(match.group(1))] = list(match.groups()[1:])
        return cells

    def wait(self, what: str, check: Callable[[TmuxConsole], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if check(self):
                    return
            except (KeyError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.actor}: timed out waiting for {what}; screen:\n{self.screen()}")
            time.sleep(0.05)

    def wait_text(self, text: str, timeout_s: float = 30.0) -> None:
        """``text`` on the screen; long lines wrap, so white space (and line ends) are ignored."""
        wanted = "".join(text.split())
        self.wait(repr(text), lambda c: wanted in "".join(c.screen().split()), timeout_s)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        self.socket_path.unlink(missing_ok=True)
