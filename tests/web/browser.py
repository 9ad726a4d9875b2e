"""Headless Chromium for the page tests: Debian's ``/usr/bin/chromium`` driven by Playwright's
protocol client (``pip install playwright``; never ``playwright install``, never a downloaded
browser), a fresh profile per test, and small helpers that ask the page what it shows.

The page's Content-Security-Policy forbids eval, so conditions are polled with ``page.evaluate``
of a function (which the protocol runs without eval) rather than with ``wait_for_function``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# a synthetic microphone (a beep) and no permission prompt, for talk-back
FAKE_MICROPHONE_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

# where a point of the map is on the screen (the page's own projection and the SVG's transform)
TO_SCREEN = """([lat, lon]) => {
  const [x, y] = project(lat, lon);
  const p = new DOMPoint(x, y).matrixTransform(document.getElementById("map").getScreenCTM());
  return [p.x, p.y];
}"""

# the video of a nest's tile as the browser sees it: size, frames decoded, codec, WHEP session
VIDEO_STATS = """async (nest) => {
  const tile = window.commandCenter.videos.get(nest);
  if (!tile || !tile.pc) return null;
  const stats = await tile.pc.getStats();
  let inbound = null;
  const codecs = {};
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
    if (s.type === "codec") codecs[s.id] = s.mimeType;
  });
  if (!inbound || !inbound.framesDecoded || !tile.video.videoWidth) return null;
  return {
    width: tile.video.videoWidth,
    height: tile.video.videoHeight,
    framesDecoded: inbound.framesDecoded,
    codec: codecs[inbound.codecId] || null,
    session: tile.session,
  };
}"""

# close every video tile as the page does on pagehide (each DELETEs its WHEP session)
CLOSE_TILES = "() => Promise.all([...window.commandCenter.videos.values()].map((tile) => tile.close()))"

NEST_COUNT = "() => document.querySelectorAll('#layer-nests .nest').length"

# the text of the first message (newest first) of a kind that contains a text
MESSAGE = """([kind, text]) => [...document.querySelectorAll(`#messages li.${kind}`)]
  .map((li) => li.textContent).find((t) => t.includes(text)) || null"""


@contextlib.asynccontextmanager
async def chromium(profile_dir: Path, extra_args: Sequence[str] = (), **options: Any) -> AsyncIterator[Any]:
    """A persistent browser context on a fresh profile (Playwright's BrowserContext); ``options``:
    more of its options (``timezone_id``: the browser's local time)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, *extra_args],
            headless=True,
            viewport={"width": 1600, "height": 1000},
            **options,
        )
        try:
            yield browser
        finally:
            await browser.close()


async def wait_js(page: Any, function: str, timeout_s: float, what: str, arg: Any = None) -> Any:
    """Poll a JS function in the page until it returns something truthy; that value."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                last = await page.evaluate(function, arg)
                if last:
                    return last
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})") from None


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll a condition of the service (no event to wait on from outside)."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def signed_in(browser: Any, url: str, sessions: Any, actor: Any) -> Any:
    """A new page at ``url``, signed in as ``actor``: a session of ``sessions`` (web.sessions)
    whose cookie is in the browser, as after POST /api/login (never a token in the URL)."""
    from dronectl.transports.web.sessions import COOKIE

    await browser.add_cookies([{"name": COOKIE, "value": sessions.open(actor), "url": url}])
    page = await browser.new_page()
    await page.goto(url)
    return page
