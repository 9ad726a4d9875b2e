"""The API tokens file: bearer tokens for machine clients, each bound to a user (``dronectl tokens``).

    var/tokens      one token a line, mode 0600, written whole (a temporary file renamed over it):
                    ID:USER:SHA256-HEX:CREATED-UNIX-S:LABEL

A token is ``dct_<ID>_<secret>`` (``ID``: 8 hex digits, to list and revoke it; the secret: 256
random bits). The file keeps only the SHA-256 digest of the whole token: a token with this much
entropy needs no slow, salted hash, and a stolen file gives no token. It is shown once, when made.

A token acts as its user: the user's role comes from the users file at each request, so a user
removed or given another role changes what its tokens may do at once; the service's own account
gets no tokens. Readers (:class:`TokenFile`) reread the file when it changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from dronectl.domain.identity import IdentityError, check_username
from dronectl.operations.roles import SERVICE_USER
from dronectl.operations.users import load_users, locked, read_private, write_private

log = structlog.get_logger("dronectl.operations.tokens")

DEFAULT_TOKENS_FILE = Path("var/tokens")
PREFIX = "dct_"
_ID = re.compile(r"^[0-9a-f]{8}$")
_LABEL_BAD = re.compile(r"[:\n\r]")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    id: str
    user: str
    sha256: str
    created_unix_s: float
    label: str = ""

    def line(self) -> str:
        return f"{self.id}:{self.user}:{self.sha256}:{self.created_unix_s:.0f}:{self.label}"


def parse_tokens(text: str, where: str = "tokens file") -> list[TokenEntry]:
    """The entries of a tokens file's text; raises IdentityError naming the line at fault."""
    if text.lstrip().startswith("tokens:"):  # the YAML of old, with tokens in clear
        raise IdentityError(
            f"{where} holds tokens in clear (the old YAML format): make new ones with"
            " `dronectl tokens create USER`, then delete it"
        )
    entries: list[TokenEntry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split(":", 4)
        if len(parts) != 5:
            raise IdentityError(f"{where}:{number}: expected ID:USER:SHA256:CREATED:LABEL")
        token_id, user, sha, created, label = parts
        try:
            created_s = float(created)
        except ValueError:
            raise IdentityError(f"{where}:{number}: bad creation time {created!r}") from None
        if not _ID.fullmatch(token_id) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise IdentityError(f"{where}:{number}: bad token id or digest")
        check_username(user)
        entries.append(TokenEntry(token_id, user, sha, created_s, label))
    return entries


def load_tokens(tokens_file: Path) -> list[TokenEntry]:
    """The tokens of ``tokens_file`` (none when it does not exist); refused when others may read it."""
    if not tokens_file.exists():
        return []
    return parse_tokens(read_private(tokens_file), str(tokens_file))


def _save(tokens_file: Path, entries: list[TokenEntry]) -> None:
    head = "# dronectl API tokens: ID:USER:SHA256:CREATED:LABEL (only digests; `dronectl tokens`)\n"
    write_private(tokens_file, head + "".join(e.line() + "\n" for e in entries))


def create_token(
    tokens_file: Path, user: str, users_file: Path, label: str = "", *, clock: float | None = None
) -> tuple[TokenEntry, str]:
    """A new token for ``user`` (who must be in the users file, with a role): the entry and the
    token itself, to be shown once and never stored."""
    check_username(user)
    if _LABEL_BAD.search(label) or len(label) > 200:
        raise IdentityError("a label has no ':' or line break, and at most 200 characters")
    if user == SERVICE_USER:
        raise IdentityError(f"{SERVICE_USER!r} is the service's own account; it gets no tokens")
    known = load_users(users_file).get(user)
    if known is None or known.role is None:
        raise IdentityError(f"no user {user!r} in {users_file} (dronectl users add {user} --role ...)")
    with locked(tokens_file):
        entries = load_tokens(tokens_file)
        taken = {e.id for e in entries}
        token_id = secrets.token_hex(4)
        while token_id in taken:
            token_id = secrets.token_hex(4)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        created = float(round(time.time() if clock is None else clock))  # as the file keeps it
        entry = TokenEntry(token_id, user, digest(token), created, label)
        _save(tokens_file, [*entries, entry])
    return entry, token


def revoke_token(tokens_file: Path, token_id: str) -> TokenEntry:
    with locked(tokens_file):
        entries = load_tokens(tokens_file)
        gone = [e for e in entries if e.id == token_id]
        if not gone:
            raise IdentityError(f"no token {token_id!r} in {tokens_file} (dronectl tokens list)")
        _save(tokens_file, [e for e in entries if e.id != token_id])
    return gone[0]


class TokenFile:
    """The tokens as the service sees them while it runs: digest -> user, reread on change."""

    def __init__(self, tokens_file: Path) -> None:
        self.tokens_file = tokens_file
        self._stamp: int | None = None
        self._users: dict[str, str] = {}

    def _mtime(self) -> int:
        try:
            return self.tokens_file.stat().st_mtime_ns
        except FileNotFoundError:
            return -1

    def check(self) -> None:
        """Read the file now (at start: a broken or readable-by-others file stops the service)."""
        self._users = {e.sha256: e.user for e in load_tokens(self.tokens_file)}
        self._stamp = self._mtime()

    def user_of(self, token: str) -> str | None:
        """The user a token acts as; None for no such token. A file broken while the service
        runs counts as no tokens (refuse, never guess)."""
        stamp = self._mtime()
        if stamp != self._stamp:
            try:
                self.check()
            except (IdentityError, OSError) as exc:
                log.error("tokens.file_unreadable", file=str(self.tokens_file), error=str(exc))
                self._users, self._stamp = {}, stamp
        return self._users.get(digest(token))
