"""The interactive console in a real terminal (tmux, 80x24) against the real service.

Completion, a launch showing in the fleet panel, a refusal with its reason, a confirmation, and
control authority between two pilots' consoles and a commander's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.console.conftest import Service
from tests.console.tmux import TmuxConsole, tmux_available

assert tmux_available(), "tmux is not installed: scripts/system-deps.sh installs it"

FLYING = {"preflight", "launching", "en_route", "on_station"}


OpenConsole = Callable[..., TmuxConsole]


@pytest.fixture
def open_console(service: Service, tmp_path: Path) -> Iterator[OpenConsole]:
    """Opens a console in its own tmux (``open_console(actor, role="pilot")``), ready with the fleet."""
    opened: list[TmuxConsole] = []

    def open_one(actor: str, role: str = "pilot") -> TmuxConsole:
        console = TmuxConsole(tmp_path, service.broker, service.config_path, actor, role)
        opened.append(console)
        console.wait(
            "the console online with the fleet",
            lambda c: "service online" in c.screen() and set(c.panel()) == {3, 5, 7},
        )
        return console

    try:
        yield open_one
    finally:
        for console in opened:
            console.close()


def test_completion_launch_in_the_panel_refusal_and_confirmation(
    open_console: OpenConsole,
) -> None:
    pilot = open_console("pilot-a")
    assert pilot.panel()[3][0] == "ready"
    assert pilot.screen().splitlines()[0].startswith(" pilot-a (pilot) | mqtt://127.0.0.1:")

    pilot.type("lau", enter=False)
    pilot.key("Tab")
    pilot.wait("'launch' completed", lambda c: c.prompt_line().rstrip() == "pilot-a> launch")
    pilot.type("3 to nan", enter=False)
    pilot.key("Tab")
    pilot.wait("the place completed", lambda c: c.prompt_line().rstrip() == "pilot-a> launch 3 to nanhu-park")
    pilot.key("Enter")
    pilot.wait_text("-> launch nest 3 to Nanhu Park at 60 m")
    pilot.wait_text("nest 3 launch accepted: preflight checks passed")
    pilot.wait("nest 3 flying in the panel", lambda c: c.panel()[3][0] in FLYING)
    pilot.wait("nest 3 climbing in the panel", lambda c: c.panel()[3][2] not in ("0m", "-"), timeout_s=60)

    pilot.type("goto 7 to 43.86,125.29")
    pilot.wait_text("! nest 7 goto refused: [refused] go to refused")
    pilot.wait_text("- drone is ready")

    pilot.type("lanch 7")
    pilot.wait_text("unknown command 'lanch' (did you mean land, launch?)")

    pilot.type("land 3")
    pilot.wait(
        "the confirmation", lambda c: "land nest 3's drone HERE, not in its dock? [y/N]" in c.prompt_line()
    )
    pilot.type("n")
    pilot.wait_text("not sent: land nest 3")
    assert pilot.panel()[3][0] in FLYING | {"on_station"}

    pilot.type("return 3")
    pilot.wait_text("-> return nest 3 home")
    pilot.wait(
        "nest 3 returning", lambda c: c.panel()[3][0] in ("returning", "landing", "post_flight", "charging")
    )


def test_two_pilots_and_a_commander_share_nest_5(open_console: OpenConsole) -> None:
    a = open_console("pilot-a")
    b = open_console("pilot-b")

    a.type("take 5")
    a.wait_text("ok nest 5 control.take succeeded: nest 5: control taken by pilot-a (pilot)")
    a.wait("pilot-a holding nest 5 in a's panel", lambda c: c.panel()[5][5] == "pilot-a")
    b.wait("pilot-a holding nest 5 in b's panel", lambda c: c.panel()[5][5] == "pilot-a")

    b.type("goto 5 to 43.85,125.22")
    b.wait_text("! nest 5 goto refused: [busy] nest 5 is under manual control of pilot-a (pilot)")
    b.type("take 5")
    b.wait_text("! nest 5 control.take refused: [busy] nest 5 is under manual control of pilot-a (pilot)")

    commander = open_console("cmdr-z", "commander")
    commander.wait("pilot-a holding nest 5 in the commander's panel", lambda c: c.panel()[5][5] == "pilot-a")
    commander.type("take 5")
    commander.wait_text("control taken over by cmdr-z (commander) from pilot-a (pilot)")
    a.wait_text("!! you no longer hold control of nest 5; cmdr-z (commander) holds it now")
    for console in (a, b, commander):
        console.wait("cmdr-z holding nest 5", lambda c: c.panel()[5][5] == "cmdr-z")

    a.type("light 5 strobe")
    a.wait_text("! nest 5 light.set refused: [busy] nest 5 is under manual control of cmdr-z (commander)")
    commander.type("release 5")
    for console in (a, b, commander):
        console.wait("nest 5 free", lambda c: c.panel()[5][5] == "-")
