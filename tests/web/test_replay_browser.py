"""The after-action replay in headless Chromium (Debian's ``chromium``, tests/web/browser.py).

An incident as the service records it (tests/evidence: inc-1, flight f-1 of nest 7 with its
track, a recording starting at T0 + 3, a snapshot at T0 + 9) is picked in the page's list and
replayed: scrubbed to a chosen moment, the drone's marker is where the audit store's track puts
it (linear between the two samples around it), the <video> is at the recording's matching
second; played at 1x, the video's currentTime advances and stays with the replay's clock, the
timeline lights what has happened; back to live, the live map again. A commander's "Export
evidence" downloads the package, which verifies. Flight f-1 picked in the flight list, and the
range T0..T0 + 30 typed in a browser on UTC+8, are replayed the same way: the marker where the
track puts it at a scrubbed moment."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dronectl.domain.evidence import verify
from dronectl.operations.models import Actor, Role
from tests.evidence.test_evidence_package import T0, record_incident
from tests.web.browser import CHROMIUM, MESSAGE, NEST_COUNT, chromium, signed_in, wait_js
from tests.web.conftest import Web

assert CHROMIUM.exists(), "Debian's chromium is not installed: scripts/system-deps.sh installs it"

VIDEO_START = T0 + 3  # the recording's second 0: its video_recording event
CHOSEN = T0 + 5.5  # between the track's samples at T0 + 4 and T0 + 6

# where the replayed drone's marker is drawn, back through the page's own projection
MARKER = """() => {
  const g = document.querySelector('#layer-drones .drone.replay');
  if (!g) return null;
  const m = /translate\\(([-\\d.]+),([-\\d.]+)\\)/.exec(g.getAttribute('transform'));
  const p = unproject(Number(m[1]), Number(m[2]));
  return {lat: p.lat, lon: p.lon, nest: g.dataset.nest, t: window.commandCenter.replayer.t};
}"""
SNAPSHOT = """() => { const img = document.getElementById('replay-snapshot');
  return !img.hidden && img.getAttribute('src'); }"""
VIDEO = """() => {
  const v = document.getElementById('replay-video');
  return {t: v.currentTime, paused: v.paused, ready: v.readyState, src: v.getAttribute('src'),
          clock: window.commandCenter.replayer.t, error: v.error && v.error.message};
}"""


def at(track: list[Any], t: float) -> tuple[float, float]:
    """The audit track's position at ``t``: linear between the samples around it."""
    for a, b in itertools.pairwise(track):
        if a["at_unix_s"] <= t <= b["at_unix_s"]:
            k = (t - a["at_unix_s"]) / (b["at_unix_s"] - a["at_unix_s"])
            return a["lat_deg"] + (b["lat_deg"] - a["lat_deg"]) * k, a["lon_deg"] + (
                b["lon_deg"] - a["lon_deg"]
            ) * k
    raise AssertionError(f"{t} is outside the track")


async def _scrub(page: Any, t: float) -> None:
    await page.evaluate(
        """(s) => { const r = document.getElementById('replay-scrub'); r.value = String(s);
                    r.dispatchEvent(new Event('input')); }""",
        t - T0,  # the replay starts with the incident, T0
    )


@contextlib.asynccontextmanager
async def _replaying(web: Web, tmp_path: Path, role: Role) -> AsyncIterator[Any]:
    """A page signed in as ``role`` (a session cookie), inc-1 picked in the replay panel; no page error."""
    async with chromium(tmp_path / f"profile-{role.value}") as browser:
        actor = Actor(id=f"{role.value}-1", role=role)
        page = await signed_in(browser, str(web.client.make_url("/")), web.sessions, actor)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await wait_js(page, NEST_COUNT, 30, "the nests on the map")
        listed = "() => !!document.querySelector('#replay-incident option[value=\"inc-1\"]')"
        await wait_js(page, listed, 15, "inc-1 listed")
        await page.select_option("#replay-incident", "inc-1")
        yield page
        assert errors == []


async def test_an_incident_is_replayed_with_its_track_and_its_video_in_sync(
    web_api: Web, tmp_path: Path
) -> None:
    await record_incident(web_api.audit, web_api.recordings, web_api.snapshots, video_s=8)
    detail = await web_api.audit.flight("f-1")
    assert detail is not None
    track = detail["track"]
    async with _replaying(web_api, tmp_path, Role.OBSERVER) as page:
        await page.click("#btn-replay")
        await wait_js(page, "() => !!window.commandCenter.replay", 15, "the replay loaded")

        # scrubbed to the chosen moment: the marker at the recorded position
        await _scrub(page, CHOSEN)
        marker = await wait_js(page, MARKER, 10, "the replayed drone")
        assert marker["nest"] == "7" and marker["t"] == pytest.approx(CHOSEN)
        lat, lon = at(track, CHOSEN)
        assert marker["lat"] == pytest.approx(lat, abs=2e-6) and marker["lon"] == pytest.approx(lon, abs=2e-6)
        assert lat == pytest.approx(43.86175)  # three quarters of the way from T0 + 4 to T0 + 6

        # the video: the flight's recording, paused at the matching second
        offset = CHOSEN - VIDEO_START
        seek = (
            f"() => {{ const v = ({VIDEO})(); return v.ready >= 1 && Math.abs(v.t - {offset}) < 0.05 && v; }}"
        )
        video = await wait_js(page, seek, 15, "the video at the chosen moment")
        assert video["paused"] and video["src"] == "/recordings/nest07-f-1.mp4"

        # the timeline: what happened by then is lit, what had not is not
        lit = """() => [...document.querySelectorAll('#replay-log li')].map((li) =>
          [li.textContent, li.classList.contains('past')])"""
        log = dict((text.split(" ", 3)[-1], past) for text, past in await page.evaluate(lit))
        launch = next(t for t in log if "launch #7 by dispatcher (automation)" in t)
        assert log[launch] is True
        ice = next(t for t in log if t.endswith("#7 ice"))
        assert log[ice] is False
        assert await page.evaluate("() => document.getElementById('replay-snapshot').hidden")

        # played at 1x: the video's time advances, with the replay's clock and the marker
        await page.select_option("#replay-speed", "1")
        await page.click("#replay-play")
        playing = f"() => {{ const v = ({VIDEO})(); return !v.paused && v.t > {offset + 1.0} && v; }}"
        first = await wait_js(page, playing, 20, "the recording playing")
        later = await wait_js(
            page, f"() => {{ const v = ({VIDEO})(); return v.t > {first['t'] + 0.5} && v; }}", 10, "more"
        )
        for v in (first, later):
            assert v["clock"] - VIDEO_START == pytest.approx(v["t"], abs=0.3), v  # in sync
        moving = await page.evaluate(MARKER)
        lat, lon = at(track, moving["t"])
        assert moving["lat"] == pytest.approx(lat, abs=2e-6) and moving["lon"] == pytest.approx(lon, abs=2e-6)
        await page.click("#replay-play")  # pause

        # at the snapshot's moment, the picture
        await _scrub(page, T0 + 9.5)
        src = await wait_js(page, SNAPSHOT, 5, "the snapshot")
        assert src == "/snapshots/ice-n07-20251213T071502Z-3f9a1c.jpg"

        # back to live: no replayed drone, the fleet again
        await page.click("#btn-live")
        await wait_js(
            page, "() => !window.commandCenter.replay && !document.querySelector('.drone.replay')", 5, "live"
        )
        assert (
            await page.evaluate("() => getComputedStyle(document.getElementById('fleet')).display") != "none"
        )


async def test_a_commander_downloads_the_evidence_package(web_api: Web, tmp_path: Path) -> None:
    await record_incident(web_api.audit, web_api.recordings, web_api.snapshots)
    async with _replaying(web_api, tmp_path, Role.COMMANDER) as page:
        async with page.expect_download() as info:
            await page.click("#btn-evidence")
        download = await info.value
        assert download.suggested_filename == "evidence-inc-1.zip"
        data = await asyncio.to_thread(Path(await download.path()).read_bytes)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert verify({n: z.read(n) for n in z.namelist()}, "audit/rows.json").intact
        [record] = [c for c in await web_api.audit.commands() if c["method"] == "evidence.export"]
        assert (record["actor_id"], record["channel"]) == ("commander-1", "http")


# --- a flight, a time range ---------------------------------------------------------------------

REPLAYED = """() => { const r = window.commandCenter.replay;
  return r && r.data && {subject: r.data.subject, incident: r.data.incident, t0: r.t0, t1: r.t1,
                         flights: r.data.flights.map((f) => f.flight_id)}; }"""
# what the panel shows (the computed style: a rule's display must not undo [hidden])
SHOWN = """() => Object.fromEntries(
  ['btn-evidence', 'replay-pick-incident', 'replay-pick-flight', 'replay-pick-range']
    .map((id) => [id, getComputedStyle(document.getElementById(id)).display !== 'none']))"""


async def _scrub_from(page: Any, t: float) -> None:
    """The slider to ``t``: its value is the time since the replay's start (its t0)."""
    await page.evaluate(
        """(t) => { const r = document.getElementById('replay-scrub');
                    r.value = String(t - window.commandCenter.replayer.t0);
                    r.dispatchEvent(new Event('input')); }""",
        t,
    )


async def _marker_at(page: Any, track: list[Any], t: float) -> None:
    await _scrub_from(page, t)
    marker = await wait_js(page, MARKER, 10, "the replayed drone")
    assert marker["nest"] == "7" and marker["t"] == pytest.approx(t)
    lat, lon = at(track, t)
    assert marker["lat"] == pytest.approx(lat, abs=2e-6) and marker["lon"] == pytest.approx(lon, abs=2e-6)


async def test_a_flight_picked_in_the_list_is_replayed_on_its_track(web_api: Web, tmp_path: Path) -> None:
    await record_incident(web_api.audit, web_api.recordings, web_api.snapshots, video_s=8)
    detail = await web_api.audit.flight("f-1")
    assert detail is not None
    async with _replaying(web_api, tmp_path, Role.PILOT) as page:
        assert await page.evaluate(SHOWN) == {
            "btn-evidence": True,
            "replay-pick-incident": True,
            "replay-pick-flight": False,
            "replay-pick-range": False,
        }
        await page.select_option("#replay-kind", "flight")
        assert await page.evaluate(SHOWN) == {
            "btn-evidence": False,  # an incident's package only
            "replay-pick-incident": False,
            "replay-pick-flight": True,
            "replay-pick-range": False,
        }
        listed = "() => !!document.querySelector('#replay-flight option[value=\"f-1\"]')"
        await wait_js(page, listed, 15, "f-1 listed")
        await page.select_option("#replay-flight", "f-1")
        await page.click("#btn-replay")
        replayed = await wait_js(page, REPLAYED, 15, "the flight's replay loaded")
        assert replayed["subject"] == {"kind": "flight", "flight_id": "f-1", "nest_id": 7}
        assert replayed["incident"] is None and replayed["flights"] == ["f-1"]
        # from the launch command (T0 + 1) to the flight's end (T0 + 20)
        assert replayed["t0"] == T0 + 1 and replayed["t1"] == pytest.approx(T0 + 20.001)
        await _marker_at(page, detail["track"], CHOSEN)
        await _marker_at(page, detail["track"], T0 + 8.5)
        clock = await page.evaluate("() => document.getElementById('replay-clock').textContent")
        assert clock.endswith("+0:07.5")  # since the replay's start, T0 + 1
        offset = T0 + 8.5 - VIDEO_START
        seek = (
            f"() => {{ const v = ({VIDEO})(); return v.ready >= 1 && Math.abs(v.t - {offset}) < 0.05 && v; }}"
        )
        video = await wait_js(page, seek, 15, "the flight's video at that moment")
        assert video["src"] == "/recordings/nest07-f-1.mp4"


async def test_a_time_range_in_local_time_is_replayed(web_api: Web, tmp_path: Path) -> None:
    await record_incident(web_api.audit, web_api.recordings, web_api.snapshots)
    detail = await web_api.audit.flight("f-1")
    assert detail is not None
    # the browser in Changchun's time (UTC+8): T0 is 15:15:00 there
    async with chromium(tmp_path / "profile", timezone_id="Asia/Shanghai") as browser:
        actor = Actor(id="observer-1", role=Role.OBSERVER)
        page = await signed_in(browser, str(web_api.client.make_url("/")), web_api.sessions, actor)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await wait_js(page, "() => !document.getElementById('replay').hidden", 30, "the replay panel")
        await page.select_option("#replay-kind", "range")
        await page.fill("#replay-since", "2025-12-13T15:15:30")
        await page.fill("#replay-until", "2025-12-13T15:15:00")
        await page.click("#btn-replay")
        refused = await wait_js(page, MESSAGE, 10, "the reversed range refused", ["refused", "replay of"])
        assert "until must be after since" in refused
        assert await page.evaluate("() => !window.commandCenter.replay")

        await page.fill("#replay-since", "2025-12-13T15:15:00")
        await page.fill("#replay-until", "2025-12-13T15:15:30")
        await page.click("#btn-replay")
        replayed = await wait_js(page, REPLAYED, 15, "the range's replay loaded")
        assert replayed["subject"] == {"kind": "range", "since_unix_s": T0, "until_unix_s": T0 + 30}
        assert replayed["incident"] is None and replayed["flights"] == ["f-1"]
        assert (replayed["t0"], replayed["t1"]) == (T0, T0 + 30)
        await _marker_at(page, detail["track"], CHOSEN)
        assert errors == []
