"""One-shot commands for scripts: the console's commands from the shell, one per run.

    dronectl launch 7 --to 43.90,125.30 [--alt 60] [--wait] [--json]
    dronectl return 7 | dronectl status [7] --json | dronectl say 7 "slow down" --lang en
    dronectl light 7 strobe | dronectl take 7 | dronectl release 7 | dronectl land 7 --yes

Same grammar as the interactive console (``launch 7 to nanhu-park`` works too). Without ``--wait``
a flight command returns once the service accepted or refused it; with ``--wait`` it follows the
command to its end (on station, landed...). Quick commands (control, speaker, light, maintenance)
are always followed to their end. Dangerous commands (land, abort, return all) need ``--yes``.
Output: one line for a person, or with ``--json`` one JSON object on stdout. The exit codes are
listed in :mod:`dronectl.transports.console.outcome` (0 ok, 2 usage, 3 refused, 4 timed out, 5 link lost,
6 no connection, 7 not in control, 8 forbidden, 9 unsupported, 1 failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from dronectl.logging import configure_logging
from dronectl.operations.topics import Topics
from dronectl.transports.console.client import (
    DONE_TIMEOUT_S,
    ClientSettings,
    ConsoleClient,
    ConsoleConnectionError,
)
from dronectl.transports.console.commands import (
    Context,
    Quit,
    Registry,
    Send,
    Show,
    build_registry,
    oneshot_names,
)
from dronectl.transports.console.fleet import FleetModel
from dronectl.transports.console.options import add_connection_arguments, city, client_settings
from dronectl.transports.console.outcome import EXIT_CODES_HELP, ExitCode
from dronectl.transports.console.parsing import UsageError

ONLINE_TIMEOUT_S = 5.0
OFFLINE_COMMANDS = frozenset({"view", "help"})  # answered without a broker
# quick methods are always followed to their end (the vehicle's or the service's answer)
QUICK_METHODS = frozenset(
    {
        "control.take",
        "control.release",
        "speaker.say",
        "speaker.stop",
        "light.set",
        "maintenance.set",
        "incident.confirm",
        "patrol.start",
        "patrol.stop",
        "patrol.list",
    }
)


def _parser(command: str) -> argparse.ArgumentParser:
    spec = build_registry().get(command)
    parser = argparse.ArgumentParser(
        prog=f"dronectl {command}",
        usage=f"dronectl {spec.usage_line() if spec else command} [options]",
        allow_abbrev=False,
        description=(spec.help + ". " if spec else "") + "Commands: " + ", ".join(oneshot_names()),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--wait", action="store_true", help="follow the command to its end")
    parser.add_argument("--done-timeout", type=float, default=DONE_TIMEOUT_S, help="seconds, with --wait")
    parser.add_argument("--yes", action="store_true", help="confirm a dangerous command (land, abort...)")
    return parser


def _write(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()


def _fail(code: ExitCode, message: str, as_json: bool) -> int:
    if as_json:
        _write(json.dumps({"ok": False, "exit_code": int(code), "message": message}, ensure_ascii=False))
    else:
        _write(f"dronectl: {message}", error=True)
    return int(code)


def _needs_fleet(words: list[str]) -> bool:
    """Whether a usage error may come from what the console has not seen yet (incidents)."""
    return any(w == "incident" or w.startswith("incident:") for w in words)


def main(command: str, argv: list[str]) -> int:
    parser = _parser(command)
    ns, words = parser.parse_known_args(argv)
    words = [command, *words]
    configure_logging(level="WARNING")
    try:
        settings = client_settings(ns)
        config, places = city(ns)
    except UsageError as exc:
        return _fail(ExitCode.USAGE, str(exc), ns.json)
    registry = build_registry()
    topics = Topics(settings.root)

    def context(fleet: FleetModel) -> Context:
        return Context(
            fleet=fleet,
            places=places,
            actor=settings.actor,
            now=datetime.now(UTC),
            default_alt_m=config.safety.default_cruise_alt_m,
            video_base_url=ns.video_url,
        )

    try:  # syntax first: a wrong line never needs a broker
        offline = registry.parse(words, context(FleetModel(topics)))
    except UsageError as exc:
        if not _needs_fleet(words):
            return _fail(ExitCode.USAGE, str(exc), ns.json)
        offline = None
    if isinstance(offline, Show) and command in OFFLINE_COMMANDS:
        return _show(offline, ns.json)
    if isinstance(offline, Send) and offline.confirm and not ns.yes:
        return _fail(ExitCode.USAGE, f"{offline.confirm} (dangerous: add --yes to do it)", ns.json)
    return asyncio.run(_online(ns, settings, registry, words, context))


def _show(action: Show, as_json: bool) -> int:
    if as_json:
        _write(
            json.dumps(action.data if action.data is not None else {"text": action.text}, ensure_ascii=False)
        )
    else:
        _write(action.text)
    return int(ExitCode.OK)


async def _online(
    ns: argparse.Namespace,
    settings: ClientSettings,
    registry: Registry,
    words: list[str],
    context: Callable[[FleetModel], Context],
) -> int:
    try:
        async with ConsoleClient(settings) as client:
            if not await client.wait_online(ONLINE_TIMEOUT_S):
                status: str = client.fleet.status.state if client.fleet.status is not None else "no status"
                if client.closed.is_set():
                    status = client.lost_reason or "connection closed"
                return _fail(
                    ExitCode.NO_CONNECTION,
                    f"no dronectl service online at {settings.broker} under {settings.root} ({status})",
                    ns.json,
                )
            try:
                action = registry.parse(words, context(client.fleet))
                if isinstance(action, Show):
                    return _show(action, ns.json)
                if isinstance(action, Quit) or action is None:
                    return int(ExitCode.OK)
                if action.confirm and not ns.yes:
                    return _fail(ExitCode.USAGE, f"{action.confirm} (dangerous: add --yes)", ns.json)
                wait = ns.wait or str(action.method) in QUICK_METHODS
                result = await client.run(
                    action, wait=wait, reply_timeout_s=ns.timeout, done_timeout_s=ns.done_timeout
                )
            except UsageError as exc:
                return _fail(ExitCode.USAGE, str(exc), ns.json)
    except ConsoleConnectionError as exc:
        return _fail(ExitCode.NO_CONNECTION, str(exc), ns.json)
    if ns.json:
        _write(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        _write(result.message(), error=not result.ok)
    return int(result.exit_code)
