"""Tab completion from the registry's ``completions``: commands, nest ids, places, incidents, modes.

:func:`complete` is pure (the text before the cursor in, suggestions out); :class:`ConsoleCompleter`
adapts it to prompt_toolkit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from dronectl.transports.console.commands import Command, Registry
from dronectl.transports.console.fleet import FleetModel
from dronectl.transports.console.places import Places

_CONNECTORS = frozenset({"to", "around", "at"})
_TARGET_KEYWORDS = ("nest", "incident")


@dataclass(frozen=True)
class Suggestion:
    text: str  # replaces the word being typed
    replace_chars: int  # how many characters before the cursor it replaces
    meta: str = ""


@dataclass(frozen=True)
class Sources:
    """Where the dynamic completions come from."""

    fleet: FleetModel
    places: Places


def _values(spec: str, previous: str | None, registry: Registry, src: Sources) -> list[tuple[str, str]]:
    """(candidate, meta) pairs for one positional spec."""
    out: list[tuple[str, str]] = []
    for alt in spec.split("|"):
        if alt == "NEST":
            for nest_id in src.fleet.nest_ids():
                state = src.fleet.state(nest_id)
                meta = f"{state.name} ({state.phase.value})" if state is not None else ""
                out.append((str(nest_id), meta))
        elif alt == "TARGET":
            if previous == "incident":
                out.extend((i, inc.kind) for i, inc in sorted(src.fleet.incidents.items()))
            elif previous == "nest":
                out.extend(_values("NEST", None, registry, src))
            else:
                out.extend((slug, src.places.by_slug[slug].name) for slug in src.places.slugs())
                out.extend((word, "then its id/number") for word in _TARGET_KEYWORDS)
        elif alt == "COMMAND":
            out.extend((name, "") for name in registry.names())
        elif alt.islower():
            out.append((alt, ""))
        # other upper-case placeholders (TEXT, CLIP, PCT, MPS, REASON, ROUTE): free input
    return out


def _expected(command: Command, positional: Sequence[str]) -> tuple[str | None, str | None]:
    """The spec of the next positional word, and the word before it when inside a TARGET."""
    specs = list(command.completions)
    index = 0
    words = list(positional)
    pos = 0
    while pos < len(words):
        if index >= len(specs):
            return None, None
        spec = specs[index]
        word = words[pos]
        if spec in _CONNECTORS and word != spec:
            index += 1  # optional connector left out
            continue
        if spec == "TARGET" and word in _TARGET_KEYWORDS:
            if pos + 1 == len(words):
                return "TARGET", word  # completing the id after 'nest'/'incident'
            pos += 2
            index += 1
            continue
        pos += 1
        index += 1
    if index >= len(specs):
        return None, None
    spec = specs[index]
    if spec in _CONNECTORS and index + 1 < len(specs):
        return f"{spec}|{specs[index + 1]}", None
    return spec, None


def complete(registry: Registry, src: Sources, text: str) -> list[Suggestion]:
    words = text.split()
    current = "" if not text or text[-1].isspace() else words[-1]
    prior = words if current == "" else words[:-1]
    if not prior:
        return [Suggestion(name, len(current), "") for name in registry.names() if name.startswith(current)]
    command = registry.get(prior[0])
    if command is None:
        return []
    options = {f"--{o.name}": o for o in command.options}
    if current.startswith("-"):
        return [
            Suggestion(name, len(current), o.help) for name, o in options.items() if name.startswith(current)
        ]
    last = prior[-1]
    if last in options and options[last].kind != "flag":
        option = options[last]
        if option.choices:
            candidates: Iterable[tuple[str, str]] = ((c, "") for c in option.choices)
        elif option.name == "to":
            candidates = _values("TARGET", None, registry, src)
        elif option.name == "nest":
            candidates = _values("NEST", None, registry, src)
        else:
            return []
        return _filter(candidates, current)
    positional: list[str] = []
    skip = False
    for word in prior[1:]:
        if skip:
            skip = False
        elif word in options:
            skip = options[word].kind != "flag"
        else:
            positional.append(word)
    spec, previous = _expected(command, positional)
    if spec is None:
        return []
    return _filter(_values(spec, previous, registry, src), current)


def _filter(candidates: Iterable[tuple[str, str]], current: str) -> list[Suggestion]:
    low = current.lower()
    return [Suggestion(c, len(current), meta) for c, meta in candidates if c.lower().startswith(low)]


class ConsoleCompleter(Completer):
    def __init__(self, registry: Registry, sources: Callable[[], Sources]) -> None:
        self.registry = registry
        self.sources = sources

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        for s in complete(self.registry, self.sources(), document.text_before_cursor):
            # a trailing space, as shells do: the next word can be typed (or completed) at once
            yield Completion(
                s.text + " ", start_position=-s.replace_chars, display=s.text, display_meta=s.meta
            )
