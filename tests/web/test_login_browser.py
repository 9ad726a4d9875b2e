"""In Chromium: sign in with a user of the users file (no token anywhere), launch from the page,
sign out, and the old session cookie is refused; a page of another site cannot open the
WebSocket (issue 12's acceptance)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dronectl.audit import AuditStore
from dronectl.domain.config import load_config
from dronectl.operations.audit_outcomes import AuditOutcomes
from dronectl.operations.gateway import CommandGateway
from dronectl.operations.topics import Topics
from dronectl.operations.users import Directory
from dronectl.transports.web.auth import TokenAuthority
from dronectl.transports.web.server import WebServer
from dronectl.transports.web.sessions import COOKIE, Sessions
from tests.api.fake_controller import FakeController
from tests.identity.accounts import TEST_PASSWORD, write_users
from tests.web.browser import MESSAGE, NEST_COUNT, TO_SCREEN, chromium, wait_js

NESTS = (1, 2, 3)
WHO = "() => !document.querySelector('#main').hidden && document.querySelector('#who').textContent"
LOGIN_SHOWN = "() => !document.querySelector('#login').hidden"

# a page of another site that tries the command center's WebSocket with the browser's cookies
EVIL_PAGE = """<!doctype html><html><body><script>
const ws = new WebSocket("ws://TARGET/api/updates");
window.verdict = "pending";
ws.onopen = () => { window.verdict = "open"; };
ws.onerror = () => { window.verdict = "refused"; };
</script></body></html>"""


async def test_sign_in_launch_sign_out_and_no_cross_site_websocket(tmp_path: Path) -> None:
    base = load_config()
    config = base.model_copy(update={"nests": [n for n in base.nests if n.id in NESTS]})
    controller = FakeController(NESTS, step_s=0.05)
    users_file = tmp_path / "users"
    write_users(users_file)
    sessions = Sessions(Directory(users_file))
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as audit:
        gateway = CommandGateway(controller, Topics(), outcomes=AuditOutcomes(audit))
        server = WebServer(config, controller, gateway, TokenAuthority(), sessions=sessions)
        evil = web.Application()
        evil_host: list[str] = []

        async def evil_page(_: web.Request) -> web.Response:
            return web.Response(text=EVIL_PAGE.replace("TARGET", evil_host[0]), content_type="text/html")

        evil.router.add_get("/", evil_page)
        async with TestClient(TestServer(server.app)) as client, chromium(tmp_path / "profile") as browser:
            evil_host.append(f"{client.host}:{client.port}")
            page = await browser.new_page()
            await page.goto(str(client.make_url("/")))
            await wait_js(page, LOGIN_SHOWN, 20, "the sign-in form")
            await page.fill("#login-user", "pilot-a")
            await page.fill("#login-password", "not-the-password")
            await page.click("#login button[type=submit]")
            await wait_js(page, "() => document.querySelector('#login-error').textContent", 10, "the refusal")
            await page.fill("#login-password", TEST_PASSWORD)
            async with page.expect_navigation():  # signed in, the page loads afresh
                await page.click("#login button[type=submit]")
            assert await wait_js(page, WHO, 20, "signed in") == "pilot-a (pilot)"
            assert "token" not in page.url
            await wait_js(page, NEST_COUNT, 20, "the nests on the map")
            cookies = await browser.cookies()
            (session,) = [c for c in cookies if c["name"] == COOKIE]
            assert session["httpOnly"] and session["sameSite"] == "Strict"

            # launch from the page: a real click on the map, the page's button
            await page.select_option("#nest-select", "2")
            home = next(n for n in config.nests if n.id == 2)
            x, y = await page.evaluate(TO_SCREEN, [home.lat + 0.004, home.lon + 0.004])
            await page.mouse.click(x, y)
            await page.click("#btn-launch")
            try:
                await wait_js(page, MESSAGE, 20, "the launch accepted", ["ok", "launch #2: accepted"])
            except AssertionError:
                messages = "() => [...document.querySelectorAll('#messages li')].map((li) => li.textContent)"
                shown = await page.evaluate(messages)
                raise AssertionError(f"messages: {shown}") from None
            (command,) = [c for c in controller.executed if c.method.value == "launch"]
            assert (command.actor_id, command.nest_id, command.channel.value) == ("pilot-a", 2, "http")

            # another site's page cannot open the WebSocket, though the browser holds the cookie
            async with TestClient(TestServer(evil)) as other:
                bad = await browser.new_page()
                await bad.goto(str(other.make_url("/")))
                verdict = "() => window.verdict !== 'pending' && window.verdict"
                assert await wait_js(bad, verdict, 20, "the cross-site WebSocket's fate") == "refused"

            # sign out: the form again, and the old cookie is worth nothing
            async with page.expect_navigation():
                await page.click("#logout")
            await wait_js(page, LOGIN_SHOWN, 20, "the sign-in form after signing out")
            async with client.get("/api/me", cookies={COOKIE: session["value"]}) as res:
                assert res.status == 401
