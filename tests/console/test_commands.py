"""The console's command grammar: every command parsed to the request it sends (or the text it shows)."""

from __future__ import annotations

import pytest

from dronectl.operations.models import Actor, Method, Phase, Role
from dronectl.transports.console.commands import Context, Quit, Send, Show, build_registry
from dronectl.transports.console.parsing import OptionSpec, OptionValue, UsageError, guess_lang, split_options
from tests.console.helpers import TOPICS, add_incident, context, fleet, state

REGISTRY = build_registry()


def send(line: str) -> Send:
    action = REGISTRY.parse(line, context())
    assert isinstance(action, Send), action
    return action


def refused(line: str) -> str:
    with pytest.raises(UsageError) as info:
        REGISTRY.parse(line, context())
    return str(info.value)


def test_launch_to_coordinates_with_default_and_given_altitude() -> None:
    action = send("launch 7 to 43.90,125.30")
    assert action == Send(
        Method.LAUNCH,
        7,
        {"target": {"lat": 43.90, "lon": 125.30, "alt_m": 60.0}},
        "launch nest 7 to 43.90000,125.30000 at 60 m",
    )
    assert send("launch 7 to 43.90,125.30,45").args["target"]["alt_m"] == 45.0
    assert send("launch 7 43.90,125.30 --alt 80").args["target"]["alt_m"] == 80.0
    assert send("launch 7 --to 43.90,125.30 --alt=80 --speed 12").args == {
        "target": {"lat": 43.90, "lon": 125.30, "alt_m": 80.0},
        "speed_mps": 12.0,
    }


def test_launch_to_named_place_nest_and_incident() -> None:
    park = send("launch 3 to nanhu-park").args["target"]
    assert (park["lat"], park["lon"]) == (43.85420, 125.29870)
    assert (
        send('launch 3 to "Nanhu Park"').args
        == send("launch 3 to NANHU_PARK").args
        == send("launch 3 to nanhu-park").args
    )
    pad = send("launch 5 to nest 7").args["target"]
    assert (pad["lat"], pad["lon"]) == (43.86500, 125.28700)
    assert send("launch 5 --to nest:7").args == send("launch 5 to nest 7").args
    landmark = send("launch 5 to shengli-park").args["target"]
    assert (landmark["lat"], landmark["lon"]) == (43.9010, 125.3200)

    model = fleet()
    add_incident(model, "INC-17", 43.871, 125.333)
    action = REGISTRY.parse("launch 3 to incident INC-17", context(model))
    assert isinstance(action, Send)
    assert action.args["target"] == {"lat": 43.871, "lon": 125.333, "alt_m": 60.0}
    assert "incident INC-17 (traffic_accident)" in action.summary
    assert REGISTRY.parse("launch 3 --to incident:INC-17", context(model)) == action


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("launch", "which nest?"),
        ("launch seven to 43.9,125.3", "expected a nest number, not 'seven'"),
        ("launch 9 to 43.9,125.3", "there is no nest 9 (nests: 3, 5, 7)"),
        ("launch 7", "where to?"),
        ("launch 7 to 43.9", "expected LAT,LON or LAT,LON,ALT, not '43.9'"),
        ("launch 7 to 95,125.3", "latitude must be within -90..90"),
        ("launch 7 to 43.9,nan", "longitude needs a finite number"),
        ("launch 7 to atlantis", "unknown place 'atlantis'"),
        ("launch 7 to incident INC-1", "unknown incident 'INC-1'"),
        ("launch 7 to 43.9,125.3,50 --alt 60", "altitude given twice"),
        ("launch 7 to 43.9,125.3 --alt", "--alt needs a value"),
        ("launch 7 to 43.9,125.3 --alt high", "--alt needs a number, not 'high'"),
        ("launch 7 to 43.9,125.3 --fast", "unknown option --fast"),
        ("launch 7 to 43.9,125.3 extra", "unexpected 'extra'"),
        ("launch 7 to 43.9,125.3 --to 43.8,125.2", "give the target once"),
        ("light 7 disco", "light mode is one of off, steady, strobe, police"),
        ("volume 7 140", "volume is a whole percentage"),
        ("say 7", "what to say?"),
        ("say 7 hello --lang fr", "--lang must be one of zh, en"),
        ("speed 7 40", "speed must be above 0 and at most 25"),
        ("patrol begin route-1", "patrol start KIND STRETCH | patrol stop MISSION | patrol list"),
        ("patrol start snow s1", "patrol start KIND STRETCH (KIND: black_ice, congestion)"),
        ("patrol stop", "patrol stop MISSION"),
        ("incident approve INC-1", "incident confirm ID [NEST]"),
        ("incident confirm INC-1 99", "99"),
        ("lanch 7", "unknown command 'lanch' (did you mean land, launch?)"),
        ('say 7 "unterminated', "cannot read the line"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, expected: str) -> None:
    assert expected in refused(line)


def test_usage_is_shown_with_the_error() -> None:
    assert "usage: launch N --to LAT,LON[,ALT] | PLACE | nest M | incident ID" in refused("launch 7")


def test_flight_and_payload_commands() -> None:
    assert send("goto 5 to 43.86,125.22 --alt 50").method == Method.GOTO
    orbit = send("orbit 5 around nest 5 --radius 80 --ccw --speed 6")
    assert orbit.method == Method.ORBIT
    assert orbit.args == {
        "center": {"lat": 43.8456, "lon": 125.214, "alt_m": 60.0},
        "radius_m": 80.0,
        "clockwise": False,
        "speed_mps": 6.0,
    }
    assert send("hold 5") == Send(Method.HOLD, 5, {}, "hold nest 5")
    assert send("return 5") == Send(Method.RETURN_HOME, 5, {}, "return nest 5 home")
    everyone = send("return all black ice")
    assert (everyone.method, everyone.nest_id, everyone.args) == (
        Method.RETURN_ALL,
        None,
        {"reason": "black ice"},
    )
    assert everyone.confirm is not None
    assert send("speed 5 8.5").args == {"speed_mps": 8.5}
    assert send("light 5 police").args == {"mode": "police"}
    assert send("play 5 siren").args == {"clip": "siren"}
    assert send("volume 5 80").args == {"volume_pct": 80}
    assert send("take 5").method == Method.CONTROL_TAKE
    assert send("release 5").method == Method.CONTROL_RELEASE
    assert send("maintenance 5 on new rotor").args == {"on": True, "reason": "new rotor"}
    patrol = send("patrol start black_ice ring-road")
    assert (patrol.method, patrol.nest_id, patrol.args) == (
        Method.PATROL_START,
        None,
        {"kind": "black_ice", "stretch_id": "ring-road"},
    )
    stop = send("patrol stop patrol-ice-ring-road-1")
    assert (stop.method, stop.args) == (Method.PATROL_STOP, {"mission_id": "patrol-ice-ring-road-1"})
    assert send("patrol list --active").args == {"active_only": True}
    assert send("patrol list").args == {"active_only": False}
    confirm = send("incident confirm INC-17 5")
    assert (confirm.method, confirm.nest_id, confirm.args) == (
        Method.INCIDENT_CONFIRM,
        None,
        {"incident_id": "INC-17", "nest": 5},
    )
    assert send("incident confirm INC-17").args == {"incident_id": "INC-17"}


def test_say_guesses_the_language_and_keeps_the_text() -> None:
    zh = send('say 5 "前方道路结冰，请减速慢行"')
    assert zh.args == {"text": "前方道路结冰，请减速慢行", "lang": "zh"}
    assert send("say 5 slow down, black ice ahead").args == {
        "text": "slow down, black ice ahead",
        "lang": "en",
    }
    assert send('say 5 "注意 slow down" --lang en').args["lang"] == "en"
    assert send("say 5 --stop") == Send(Method.SPEAKER_STOP, 5, {}, "nest 5 speaker stop")
    assert guess_lang("请减速") == "zh" and guess_lang("slow") == "en"


def test_dangerous_commands_ask_first_and_safe_ones_do_not() -> None:
    assert send("land 5").confirm == "land nest 5's drone HERE, not in its dock?"
    assert "EMERGENCY" in (send("abort 5 bird strike").confirm or "")
    assert send("abort 5 bird strike").args == {"reason": "bird strike"}
    for safe in ("hold 5", "return 5", "launch 5 to nest 5", "light 5 strobe", "take 5"):
        assert send(safe).confirm is None, safe


def test_view_status_nests_log_help_quit() -> None:
    view = REGISTRY.parse("view 7", context())
    assert view == Show(
        "nest 7 live video (WHEP): http://video.local:8889/whep/nests/7",
        {"nest": 7, "whep_url": "http://video.local:8889/whep/nests/7"},
    )
    model = fleet()
    held = state(5, Phase.ON_STATION, holder=Actor(id="pilot-b", role=Role.PILOT), alt_m=60.0)
    model.apply(TOPICS.nest_state(5), held.model_dump_json().encode())
    status = REGISTRY.parse("status 5", context(model))
    assert isinstance(status, Show)
    assert "nest 5 Nest 5: on_station" in status.text
    assert "control: pilot-b (pilot)" in status.text
    assert isinstance(status.data, dict) and status.data["control"] == {"id": "pilot-b", "role": "pilot"}
    nests = REGISTRY.parse("nests", context(model))
    assert isinstance(nests, Show) and len(nests.text.splitlines()) == 3
    assert "control pilot-b (pilot)" in nests.text.splitlines()[1]
    assert REGISTRY.parse("log 5 --last 3", context(model)) == Show("no events yet", {"events": []})
    help_all = REGISTRY.parse("help", context())
    assert isinstance(help_all, Show) and "launch" in help_all.text and "light" in help_all.text
    help_say = REGISTRY.parse("help say", context())
    assert isinstance(help_say, Show) and "--lang" in help_say.text
    assert REGISTRY.parse("quit", context()) == Quit()
    assert REGISTRY.parse("   ", context()) is None


def test_registry_add_command_like_mavproxy() -> None:
    registry = build_registry()

    def ping(ctx: Context, words: list[str], options: dict[str, OptionValue]) -> Show:
        return Show("pong " + " ".join(words))

    registry.add_command("ping", ping, "answer pong", ["NEST"])
    assert registry.parse("ping 3", context()) == Show("pong 3")
    assert registry.get("ping") is not None and registry.get("ping").help == "answer pong"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="registered twice"):
        registry.add_command("ping", ping, "again")


def test_split_options() -> None:
    specs = [OptionSpec("alt", "float"), OptionSpec("ccw", "flag"), OptionSpec("n", "int")]
    assert split_options(["a", "--alt", "5", "--ccw", "-3", "--n=4"], specs) == (
        ["a", "-3"],
        {"alt": 5.0, "ccw": True, "n": 4},
    )
    with pytest.raises(UsageError, match="takes no value"):
        split_options(["--ccw=yes"], specs)
    with pytest.raises(UsageError, match="whole number"):
        split_options(["--n", "4.5"], specs)


def test_commands_for_observers_still_parse_the_service_decides() -> None:
    observer = Actor(id="watcher", role=Role.OBSERVER)
    action = REGISTRY.parse("launch 3 to nest 3", context(actor=observer))
    assert isinstance(action, Send) and action.method == Method.LAUNCH
