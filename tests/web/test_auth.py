"""Tokens -> actors, actions per role, the tokens file."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from dronectl.api.models import Actor, Role
from dronectl.web.auth import TokenAuthority, TokensFileError, allowed_roles, load_tokens, request_token

PILOT = "pilot-token-0123456789abcdef"


def _request(headers: dict[str, str] | None = None, query: str = "") -> web.Request:
    return make_mocked_request("GET", f"/api/x{query}", headers=headers or {})


def test_token_from_header_then_query() -> None:
    assert request_token(_request({"Authorization": "Bearer abc"})) == "abc"
    assert request_token(_request({"Authorization": "bearer  abc "})) == "abc"
    assert request_token(_request(query="?token=xyz")) == "xyz"
    assert request_token(_request({"Authorization": "Basic Zm9vOmJhcg=="})) is None
    assert request_token(_request()) is None


async def test_authorize_by_role() -> None:
    auth = TokenAuthority({PILOT: Actor(id="li.wei", role=Role.PILOT)})
    observer = auth.add_dev_token("wall", Role.OBSERVER)
    as_pilot = _request({"Authorization": f"Bearer {PILOT}"})
    assert await auth.authorize(as_pilot, "video.view") == Actor(id="li.wei", role=Role.PILOT)
    assert (await auth.authorize(as_pilot, "speaker.say")).id == "li.wei"  # a method's name as the action
    as_observer = _request(query=f"?token={observer}")
    assert (await auth.authorize(as_observer, "video.view")).role is Role.OBSERVER
    for request, action, text in [
        (as_observer, "speaker.say", "role observer may not speaker.say (allowed: pilot, commander, autom"),
        (as_observer, "video.talk", "role observer may not video.talk"),
        (as_pilot, "everything", "unknown action 'everything'"),
    ]:
        with pytest.raises(web.HTTPForbidden) as refused:
            await auth.authorize(request, action)
        assert refused.value.text is not None and refused.value.text.startswith(text)
    with pytest.raises(web.HTTPUnauthorized):
        await auth.authorize(_request({"Authorization": f"Bearer {PILOT}x"}), "video.view")


def test_actions() -> None:
    assert allowed_roles("state.view") == frozenset(Role)
    assert allowed_roles("maintenance.set") == {Role.COMMANDER}
    assert allowed_roles("nope") is None


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        TokenAuthority({"short": Actor(id="x", role=Role.PILOT)})


def test_dev_tokens_are_random() -> None:
    auth = TokenAuthority()
    first, second = auth.add_dev_token(), auth.add_dev_token()
    assert first != second and len(first) >= 32
    assert auth.actor(first) == Actor(id="dev", role=Role.COMMANDER)


def test_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "tokens:\n"
        "  - {token: aaaaaaaaaaaaaaaaaaaa, id: li.wei, role: commander}\n"
        "  - {token: bbbbbbbbbbbbbbbbbbbb, id: wall, role: observer}\n",
        encoding="utf-8",
    )
    assert load_tokens(path) == {
        "aaaaaaaaaaaaaaaaaaaa": Actor(id="li.wei", role=Role.COMMANDER),
        "bbbbbbbbbbbbbbbbbbbb": Actor(id="wall", role=Role.OBSERVER),
    }
    path.write_text("tokens:\n  - {token: aaaaaaaaaaaaaaaaaaaa, id: x, role: king}\n", encoding="utf-8")
    with pytest.raises(TokensFileError, match=r"tokens\.0\.role"):
        load_tokens(path)
    path.write_text("tokens:\n  - {token: short, id: x, role: pilot}\n", encoding="utf-8")
    with pytest.raises(TokensFileError, match=r"tokens\.0\.token"):
        load_tokens(path)
    with pytest.raises(TokensFileError, match="cannot read"):
        load_tokens(tmp_path / "missing.yaml")
