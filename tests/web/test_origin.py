"""A page of another site cannot use the browser's credentials for this one: cross-site
WebSocket handshakes and POSTs are refused (issue 12); our own page's are not."""

from __future__ import annotations

import aiohttp
import pytest

from dronectl.operations.models import Role
from tests.web.conftest import Web, envelope, launch_args


def _own_origin(web: Web) -> str:
    return f"http://{web.client.host}:{web.client.port}"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
async def test_a_cross_site_websocket_is_refused(web_api: Web, origin: str) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web_api.client.ws_connect(
            "/api/updates", headers={**web_api.headers(Role.OBSERVER), "Origin": origin}
        )
    assert refused.value.status == 403


async def test_our_own_page_opens_the_websocket(web_api: Web) -> None:
    ws = await web_api.client.ws_connect(
        "/api/updates", headers={**web_api.headers(Role.OBSERVER), "Origin": _own_origin(web_api)}
    )
    first = await ws.receive_json(timeout=10)
    assert first["type"]
    await ws.close()


async def test_a_cross_site_post_is_refused_and_runs_nothing(web_api: Web) -> None:
    body = envelope("x-1", "launch", launch_args())
    headers = {**web_api.headers(Role.COMMANDER), "Origin": "https://evil.example"}
    async with web_api.client.post("/api/nests/1/commands", json=body, headers=headers) as res:
        assert res.status == 403
    assert web_api.controller.executed == []
    headers["Origin"] = _own_origin(web_api)
    async with web_api.client.post("/api/nests/1/commands", json=body, headers=headers) as res:
        assert res.status == 202
    assert [c.id for c in web_api.controller.executed] == ["x-1"]
