"""The 13 December scenario, run with the flights' recorder on, then replayed in headless Chromium
(Debian's ``chromium``) from what the run left: its audit store, its recordings directory and the
lookout's snapshots, served by the page's own routes (tests/web/conftest.py ``serving``) over the
same service. Nothing is made up for the replay: the incident is the one the command center
reported over MQTT, the track is nest 3's flight as the service recorded it, the video is the
recorder's file.

Scrubbed to a chosen moment of the flight, the drone's marker is where the audit store's track
puts it (linear between the two samples around it) and the <video> shows the recording at the
matching second; played at 1x, the video advances with the replay's clock."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import av
import pytest

from dronectl.domain.evidence_timeline import recordings
from dronectl.domain.geo import GeoPoint, distance_m
from dronectl.operations.models import Actor, Role
from tests.system import test_black_ice_scenario as december
from tests.system.test_black_ice_recorded import recordings_dir
from tests.system.test_black_ice_scenario import (
    Scenario,
    mosquitto_port,
    nest_ids,
    scenario,
    sim_speed,
    system,
    system_config,
)
from tests.web.browser import CHROMIUM, chromium, signed_in, wait_js
from tests.web.conftest import serving
from tests.web.test_replay_browser import MARKER, VIDEO

__all__ = ["mosquitto_port", "nest_ids", "recordings_dir", "scenario", "sim_speed", "system", "system_config"]

assert CHROMIUM.exists(), "Debian's chromium is not installed: scripts/system-deps.sh installs it"

CHOSEN_FRACTION = 0.6  # the chosen moment: this far from one track sample to the next


def at(track: list[dict[str, Any]], t: float) -> tuple[float, float]:
    """The audit track's position at ``t``: linear between the samples around it."""
    for a, b in itertools.pairwise(track):
        if a["at_unix_s"] <= t <= b["at_unix_s"]:
            span = b["at_unix_s"] - a["at_unix_s"]
            k = (t - a["at_unix_s"]) / span if span > 0 else 0.0
            return (
                a["lat_deg"] + (b["lat_deg"] - a["lat_deg"]) * k,
                a["lon_deg"] + (b["lon_deg"] - a["lon_deg"]) * k,
            )
    raise AssertionError(f"{t} is outside the track")


async def test_the_december_incident_is_replayed_with_the_drone_and_its_video(
    scenario: Scenario, recordings_dir: Path, tmp_path: Path
) -> None:
    await december.test_13_december_black_ice_at_an_accident(scenario)
    audit = scenario.system.fleet.audit
    [incident] = await audit.incidents()
    incident_id = incident["command_id"]
    [flight] = await audit.flights(nest_id=3)
    detail = await audit.flight(flight["flight_id"])
    assert detail is not None
    [(_, video_path, video_start)] = recordings({"flights": [detail]})
    video = Path(video_path)

    # the chosen moment: in the flight, in the video recorded so far (the recorder goes on while
    # the drone holds over the ice), between two samples of the track
    held_s = recorded_s(video)
    track = [p for p in detail["track"] if video_start + 1.0 < p["at_unix_s"] < video_start + held_s - 1.0]
    assert len(track) >= 3, f"{len(track)} track samples in the {held_s:.1f} s recorded"
    # where the drone moved most between two samples: a marker merely near the track fails there
    a, b = max(itertools.pairwise(track), key=lambda ab: _moved_m(*ab))
    assert _moved_m(a, b) > 5.0, "the drone never moved while it was recorded"
    chosen = a["at_unix_s"] + CHOSEN_FRACTION * (b["at_unix_s"] - a["at_unix_s"])

    async with (
        serving(
            scenario.system.config,
            scenario.api,
            audit,
            recordings_dir,
            tmp_path / "snapshots",
            tmp_path / "users",
        ) as web,
        chromium(tmp_path / "profile") as browser,
    ):
        page = await signed_in(
            browser, str(web.client.make_url("/")), web.sessions, Actor(id="observer-1", role=Role.OBSERVER)
        )
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        listed = f"() => !!document.querySelector('#replay-incident option[value=\"{incident_id}\"]')"
        await wait_js(page, listed, 30, f"{incident_id} listed")
        await page.select_option("#replay-incident", incident_id)
        await page.click("#btn-replay")
        await wait_js(page, "() => !!window.commandCenter.replay", 15, "the replay loaded")

        t0 = await page.evaluate("() => window.commandCenter.replayer.t0")
        await page.evaluate(
            """(s) => { const r = document.getElementById('replay-scrub'); r.value = String(s);
                        r.dispatchEvent(new Event('input')); }""",
            round(chosen - t0, 1),
        )
        marker = await wait_js(page, MARKER, 10, "the replayed drone")
        t = marker["t"]  # the scrub bar's step (0.1 s) rounds the chosen moment
        assert marker["nest"] == "3" and t == pytest.approx(chosen, abs=0.06)
        lat, lon = at(detail["track"], t)
        assert marker["lat"] == pytest.approx(lat, abs=2e-6) and marker["lon"] == pytest.approx(lon, abs=2e-6)

        # the video: the flight's recording, paused at the matching second
        offset = t - video_start
        seek = (
            f"() => {{ const v = ({VIDEO})(); return v.ready >= 1 && Math.abs(v.t - {offset}) < 0.05 && v; }}"
        )
        shown = await wait_js(page, seek, 20, "the video at the chosen moment")
        assert shown["paused"] and shown["src"] == f"/recordings/{video.name}"

        # played at 1x: the recording plays on from there, the marker on the track with it
        await page.select_option("#replay-speed", "1")
        await page.click("#replay-play")
        playing = f"() => {{ const v = ({VIDEO})(); return !v.paused && v.t > {offset + 0.5} && v; }}"
        played = await wait_js(page, playing, 20, "the recording playing")
        assert played["clock"] - video_start == pytest.approx(played["t"], abs=0.3), played  # in sync
        moving = await page.evaluate(MARKER)
        lat, lon = at(detail["track"], moving["t"])
        assert moving["lat"] == pytest.approx(lat, abs=2e-6) and moving["lon"] == pytest.approx(lon, abs=2e-6)
        await page.click("#replay-play")  # pause
        assert errors == []


def _moved_m(a: dict[str, Any], b: dict[str, Any]) -> float:
    return distance_m(GeoPoint(a["lat_deg"], a["lon_deg"]), GeoPoint(b["lat_deg"], b["lon_deg"]))


def recorded_s(path: Path) -> float:
    """How many seconds of video the (still growing) fragmented MP4 holds now: its last frame's
    time (PyAV reads the fragments written so far)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        last = max((p.pts for p in container.demux(stream) if p.pts is not None), default=0)
        assert stream.time_base is not None
        return float(last * stream.time_base)
