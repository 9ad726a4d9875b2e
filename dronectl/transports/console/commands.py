"""The console's commands: a registry in MAVProxy's manner, and a pure parser per command.

``registry.add_command(name, handler, help, completions)`` registers a command; ``completions``
name what each positional word is (``NEST``, ``TARGET``, ``off|steady|strobe|police``...), for
tab completion. A handler turns the words of a line into an :class:`Action` (a request to send,
text to show) and never does I/O, so every command's grammar is tested without a broker.

Requests for methods the API does not offer (yet) are still sent, and the API's answer
(``unknown_method``) is shown: the console does not guess what the service supports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dronectl.operations.models import Actor, Method
from dronectl.transports.console import describe
from dronectl.transports.console.fleet import FleetModel, to_json
from dronectl.transports.console.parsing import (
    OptionSpec,
    OptionValue,
    UsageError,
    guess_lang,
    parse_float,
    parse_nest,
    parse_target,
    split_options,
    split_words,
)
from dronectl.transports.console.places import Places

LIGHT_MODES = ("off", "steady", "strobe", "police")
LANGS = ("zh", "en")
DEFAULT_ORBIT_RADIUS_M = 50.0
DEFAULT_LOG_LINES = 10

# Methods the console sends that the API (dronectl.operations.models.Method) does not define yet.
PLAY_METHOD = "speaker.play"
VOLUME_METHOD = "speaker.volume"
SPEED_METHOD = "speed.set"


@dataclass(frozen=True)
class Context:
    """What a command may read: the fleet as last seen, places, who we are."""

    fleet: FleetModel
    places: Places
    actor: Actor
    now: datetime
    default_alt_m: float = 60.0
    video_base_url: str = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Send:
    """Publish a request: ``nest_id`` None means the fleet topic."""

    method: str
    nest_id: int | None
    args: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    confirm: str | None = None  # the question to ask before sending (dangerous commands)


@dataclass(frozen=True)
class Show:
    """Text for the operator, and the same as data for --json."""

    text: str
    data: object = None


@dataclass(frozen=True)
class Quit:
    pass


Action = Send | Show | Quit
Handler = Callable[[Context, list[str], dict[str, OptionValue]], Action]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    completions: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    usage: str = ""

    def usage_line(self) -> str:
        return self.usage or " ".join([self.name, *self.completions])


class Registry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add_command(
        self,
        name: str,
        handler: Handler,
        help: str,
        completions: Sequence[str] = (),
        *,
        options: Sequence[OptionSpec] = (),
        usage: str = "",
    ) -> None:
        if name in self._commands:
            raise ValueError(f"command {name!r} registered twice")
        self._commands[name] = Command(name, handler, help, tuple(completions), tuple(options), usage)

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def names(self) -> list[str]:
        return sorted(self._commands)

    def commands(self) -> list[Command]:
        return [self._commands[name] for name in self.names()]

    def parse(self, line: str | Sequence[str], ctx: Context) -> Action | None:
        """The action for a line (None for an empty line); UsageError when it does not parse."""
        words = split_words(line) if isinstance(line, str) else list(line)
        if not words:
            return None
        command = self._commands.get(words[0])
        if command is None:
            close = [n for n in self.names() if n.startswith(words[0][:2])]
            hint = f" (did you mean {', '.join(close)}?)" if close else " (try help)"
            raise UsageError(f"unknown command {words[0]!r}{hint}")
        positional, options = split_options(words[1:], command.options)
        try:
            return command.handler(ctx, positional, options)
        except UsageError as exc:
            raise UsageError(f"{exc}\nusage: {command.usage_line()}") from None


# --- helpers -----------------------------------------------------------------------------------


def _nest(ctx: Context, words: list[str], index: int = 0) -> int:
    if len(words) <= index:
        raise UsageError("which nest?")
    return parse_nest(words[index], ctx.fleet.nest_ids())


def _no_more(words: Sequence[str]) -> None:
    if words:
        raise UsageError(f"unexpected {' '.join(words)!r}")


def _target_args(
    ctx: Context, words: list[str], options: dict[str, OptionValue]
) -> tuple[dict[str, Any], str, list[str]]:
    """The ``target`` of launch/goto (+ speed); returns (args, label, words left)."""
    if "to" in options:
        if words:
            raise UsageError("give the target once: either --to or after the nest")
        words = [str(options["to"])]
    target, rest = parse_target(words, ctx.places, ctx.fleet.incidents)
    alt = options.get("alt")
    if alt is not None and target.alt_m is not None:
        raise UsageError("altitude given twice (LAT,LON,ALT and --alt)")
    alt_m = (
        float(alt) if alt is not None else (target.alt_m if target.alt_m is not None else ctx.default_alt_m)
    )
    args: dict[str, Any] = {"target": {"lat": target.lat, "lon": target.lon, "alt_m": alt_m}}
    if "speed" in options:
        args["speed_mps"] = float(options["speed"])
    return args, f"{target.label} at {alt_m:g} m", rest


_ALT = OptionSpec("alt", "float", "altitude in metres above the nest's pad")
_SPEED = OptionSpec("speed", "float", "speed in m/s")
_TO = OptionSpec("to", "str", "target: LAT,LON[,ALT], a place, nest:N or incident:ID")


# --- the commands ------------------------------------------------------------------------------


def _launch(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    args, label, rest = _target_args(ctx, words[1:], options)
    _no_more(rest)
    return Send(Method.LAUNCH, nest_id, args, f"launch nest {nest_id} to {label}")


def _goto(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    args, label, rest = _target_args(ctx, words[1:], options)
    _no_more(rest)
    return Send(Method.GOTO, nest_id, args, f"nest {nest_id} go to {label}")


def _orbit(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    args, label, rest = _target_args(ctx, words[1:], options)
    _no_more(rest)
    radius_m = float(options.get("radius", DEFAULT_ORBIT_RADIUS_M))
    orbit: dict[str, Any] = {
        "center": args["target"],
        "radius_m": radius_m,
        "clockwise": not options.get("ccw"),
    }
    if "speed_mps" in args:
        orbit["speed_mps"] = args["speed_mps"]
    return Send(Method.ORBIT, nest_id, orbit, f"nest {nest_id} orbit {label}, radius {radius_m:g} m")


def _simple(method: Method, verb: str, confirm: str | None = None) -> Handler:
    def handler(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
        nest_id = _nest(ctx, words)
        _no_more(words[1:])
        question = confirm.format(nest=nest_id) if confirm else None
        return Send(method, nest_id, {}, f"{verb} nest {nest_id}", question)

    return handler


def _return(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    if words and words[0] == "all":
        reason = " ".join(words[1:])
        return Send(
            Method.RETURN_ALL,
            None,
            {"reason": reason} if reason else {},
            "return every flying drone",
            "bring EVERY flying drone home?",
        )
    nest_id = _nest(ctx, words)
    _no_more(words[1:])
    return Send(Method.RETURN_HOME, nest_id, {}, f"return nest {nest_id} home")


def _abort(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    reason = " ".join(words[1:])
    return Send(
        Method.ABORT,
        nest_id,
        {"reason": reason} if reason else {},
        f"abort nest {nest_id}",
        f"EMERGENCY: abort nest {nest_id}'s flight now?",
    )


def _speed(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    if len(words) != 2:
        raise UsageError("give the speed in m/s")
    speed = parse_float(words[1], "speed")
    if not 0.0 < speed <= 25.0:
        raise UsageError("speed must be above 0 and at most 25 m/s")
    return Send(SPEED_METHOD, nest_id, {"speed_mps": speed}, f"nest {nest_id} speed {speed:g} m/s")


def _say(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    text = " ".join(words[1:]).strip()
    if options.get("stop"):
        _no_more(words[1:])
        return Send(Method.SPEAKER_STOP, nest_id, {}, f"nest {nest_id} speaker stop")
    if not text:
        raise UsageError('what to say? say N "text" [--lang zh|en]')
    lang = str(options.get("lang") or guess_lang(text))
    return Send(
        Method.SPEAKER_SAY, nest_id, {"text": text, "lang": lang}, f"nest {nest_id} says ({lang}): {text}"
    )


def _play(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    if len(words) != 2:
        raise UsageError("which clip? play N CLIP")
    return Send(PLAY_METHOD, nest_id, {"clip": words[1]}, f"nest {nest_id} plays {words[1]}")


def _volume(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    if len(words) != 2 or not words[1].isdigit() or not 0 <= int(words[1]) <= 100:
        raise UsageError("volume is a whole percentage, 0..100")
    pct = int(words[1])
    return Send(VOLUME_METHOD, nest_id, {"volume_pct": pct}, f"nest {nest_id} volume {pct}%")


def _light(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    if len(words) != 2 or words[1] not in LIGHT_MODES:
        raise UsageError(f"light mode is one of {', '.join(LIGHT_MODES)}")
    return Send(Method.LIGHT_SET, nest_id, {"mode": words[1]}, f"nest {nest_id} light {words[1]}")


def _view(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    _no_more(words[1:])
    url = f"{ctx.video_base_url.rstrip('/')}/whep/nests/{nest_id}"
    return Show(f"nest {nest_id} live video (WHEP): {url}", {"nest": nest_id, "whep_url": url})


PATROL_KINDS = ("black_ice", "congestion")


def _patrol(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    verb = words[0] if words else ""
    if verb == "start":
        if len(words) != 3 or words[1] not in PATROL_KINDS:
            raise UsageError(f"patrol start KIND STRETCH (KIND: {', '.join(PATROL_KINDS)})")
        args = {"kind": words[1], "stretch_id": words[2]}
        return Send(Method.PATROL_START, None, args, f"{words[1]} patrol of stretch {words[2]}")
    if verb == "stop":
        if len(words) != 2:
            raise UsageError("patrol stop MISSION (the id patrol list shows)")
        return Send(Method.PATROL_STOP, None, {"mission_id": words[1]}, f"stop patrol mission {words[1]}")
    if verb == "list":
        _no_more(words[1:])
        active = bool(options.get("active"))
        return Send(Method.PATROL_LIST, None, {"active_only": active}, "patrol missions")
    raise UsageError("patrol start KIND STRETCH | patrol stop MISSION | patrol list [--active]")


def _incident(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    if len(words) not in (2, 3) or words[0] != "confirm":
        raise UsageError("incident confirm ID [NEST]")
    args: dict[str, Any] = {"incident_id": words[1]}
    summary = f"confirm incident {words[1]}"
    if len(words) == 3:
        args["nest"] = parse_nest(words[2], ctx.fleet.nest_ids())
        summary += f" with nest {args['nest']}"
    return Send(Method.INCIDENT_CONFIRM, None, args, summary)


def _maintenance(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    nest_id = _nest(ctx, words)
    if len(words) < 2 or words[1] not in ("on", "off"):
        raise UsageError("maintenance N on|off [REASON]")
    args: dict[str, Any] = {"on": words[1] == "on"}
    if len(words) > 2:
        args["reason"] = " ".join(words[2:])
    return Send(Method.MAINTENANCE_SET, nest_id, args, f"nest {nest_id} maintenance {words[1]}")


def _nests(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    _no_more(words)
    states = [to_json(ctx.fleet.state(n)) for n in ctx.fleet.nest_ids()]
    return Show(describe.nests_text(ctx.fleet, ctx.now), {"nests": [s for s in states if s is not None]})


def _status(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    if not words:
        return _nests(ctx, [], options)
    nest_id = _nest(ctx, words)
    _no_more(words[1:])
    state = ctx.fleet.state(nest_id)
    if state is None:
        return Show(f"nest {nest_id}: no state received yet", {"nest": nest_id, "state": None})
    return Show(describe.status_text(state), to_json(state))


def _log(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    events = list(ctx.fleet.events)
    if words:
        nest_id = _nest(ctx, words)
        _no_more(words[1:])
        events = [e for e in events if e.nest_id == nest_id]
    last = int(options.get("last", DEFAULT_LOG_LINES))
    if last < 1:
        raise UsageError("--last must be at least 1")
    shown = events[-last:]
    return Show(describe.events_text(shown), {"events": [to_json(e) for e in shown]})


def _help_for(registry: Registry) -> Handler:
    def handler(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
        if words:
            command = registry.get(words[0])
            if command is None:
                raise UsageError(f"no command {words[0]!r}")
            opts = "".join(f"\n  --{o.name}: {o.help}" for o in command.options)
            return Show(f"{command.usage_line()}\n  {command.help}{opts}")
        lines = [f"{c.name:<12}{c.help}" for c in registry.commands()]
        return Show("\n".join(lines), {"commands": registry.names()})

    return handler


def _quit(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Action:
    return Quit()


# quit leaves the console; log shows the events the console has seen (a one-shot run sees none)
INTERACTIVE_ONLY = frozenset({"quit", "log"})


def oneshot_names() -> list[str]:
    """The commands that also run one-shot from the shell (``dronectl launch ...``)."""
    return [name for name in build_registry().names() if name not in INTERACTIVE_ONLY]


def build_registry() -> Registry:
    r = Registry()
    target_opts = (_TO, _ALT, _SPEED)
    r.add_command("help", _help_for(r), "list the commands, or explain one", ["COMMAND"])
    r.add_command("nests", _nests, "every nest: phase, battery, altitude, speed, link, control")
    r.add_command("status", _status, "one nest in detail (blockers, weather, flight, control)", ["NEST"])
    r.add_command(
        "launch",
        _launch,
        "launch a nest's drone to a target",
        ["NEST", "to", "TARGET"],
        options=target_opts,
        usage="launch N --to LAT,LON[,ALT] | PLACE | nest M | incident ID [--alt M]  (or: launch N to ...)",
    )
    r.add_command(
        "goto",
        _goto,
        "send a flying drone to a target",
        ["NEST", "to", "TARGET"],
        options=target_opts,
        usage="goto N --to LAT,LON[,ALT] | PLACE | nest M | incident ID [--alt M]  (or: goto N to ...)",
    )
    r.add_command(
        "orbit",
        _orbit,
        "circle a point",
        ["NEST", "around", "TARGET"],
        options=(
            *target_opts,
            OptionSpec("radius", "float", "metres, default 50"),
            OptionSpec("ccw", "flag", "counter-clockwise"),
        ),
        usage="orbit N around TARGET [--radius M] [--ccw]",
    )
    r.add_command("hold", _simple(Method.HOLD, "hold"), "hold position", ["NEST"])
    r.add_command("return", _return, "fly home to the dock (return all: every drone)", ["NEST|all"])
    r.add_command(
        "land",
        _simple(Method.LAND, "land", "land nest {nest}'s drone HERE, not in its dock?"),
        "land where the drone is (asks first)",
        ["NEST"],
    )
    r.add_command("abort", _abort, "emergency stop of the flight (asks first)", ["NEST", "REASON"])
    r.add_command("speed", _speed, "set the cruise speed (m/s)", ["NEST", "MPS"])
    r.add_command(
        "say",
        _say,
        "speak through the loudspeaker (Mandarin or English)",
        ["NEST", "TEXT"],
        options=(
            OptionSpec("lang", "str", "zh or en (default: from the text)", LANGS),
            OptionSpec("stop", "flag", "stop speaking"),
        ),
        usage='say N "text" [--lang zh|en] | say N --stop',
    )
    r.add_command("play", _play, "play a recorded clip on the loudspeaker", ["NEST", "CLIP"])
    r.add_command("volume", _volume, "loudspeaker volume (percent)", ["NEST", "PCT"])
    r.add_command("light", _light, "warning light mode", ["NEST", "|".join(LIGHT_MODES)])
    r.add_command("view", _view, "the nest's live video URL (WHEP)", ["NEST"])
    r.add_command(
        "patrol",
        _patrol,
        "start, stop or list patrol missions (black ice, congestion)",
        ["start|stop|list", "black_ice|congestion|MISSION", "STRETCH"],
        options=(OptionSpec("active", "flag", "list only the active missions"),),
        usage="patrol start black_ice|congestion STRETCH | patrol stop MISSION | patrol list [--active]",
    )
    r.add_command(
        "incident",
        _incident,
        "confirm a proposed incident dispatch (commander)",
        ["confirm", "INCIDENT", "NEST"],
        usage="incident confirm ID [NEST]",
    )
    r.add_command("take", _simple(Method.CONTROL_TAKE, "take control of"), "take manual control", ["NEST"])
    r.add_command(
        "release", _simple(Method.CONTROL_RELEASE, "release control of"), "release manual control", ["NEST"]
    )
    r.add_command("maintenance", _maintenance, "maintenance mode (commander)", ["NEST", "on|off", "REASON"])
    r.add_command(
        "log",
        _log,
        "recent events (of one nest)",
        ["NEST"],
        options=(OptionSpec("last", "int", f"how many (default {DEFAULT_LOG_LINES})"),),
    )
    r.add_command("quit", _quit, "leave the console")
    return r
