"""Tab completion: commands, nest ids, places, incidents, modes and options (pure)."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from dronectl.domain.config import load_config
from dronectl.transports.console.commands import build_registry
from dronectl.transports.console.completion import ConsoleCompleter, Sources, complete
from dronectl.transports.console.places import Places
from tests.console.helpers import add_incident, fleet

REGISTRY = build_registry()
MODEL = fleet()
add_incident(MODEL, "INC-17", 43.871, 125.333)
SOURCES = Sources(MODEL, Places.from_config(load_config()))


def texts(line: str) -> list[str]:
    return [s.text for s in complete(REGISTRY, SOURCES, line)]


def test_command_names() -> None:
    assert texts("lau") == ["launch"]
    assert texts("l") == ["land", "launch", "light", "log"]
    assert "status" in texts("") and "quit" in texts("")
    assert texts("xyz") == []


def test_nest_ids_with_their_names() -> None:
    assert texts("launch ") == ["3", "5", "7"]
    assert texts("status 5") == ["5"]
    suggestions = complete(REGISTRY, SOURCES, "take ")
    assert (suggestions[0].text, suggestions[0].meta) == ("3", "Nest 3 (ready)")
    assert texts("return ") == ["3", "5", "7", "all"]


def test_targets_places_nests_and_incidents() -> None:
    after_nest = texts("launch 7 ")
    assert after_nest[0] == "to" and "nanhu-park" in after_nest and "incident" in after_nest
    assert texts("launch 7 to nan") == ["nanhu-park"]
    assert texts("launch 7 nan") == ["nanhu-park"]  # 'to' may be left out
    assert texts("launch 7 to incident ") == ["INC-17"]
    assert texts("launch 7 to nest ") == ["3", "5", "7"]
    assert texts("orbit 7 around sheng") == ["shengli-park"]
    assert texts("launch 7 to nanhu-park ") == []
    assert texts("launch 7 --to nan") == ["nanhu-park"]


def test_modes_and_options() -> None:
    assert texts("light 5 ") == ["off", "steady", "strobe", "police"]
    assert texts("light 5 st") == ["steady", "strobe"]
    assert texts("say 5 hello --") == ["--lang", "--stop"]
    assert texts("say 5 hello --lang ") == ["zh", "en"]
    assert texts("launch 7 to nanhu-park --alt ") == []
    assert texts("patrol ") == ["start", "stop", "list"]
    assert texts("patrol start ") == ["black_ice", "congestion"]
    assert texts("incident ") == ["confirm"]
    assert texts("help la") == ["land", "launch"]


def test_prompt_toolkit_completer_replaces_the_word_and_adds_a_space() -> None:
    completer = ConsoleCompleter(REGISTRY, lambda: SOURCES)
    got = list(
        completer.get_completions(Document("launch 7 to nanhu"), CompleteEvent(completion_requested=True))
    )
    assert [(c.text, c.start_position) for c in got] == [("nanhu-park ", -5)]
