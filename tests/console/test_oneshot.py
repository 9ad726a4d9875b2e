"""One-shot commands (``python -m dronectl launch ...``) against the real service, with --json and
their exit codes. Nest 3 flies, nest 5 is fought over for control, nest 7 gets bad weather and a
lost link; each test leaves its nest as it found it where it matters.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from dronectl.nest.tts import render_speech
from tests.api.conftest import free_tcp_port
from tests.conftest import REPO_ROOT
from tests.console.conftest import Service, _env
from tests.pinned import QUIET


def run_json(service: Service, *args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    done = service.oneshot(*args, "--json", **kw)
    assert done.stdout.strip(), f"no JSON on stdout (rc {done.returncode}): {done.stderr}"
    return done.returncode, json.loads(done.stdout)


def wait_for(service: Service, what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    service.watcher.wait(what, lambda _: check(), timeout_s)


def nest_state(service: Service, nest_id: int) -> dict[str, Any]:
    """The retained state as a plain MQTT client sees it (not through the console)."""
    return service.watcher.state(nest_id)


def test_usage_errors_and_missing_confirmation_need_no_broker() -> None:
    closed = f"mqtt://127.0.0.1:{free_tcp_port()}"  # nothing listens there
    base = [sys.executable, "-m", "dronectl"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*base, *args, "--broker", closed]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT, env=_env())

    bad = run("launch", "7", "--to", "43.9")
    assert bad.returncode == 2
    assert "expected LAT,LON or LAT,LON,ALT" in bad.stderr and "usage: launch" in bad.stderr
    land = run("land", "5", "--json")
    assert land.returncode == 2
    assert "add --yes" in json.loads(land.stdout)["message"]
    view = run("view", "7", "--video-url", "http://10.0.0.2:8889", "--json")
    assert view.returncode == 0
    assert json.loads(view.stdout) == {"nest": 7, "whep_url": "http://10.0.0.2:8889/whep/nests/7"}
    # and a good line with no broker: exit 6
    nothing = run("hold", "7", "--json")
    assert nothing.returncode == 6
    assert "cannot connect" in json.loads(nothing.stdout)["message"]


def test_up_says_what_the_automations_will_do_on_their_own(service: Service) -> None:
    line = service.up_line()
    assert line["clock_start"] == QUIET
    kinds = {a["kind"]: a for a in line["automations"]}
    # Sunday 14:00 in Changchun: nothing now; rush hour on Monday, the winter-morning ice watch
    assert kinds["congestion"]["enabled"] and not kinds["congestion"]["active"]
    assert kinds["congestion"]["next"] == "2026-12-07T07:00:00+08:00"
    assert kinds["black_ice"]["next"] == "2026-12-07T05:00:00+08:00"
    assert "weather station" in kinds["black_ice"]["weather_trigger"]
    # and the same in words in the log (stderr)
    assert "automations: congestion patrols over railway-station" in service.log_path.read_text("utf-8")


def test_clock_start_is_refused_with_real_nests_and_needs_an_offset() -> None:
    base = [sys.executable, "-m", "dronectl", "up", "--broker", f"mqtt://127.0.0.1:{free_tcp_port()}"]

    def up(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=30, cwd=REPO_ROOT, env=_env()
        )

    real = up("--no-sim", "--clock-start", QUIET)
    assert real.returncode == 2 and "refused with --no-sim" in real.stderr and real.stdout == ""
    naive = up("--clock-start", "2026-12-06T14:00:00")
    assert naive.returncode == 2 and "no UTC offset" in naive.stderr
    helped = up("--help")
    assert helped.returncode == 0 and "--clock-start" in helped.stdout and "training" in helped.stdout


def test_status_of_the_fleet_and_of_one_nest(service: Service) -> None:
    rc, fleet = run_json(service, "status")
    assert rc == 0
    assert [n["nest_id"] for n in fleet["nests"]] == [3, 5, 7]
    assert {n["phase"] for n in fleet["nests"]} <= {"ready", "charging", "standby"}
    rc, state = run_json(service, "status", "7")
    assert rc == 0 and state["nest_id"] == 7 and state["phase"] == nest_state(service, 7)["phase"]
    assert state["name"] == "Hongqi Street" and state["drone"]["link"] == "up"
    text = service.oneshot("status", "7")
    assert text.returncode == 0 and text.stdout.startswith("nest 7 Hongqi Street: ")
    rc, missing = run_json(service, "status", "9")
    assert rc == 2 and "there is no nest 9" in missing["message"]


def test_launch_wait_then_return_home(service: Service) -> None:
    rc, launch = run_json(service, "launch", "3", "--to", "43.8560,125.3000", "--alt", "30", "--wait")
    assert rc == 0, json.dumps(launch)
    assert launch["state"] == "succeeded" and launch["progress"][0]["state"] == "accepted"
    assert launch["result"]["flight_id"]
    assert nest_state(service, 3)["phase"] == "on_station"
    rc, back = run_json(service, "return", "3", "--wait")
    assert rc == 0, json.dumps(back)
    assert back["state"] == "succeeded"
    assert nest_state(service, 3)["flight"] is None


def test_refusals_give_their_reasons(service: Service) -> None:
    rc, goto = run_json(service, "goto", "7", "--to", "43.86,125.29")
    assert rc == 3
    assert goto["error"]["code"] == "refused" and goto["error"]["reasons"] == ["drone is ready"]
    service.sim({"op": "weather", "nest": 7, "wind_speed_mps": 14.0, "wind_gust_mps": 18.0})
    try:
        wait_for(
            service, "nest 7's weather no-go", lambda: not nest_state(service, 7)["dock"]["weather"]["go"]
        )
        rc, launch = run_json(service, "launch", "7", "to", "nest", "3")
        assert rc == 3, launch
        assert launch["state"] == "refused"
        assert any("wind" in reason for reason in launch["error"]["reasons"]), launch["error"]
        text = service.oneshot("launch", "7", "to", "nest", "3")
        assert text.returncode == 3 and "wind" in text.stderr
    finally:
        service.sim({"op": "weather", "nest": 7, "wind_speed_mps": 3.0, "wind_gust_mps": 5.0})
    wait_for(service, "nest 7's weather go", lambda: nest_state(service, 7)["dock"]["weather"]["go"])


def test_control_taken_refused_to_others_and_taken_over_by_a_commander(service: Service) -> None:
    rc, take = run_json(service, "take", "5", actor="pilot-a")
    assert rc == 0 and take["state"] == "succeeded", take
    assert take["result"]["holder"] == {"id": "pilot-a", "role": "pilot"}
    wait_for(
        service,
        "the holder in the state",
        lambda: (nest_state(service, 5)["control"] or {}).get("id") == "pilot-a",
    )

    rc, goto = run_json(service, "goto", "5", "--to", "43.85,125.22", actor="pilot-b")
    assert rc == 7, goto
    assert "under manual control of pilot-a (pilot)" in goto["error"]["message"]
    rc, steal = run_json(service, "take", "5", actor="pilot-b")
    assert rc == 7 and "pilot-a" in steal["error"]["message"]

    rc, over = run_json(service, "take", "5", actor="cmdr-z", role="commander")
    assert rc == 0, over
    assert "taken over by cmdr-z (commander) from pilot-a (pilot)" in over["message"]
    rc, _ = run_json(service, "release", "5", actor="cmdr-z", role="commander")
    assert rc == 0
    wait_for(service, "control released", lambda: nest_state(service, 5)["control"] is None)


def test_forbidden_unsupported_and_timed_out(service: Service) -> None:
    rc, hold = run_json(service, "hold", "3", actor="watcher", role="observer")
    assert rc == 8 and hold["error"]["code"] == "forbidden"
    rc, play = run_json(service, "play", "3", "siren")
    assert rc == 9 and play["error"]["code"] == "unknown_method"
    rc, late = run_json(service, "light", "3", "steady", "--timeout", "0.001")
    assert rc == 4 and late["state"] == "no_reply" and "no reply within" in late["message"]


def test_say_in_mandarin_reaches_the_loudspeaker(service: Service) -> None:
    text = "前方道路结冰，请减速慢行"
    rc, say = run_json(service, "say", "3", text)
    assert rc == 0 and say["state"] == "succeeded", say
    # rendered by espeak-ng on the service's side, played on the drone as audio of the right length
    pcm, rate = render_speech(text, "zh")
    records = service.sim({"op": "records", "nest": 3, "kind": "speaker.clip"})["records"]
    played = [r for r in records if r["kind"] == "speaker.clip"]
    assert played, records
    assert abs(played[-1]["data"]["duration_s"] - len(pcm) / 2 / rate) < 0.01
    assert played[-1]["data"]["sample_rate"] == rate


def test_lost_link_exit_code(service: Service) -> None:
    service.sim({"op": "fault", "nest": 7, "kind": "link_loss", "duration_s": 600})
    try:
        wait_for(service, "nest 7's link lost", lambda: nest_state(service, 7)["drone"]["link"] == "lost")
        rc, light = run_json(service, "light", "7", "strobe")
        assert rc == 5, light
        assert light["error"]["code"] == "link_lost"
    finally:
        service.sim({"op": "fault", "nest": 7, "kind": "clear"})
    wait_for(service, "nest 7's link back", lambda: nest_state(service, 7)["drone"]["link"] == "up")


def test_version_on_the_command_line_and_in_the_status(service: Service) -> None:
    from importlib.metadata import version

    installed = version("dronectl")
    done = subprocess.run(
        [sys.executable, "-m", "dronectl", "--version"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert done.returncode == 0 and done.stdout.strip() == f"dronectl {installed}"
    status = service.watcher.latest.get("dronectl/v1/status") or {}
    assert status.get("state") == "online" and status.get("version") == installed
