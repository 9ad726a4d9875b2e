"""Parsing a console line: words, options, nest numbers, targets. Pure; every error is a UsageError.

A target is one of::

    43.90,125.30          latitude,longitude (degrees)
    43.90,125.30,60       ... and altitude in metres above the nest's pad
    nanhu-park            a named place or a nest's name (see places)
    nest 3                nest 3's pad (one word: nest:3)
    incident INC-17       the position of an incident the command center reported (incident:INC-17)
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dronectl.domain.errors import DronectlError
from dronectl.domain.limits import MAX_NEST_ID
from dronectl.operations.models import Incident
from dronectl.transports.console.places import Places


class UsageError(DronectlError):
    """The line cannot be understood; the message says what is wrong (and how to write it)."""


def split_words(line: str) -> list[str]:
    """Shell-like words: quotes keep spaces (``say 5 "slow down"``)."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot read the line: {exc}") from None


@dataclass(frozen=True)
class OptionSpec:
    """``--name`` with a value (``kind`` float/int/str) or a flag (``kind`` "flag")."""

    name: str
    kind: str  # "float", "int", "str", "flag"
    help: str = ""
    choices: tuple[str, ...] = ()


OptionValue = float | int | str | bool


def split_options(
    words: Sequence[str], specs: Sequence[OptionSpec]
) -> tuple[list[str], dict[str, OptionValue]]:
    """(positional words, options by name without dashes). ``--name=value`` works too."""
    by_name = {spec.name: spec for spec in specs}
    positional: list[str] = []
    options: dict[str, OptionValue] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("--") or _is_number(word):
            positional.append(word)
            continue
        name, has_value, inline = word[2:].partition("=")
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(f"--{s.name}" for s in specs) or "none"
            raise UsageError(f"unknown option --{name} (options: {known})")
        if spec.kind == "flag":
            if has_value:
                raise UsageError(f"--{name} takes no value")
            options[name] = True
            continue
        if has_value:
            raw = inline
        elif index < len(words):
            raw = words[index]
            index += 1
        else:
            raise UsageError(f"--{name} needs a value")
        options[name] = _convert(spec, raw)
    return positional, options


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _convert(spec: OptionSpec, raw: str) -> OptionValue:
    if spec.choices and raw not in spec.choices:
        raise UsageError(f"--{spec.name} must be one of {', '.join(spec.choices)}, not {raw!r}")
    if spec.kind == "float":
        return parse_float(raw, f"--{spec.name}")
    if spec.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"--{spec.name} needs a whole number, not {raw!r}") from None
    return raw


def parse_float(raw: str, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{what} needs a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{what} needs a finite number, not {raw!r}")
    return value


def parse_nest(raw: str, known: Sequence[int] = ()) -> int:
    """A nest number (1..MAX_NEST_ID); when ``known`` is given it must be one of them."""
    if not raw.isdigit() or raw.startswith("0"):
        raise UsageError(f"expected a nest number, not {raw!r}")
    nest_id = int(raw)
    if not 1 <= nest_id <= MAX_NEST_ID:
        raise UsageError(f"nest numbers go from 1 to {MAX_NEST_ID}, not {nest_id}")
    if known and nest_id not in known:
        raise UsageError(f"there is no nest {nest_id} (nests: {', '.join(map(str, known))})")
    return nest_id


@dataclass(frozen=True)
class Target:
    lat: float
    lon: float
    alt_m: float | None  # None: the caller's default
    label: str  # how to name it to the operator


def parse_lat_lon(raw: str) -> Target:
    parts = raw.split(",")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"expected LAT,LON or LAT,LON,ALT, not {raw!r}")
    lat = parse_float(parts[0], "latitude")
    lon = parse_float(parts[1], "longitude")
    alt = parse_float(parts[2], "altitude") if len(parts) == 3 else None
    if not -90.0 <= lat <= 90.0:
        raise UsageError(f"latitude must be within -90..90, not {lat:g}")
    if not -180.0 <= lon <= 180.0:
        raise UsageError(f"longitude must be within -180..180, not {lon:g}")
    return Target(lat, lon, alt, f"{lat:.5f},{lon:.5f}")


def parse_target(
    words: Sequence[str], places: Places, incidents: Mapping[str, Incident]
) -> tuple[Target, list[str]]:
    """A target at the start of ``words`` (an optional leading ``to``/``at``/``around`` is skipped);
    returns it and the words left over."""
    rest = list(words)
    if rest and rest[0] in ("to", "at", "around"):
        rest = rest[1:]
    if rest and rest[0].startswith(("incident:", "nest:")):  # one-word forms, for --to
        kind, _, name = rest[0].partition(":")
        rest = [kind, name, *rest[1:]]
    if not rest:
        raise UsageError("where to? give LAT,LON[,ALT], a place name, 'nest N' or 'incident ID'")
    head = rest[0]
    if head == "incident":
        if len(rest) < 2:
            raise UsageError("which incident? 'incident ID'")
        incident = incidents.get(rest[1])
        if incident is None:
            seen = ", ".join(sorted(incidents)) or "none reported since the console started"
            raise UsageError(f"unknown incident {rest[1]!r} (incidents: {seen})")
        pos = incident.position
        return Target(pos.lat, pos.lon, None, f"incident {incident.id} ({incident.kind})"), rest[2:]
    if head == "nest":
        if len(rest) < 2:
            raise UsageError("which nest? 'nest N'")
        nest_id = parse_nest(rest[1])
        pad = places.nest_pad(nest_id)
        if pad is None:
            raise UsageError(f"nest {nest_id} is not in the city config")
        return Target(pad.lat, pad.lon, None, f"nest {nest_id} ({pad.name})"), rest[2:]
    if "," in head or _is_number(head):
        return parse_lat_lon(head), rest[1:]
    place = places.find(head)
    if place is None:
        raise UsageError(f"unknown place {head!r}; try Tab for names, or give LAT,LON")
    return Target(place.lat, place.lon, None, place.name), rest[1:]


def guess_lang(text: str) -> str:
    """``zh`` when the text has any CJK character, else ``en``."""
    return "zh" if any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text) else "en"
