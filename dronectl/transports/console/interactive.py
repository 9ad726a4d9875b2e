"""``dronectl console``: the interactive pilot console (prompt_toolkit full screen, rich panel).

Screen (80x24 and up)::

    title: who you are, the broker, the service's status
    fleet panel: each nest's phase, battery, altitude, speed, link, who holds control
    ───────────────
    output: events of the fleet and the answers to your commands, newest at the bottom
    prompt: a command line with tab completion and history

A full-screen application redraws the whole screen itself, so it stays intact under tmux and
when messages arrive while the pilot types. Dangerous commands ask first (``[y/N]``).
The connection to the broker is kept up with back-off; the fleet seen so far stays on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import structlog
from prompt_toolkit.application import Application, get_app
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.document import Document
from prompt_toolkit.filters import has_completions
from prompt_toolkit.formatted_text import ANSI, StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.key_binding.bindings.completion import generate_completions
from prompt_toolkit.layout import (
    BufferControl,
    ConditionalContainer,
    Float,
    FloatContainer,
    FormattedTextControl,
    HSplit,
    Layout,
    Window,
)
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import BeforeInput

from dronectl.domain.config import CityConfig
from dronectl.domain.errors import DronectlError
from dronectl.operations.models import TERMINAL_STATES, Event, EventKind
from dronectl.operations.topics import Topics
from dronectl.transports.console.client import ClientSettings, ConsoleClient, ConsoleConnectionError
from dronectl.transports.console.commands import Context, Quit, Send, Show, build_registry
from dronectl.transports.console.completion import ConsoleCompleter, Sources
from dronectl.transports.console.describe import format_event
from dronectl.transports.console.fleet import Feed, FleetModel
from dronectl.transports.console.options import add_connection_arguments, city, client_settings
from dronectl.transports.console.outcome import CommandResult
from dronectl.transports.console.panel import render_panel
from dronectl.transports.console.parsing import UsageError
from dronectl.transports.console.places import Places
from dronectl.transports.mqtt.settings import redact_url

log = structlog.get_logger("dronectl.transports.console")

MAX_OUTPUT_LINES = 1000
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0


class ConsoleUI:
    def __init__(
        self,
        settings: ClientSettings,
        config: CityConfig,
        places: Places,
        *,
        video_url: str,
        history: History,
        reply_timeout_s: float,
    ) -> None:
        self.settings = settings
        self.config = config
        self.places = places
        self.video_url = video_url
        self.reply_timeout_s = reply_timeout_s
        self.registry = build_registry()
        self.fleet = FleetModel(Topics(settings.root))
        self.client: ConsoleClient | None = None
        self.connection = "connecting"
        self.lines: deque[str] = deque(maxlen=MAX_OUTPUT_LINES)
        self.pending_confirm: Send | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.input = Buffer(
            completer=ConsoleCompleter(self.registry, lambda: Sources(self.fleet, self.places)),
            complete_while_typing=False,
            history=history,
            multiline=False,
            accept_handler=self._accept,
        )
        self.output = Buffer(read_only=True)
        self.app: Application[int] = self._application()

    # --- layout ---------------------------------------------------------------------------

    def _application(self) -> Application[int]:
        kb = KeyBindings()
        kb.add("tab")(generate_completions)

        @kb.add("c-d")
        def _exit(event: KeyPressEvent) -> None:
            event.app.exit(result=0)

        @kb.add("pageup")
        def _back(event: KeyPressEvent) -> None:
            self._scroll_output(-1)

        @kb.add("pagedown")
        def _forward(event: KeyPressEvent) -> None:
            self._scroll_output(+1)

        @kb.add("c-c")
        def _clear(event: KeyPressEvent) -> None:
            if self.pending_confirm is not None:
                self._say("cancelled")
                self.pending_confirm = None
            self.input.reset()

        title = Window(FormattedTextControl(self._title), height=1, style="reverse")
        panel = Window(
            FormattedTextControl(lambda: ANSI(self._panel())), height=self._panel_height, wrap_lines=False
        )
        rule = Window(char="─", height=1, style="class:rule")
        output = self.output_window = Window(BufferControl(self.output, focusable=False), wrap_lines=True)
        prompt = Window(
            BufferControl(self.input, input_processors=[BeforeInput(self._prompt)]),
            height=1,
            dont_extend_height=True,
        )
        body = FloatContainer(
            HSplit([title, panel, rule, output, prompt]),
            floats=[
                Float(
                    xcursor=True,
                    ycursor=True,
                    content=ConditionalContainer(CompletionsMenu(max_height=8), filter=has_completions),
                )
            ],
        )
        layout = Layout(body, focused_element=self.input)
        return Application(
            layout=layout, key_bindings=kb, full_screen=True, refresh_interval=1.0, min_redraw_interval=0.1
        )

    def _width(self) -> int:
        return max(40, get_app().output.get_size().columns)

    def _scroll_output(self, direction: int) -> None:
        """A page back (-1) or forward (+1): the output window follows its cursor, so move that."""
        info = self.output_window.render_info
        if info is None:
            return
        page = max(1, info.window_height - 1)
        doc = self.output.document
        if direction < 0:
            row = max(0, info.first_visible_line() - page)
        else:
            row = min(doc.line_count - 1, info.last_visible_line() + page)
        self.output.cursor_position = doc.translate_row_col_to_index(row, 0)
        self.app.invalidate()

    def _panel(self) -> str:
        return render_panel(self.fleet, datetime.now(UTC), self._width(), self.settings.actor.id)

    def _panel_height(self) -> Dimension:
        return Dimension.exact(max(1, self._panel().rstrip("\n").count("\n") + 1))

    def _title(self) -> StyleAndTextTuples:
        status = self.fleet.status
        service = "?" if status is None else status.state
        text = (
            f" {self.settings.who()} | {redact_url(self.settings.broker)} | broker {self.connection}"
            f" | service {service}"
        )
        return [("", text.ljust(self._width())[: self._width()])]

    def _prompt(self) -> str:
        if self.pending_confirm is not None:
            return f"{self.pending_confirm.confirm} [y/N] "
        return f"{self.settings.actor.id}> "

    # --- output ---------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(line)
        joined = "\n".join(self.lines)
        self.output.set_document(Document(joined, len(joined)), bypass_readonly=True)
        with contextlib.suppress(Exception):  # no application running (tests of the model)
            self.app.invalidate()

    def _on_update(self, feed: Feed) -> None:
        if feed.kind == "events" and self.fleet.events:
            event = self.fleet.events[-1]
            self._say(format_event(event))
            notice = control_notice(event, self.settings.actor.id)
            if notice is not None:
                self._say(notice)
        elif feed.kind == "incidents":
            incident = list(self.fleet.incidents.values())[-1]
            self._say(
                f"incident {incident.id}: {incident.kind} (priority {incident.priority}) {incident.text}"
            )
        self.app.invalidate()

    # --- input ----------------------------------------------------------------------------

    def _context(self) -> Context:
        return Context(
            fleet=self.fleet,
            places=self.places,
            actor=self.settings.actor,
            now=datetime.now(UTC),
            default_alt_m=self.config.safety.default_cruise_alt_m,
            video_base_url=self.video_url,
        )

    def _accept(self, buffer: Buffer) -> bool:
        line = buffer.text.strip()
        if self.pending_confirm is not None:
            confirmed, self.pending_confirm = self.pending_confirm, None
            if line.lower() in ("y", "yes"):
                self._send(confirmed)
            else:
                self._say(f"not sent: {confirmed.summary}")
            return False
        if not line:
            return False
        self._say(f"{self.settings.actor.id}> {line}")
        try:
            action = self.registry.parse(line, self._context())
        except UsageError as exc:
            self._say(f"! {exc}")
            return False
        if isinstance(action, Quit):
            self.app.exit(result=0)
        elif isinstance(action, Show):
            self._say(action.text)
        elif isinstance(action, Send):
            if action.confirm:
                self.pending_confirm = action
            else:
                self._send(action)
        return False

    def _send(self, action: Send) -> None:
        client = self.client
        if client is None:
            self._say(f"! not connected to the broker: {action.summary} not sent")
            return
        task = asyncio.get_running_loop().create_task(self._run(client, action), name="console.command")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, client: ConsoleClient, action: Send) -> None:
        shown = 0

        def progress(result: CommandResult) -> None:
            nonlocal shown
            for step in result.progress[shown:]:
                if step.state in TERMINAL_STATES:
                    continue  # the closing line below says how it ended
                where = f"nest {result.nest_id} " if result.nest_id is not None else ""
                self._say(
                    f"  {where}{result.method} {step.state.value}"
                    + (f": {step.message}" if step.message else "")
                )
            shown = len(result.progress)

        self._say(f"-> {action.summary}")
        try:
            result = await client.run(
                action, wait=True, reply_timeout_s=self.reply_timeout_s, on_progress=progress
            )
        except DronectlError as exc:
            self._say(f"! {exc}")
            return
        if result.ok and result.state in ("succeeded", "accepted"):
            self._say(f"ok {result.message()}")
        else:
            self._say(f"! {result.message()}")

    # --- connection -----------------------------------------------------------------------

    async def keep_connected(self) -> None:
        delay_s = RECONNECT_MIN_S
        while True:
            try:
                async with ConsoleClient(self.settings, self.fleet, on_update=self._on_update) as client:
                    self.client = client
                    self.connection = "up"
                    delay_s = RECONNECT_MIN_S
                    self._say(f"connected to {self.settings.broker}")
                    await client.closed.wait()
                    self._say(f"! {client.lost_reason}")
            except ConsoleConnectionError as exc:
                self._say(f"! {exc}")
            finally:
                self.client = None
            self.connection = "lost"
            self.app.invalidate()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, RECONNECT_MAX_S)

    async def run(self) -> int:
        self._say("type help for the commands; Tab completes; PgUp/PgDn scroll; Ctrl-D leaves")
        connection = asyncio.get_running_loop().create_task(self.keep_connected(), name="console.connection")
        try:
            return await self.app.run_async()
        finally:
            for task in (connection, *self.tasks):
                task.cancel()
            await asyncio.gather(connection, *self.tasks, return_exceptions=True)


def control_notice(event: Event, me: str) -> str | None:
    """A word to the pilot whose control of a nest someone else ended (a commander's take-over,
    a release by a commander, or the idle timeout)."""
    if event.kind is not EventKind.CONTROL or event.nest_id is None:
        return None
    previous, holder = event.data.get("previous"), event.data.get("holder")
    if not isinstance(previous, dict) or previous.get("id") != me or event.data.get("by") == me:
        return None
    now = f"; {holder.get('id')} ({holder.get('role')}) holds it now" if isinstance(holder, dict) else ""
    return f"!! you no longer hold control of nest {event.nest_id}{now}"


def _history(path: str | None) -> History:
    if path == "":
        return InMemoryHistory()
    file = Path(path) if path else Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state"))
    if not path:
        file = file / "dronectl" / "console_history"
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(file))
    except OSError:
        return InMemoryHistory()


def _log_to_file(path: str | None) -> None:
    """Logs must not write over the full-screen display: to a file, or nowhere."""
    target = open(path, "a", encoding="utf-8") if path else open(os.devnull, "w")  # noqa: SIM115 - process-long
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=target),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl console", description="The interactive pilot console.")
    add_connection_arguments(parser)
    parser.add_argument("--history", default=None, help="history file ('' for none)")
    parser.add_argument("--log-file", default=None, help="where the console's own log goes")
    ns = parser.parse_args(argv)
    try:
        settings = client_settings(ns)
        config, places = city(ns)
    except UsageError as exc:
        sys.stderr.write(f"dronectl console: {exc}\n")
        return 2
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        sys.stderr.write("dronectl console needs a terminal; for scripts use the one-shot commands\n")
        return 2
    _log_to_file(ns.log_file)
    ui = ConsoleUI(
        settings,
        config,
        places,
        video_url=ns.video_url,
        history=_history(ns.history),
        reply_timeout_s=ns.timeout,
    )
    return asyncio.run(ui.run())
