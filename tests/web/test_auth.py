"""Tokens -> actors, actions per role, the tokens file (hashed, each token bound to a user)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from dronectl.audit import AuditStore
from dronectl.domain.identity import IdentityError
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.models import Actor, Role
from dronectl.operations.tokens import TokenFile, create_token, load_tokens, revoke_token
from dronectl.operations.users import Directory, add_user, remove_user
from dronectl.transports.web.auth import TokenAuthority, allowed_roles, request_token

PILOT = "pilot-token-0123456789abcdef"


def _request(headers: dict[str, str] | None = None, query: str = "") -> web.Request:
    return make_mocked_request("GET", f"/api/x{query}", headers=headers or {})


def test_token_from_the_header_or_a_websocket_subprotocol_never_the_url() -> None:
    assert request_token(_request({"Authorization": "Bearer abc"})) == "abc"
    assert request_token(_request({"Authorization": "bearer  abc "})) == "abc"
    assert request_token(_request({"Sec-WebSocket-Protocol": "dronectl, bearer.abc-_9"})) == "abc-_9"
    assert request_token(_request({"Sec-WebSocket-Protocol": "dronectl"})) is None
    assert request_token(_request({"Authorization": "Basic Zm9vOmJhcg=="})) is None
    assert request_token(_request()) is None
    with pytest.raises(web.HTTPBadRequest) as refused:
        request_token(_request(query="?token=xyz"))
    assert refused.value.text is not None and "in the URL is refused" in refused.value.text


async def test_authorize_by_role() -> None:
    auth = TokenAuthority({PILOT: Actor(id="li.wei", role=Role.PILOT)})
    observer = auth.add_dev_token("wall", Role.OBSERVER)
    as_pilot = _request({"Authorization": f"Bearer {PILOT}"})
    assert await auth.authorize(as_pilot, "video.view") == Actor(id="li.wei", role=Role.PILOT)
    assert (await auth.authorize(as_pilot, "speaker.say")).id == "li.wei"  # a method's name as the action
    as_observer = _request({"Authorization": f"Bearer {observer}"})
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


def test_tokens_file_keeps_digests_bound_to_users(tmp_path: Path) -> None:
    users, tokens = tmp_path / "users", tmp_path / "tokens"
    add_user(users, "li.wei", Role.PILOT, "a-long-password")
    entry, token = create_token(tokens, "li.wei", users, "wall screen")
    assert token.startswith(f"dct_{entry.id}_") and len(token) > 40
    assert tokens.stat().st_mode & 0o777 == 0o600
    text = tokens.read_text(encoding="utf-8")
    assert token not in text and token.split("_", 2)[2] not in text  # only the digest is kept
    assert load_tokens(tokens) == [entry] and entry.user == "li.wei" and entry.label == "wall screen"
    with pytest.raises(IdentityError, match="no user 'ghost'"):
        create_token(tokens, "ghost", users)
    with pytest.raises(IdentityError, match="service's own account"):
        create_token(tokens, "dronectl", users)
    with pytest.raises(IdentityError, match="no token 'ffffffff'"):
        revoke_token(tokens, "ffffffff")
    tokens.chmod(0o644)
    with pytest.raises(IdentityError, match="readable by others"):
        load_tokens(tokens)
    tokens.chmod(0o600)
    legacy = tmp_path / "legacy.yaml"
    legacy.write_text("tokens:\n  - {token: aaaaaaaaaaaaaaaaaaaa, id: x, role: pilot}\n", encoding="utf-8")
    legacy.chmod(0o600)
    with pytest.raises(IdentityError, match="in clear"):
        load_tokens(legacy)


async def test_a_token_acts_as_its_user_with_the_users_files_role(tmp_path: Path) -> None:
    users, tokens = tmp_path / "users", tmp_path / "tokens"
    add_user(users, "li.wei", Role.PILOT, "a-long-password")
    add_user(users, "wall", Role.OBSERVER, "a-long-password")
    _, pilot = create_token(tokens, "li.wei", users)
    wall_entry, wall = create_token(tokens, "wall", users)
    async with await AuditStore.open(tmp_path / "audit.sqlite3") as store:
        auth = TokenAuthority(
            tokens_file=TokenFile(tokens),
            role_of=Directory(users).role_of,
            login_audit=LoginAudit(store.record_login_failure),
        )
        as_pilot = _request({"Authorization": f"Bearer {pilot}"})
        assert await auth.authorize(as_pilot, "speaker.say") == Actor(id="li.wei", role=Role.PILOT)
        as_wall = _request({"Authorization": f"Bearer {wall}"})
        assert await auth.authorize(as_wall, "video.view") == Actor(id="wall", role=Role.OBSERVER)
        with pytest.raises(web.HTTPForbidden):
            await auth.authorize(as_wall, "speaker.say")

        revoke_token(tokens, wall_entry.id)  # read again at the next request
        with pytest.raises(web.HTTPUnauthorized):
            await auth.authorize(as_wall, "video.view")
        remove_user(users, "li.wei")  # the user gone: its tokens with it
        with pytest.raises(web.HTTPUnauthorized):
            await auth.authorize(as_pilot, "video.view")
        with pytest.raises(web.HTTPUnauthorized):
            await auth.authorize(_request({"Authorization": "Bearer dct_00000000_made-up"}), "video.view")

        rows = await store.login_failures()  # refused tokens audited, folded: never the token
        assert [(r["channel"], r["user_name"], r["reason"]) for r in rows] == [
            ("http", "", "unknown bearer token")
        ]
        assert pilot not in str(rows) and wall not in str(rows)
        assert auth.login_audit is not None
        (counted,) = auth.login_audit.bursts.drain()  # the second and third: one burst
        assert counted.attempts == 2


def test_the_tokens_command_creates_lists_and_revokes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dronectl.app.tokens import main

    users, tokens = tmp_path / "users", tmp_path / "tokens"
    add_user(users, "li.wei", Role.PILOT, "a-long-password")
    base = ["--users", str(users), "--tokens", str(tokens)]
    assert main([*base, "create", "li.wei", "--label", "ci"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("dct_") and "shown once" in out.err and token not in out.err
    (entry,) = load_tokens(tokens)
    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(f"{entry.id}\tli.wei\t") and listed.rstrip().endswith("\tci")
    assert token not in listed and entry.sha256 not in listed
    assert main([*base, "create", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert main([*base, "revoke", entry.id]) == 0
    assert load_tokens(tokens) == []


def test_a_tokens_file_others_can_read_stops_every_token(tmp_path: Path) -> None:
    users, tokens = tmp_path / "users", tmp_path / "tokens"
    add_user(users, "li.wei", Role.PILOT, "a-long-password")
    _, token = create_token(tokens, "li.wei", users)
    reader = TokenFile(tokens)
    reader.check()
    assert reader.user_of(token) == "li.wei"
    tokens.chmod(0o644)  # refuse, never guess: no token works until it is private again
    os.utime(tokens, ns=(1, 1))  # a change the reader sees whatever the clock's resolution
    assert reader.user_of(token) is None
    tokens.chmod(0o600)
    os.utime(tokens, ns=(2, 2))
    assert reader.user_of(token) == "li.wei"
    with pytest.raises(IdentityError, match="readable by others"):
        tokens.chmod(0o640)
        TokenFile(tokens).check()  # at start: the service refuses to start with it
