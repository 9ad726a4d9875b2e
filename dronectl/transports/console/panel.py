"""The live fleet panel, rendered with rich to ANSI text (shown by prompt_toolkit).

Compact enough for an 80x24 terminal: one nest takes one cell of 40 columns (id, phase, battery,
altitude, speed, link, who holds control), two cells to a line at 80 columns (16 nests in 8
lines), more cells on wider terminals.
"""

from __future__ import annotations

import io
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dronectl.transports.console.fleet import FleetModel, NestRow

CELL_WIDTH = 40  # 33 columns of text + 7 spaces between columns; the last cell needs no trailing space

_PHASE_STYLE = {
    "ready": "green",
    "charging": "cyan",
    "standby": "cyan",
    "preflight": "yellow",
    "launching": "bold yellow",
    "en_route": "bold yellow",
    "on_station": "bold green",
    "returning": "bold yellow",
    "landing": "bold yellow",
    "post_flight": "cyan",
    "fault": "bold red",
    "maintenance": "magenta",
    "offline": "red",
}


def _battery(row: NestRow) -> Text:
    if row.battery_pct is None:
        return Text("  -%")
    style = "red" if row.battery_pct < 30 else ("yellow" if row.battery_pct < 50 else "")
    return Text(f"{row.battery_pct:3.0f}%", style=style)


def _cell(row: NestRow, me: str) -> list[Text]:
    alt = "-" if row.alt_m is None else f"{row.alt_m:.0f}m"
    speed = "-" if row.speed_mps is None else f"{row.speed_mps:.0f}"
    link = Text(row.link, style="" if row.link == "up" else "bold red")
    if row.holder is None:
        holder = Text("-", style="dim")
    else:  # your own hold in reverse video; the full id is in `status N`
        holder = Text(row.holder, style="reverse" if row.holder == me else "")
    return [
        Text(f"{row.nest_id:>2}", style="bold"),
        Text(row.phase[:10], style=_PHASE_STYLE.get(row.phase, "")),
        _battery(row),
        Text(alt),
        Text(speed),
        link,
        holder,
    ]


def render_panel(fleet: FleetModel, now: datetime, width: int, me: str) -> str:
    """The panel as ANSI text, ``width`` columns wide."""
    rows = fleet.rows(now)
    per_line = max(1, (width + 1) // CELL_WIDTH)
    table = Table(
        box=None, padding=(0, 1, 0, 0), pad_edge=False, show_header=True, header_style="dim", expand=False
    )
    for _ in range(per_line):
        table.add_column("#", justify="right", no_wrap=True, width=2)
        table.add_column("phase", no_wrap=True, width=10)
        table.add_column("bat", justify="right", no_wrap=True, width=4)
        table.add_column("alt", justify="right", no_wrap=True, width=4)
        table.add_column("v", justify="right", no_wrap=True, width=2)
        table.add_column("link", no_wrap=True, width=4)
        table.add_column("ctl", no_wrap=True, width=7, overflow="ellipsis")
    if not rows:
        return "waiting for the fleet's state...\n"
    lines = (len(rows) + per_line - 1) // per_line
    for line in range(lines):
        cells: list[Text] = []
        for column in range(per_line):
            index = column * lines + line  # fill column by column: nests read top to bottom
            cells.extend(_cell(rows[index], me) if index < len(rows) else [Text("")] * 7)
        table.add_row(*cells)
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=True, color_system="standard", legacy_windows=False
    )
    console.print(table, end="")
    return buffer.getvalue()
