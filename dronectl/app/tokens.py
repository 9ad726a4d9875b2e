"""``dronectl tokens``: bearer tokens for machine clients of the HTTP API, each bound to a user.

    dronectl tokens create USER [--label TEXT]   a new token acting as USER; printed once, on stdout
    dronectl tokens list                         id, user, created, label (never a token)
    dronectl tokens revoke ID                    the token stops working at the service's next request

The tokens file (``--tokens``, default ``var/tokens``, mode 0600) keeps only SHA-256 digests; the
user's role comes from the users file (``--users``) at each request (operations.tokens).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from dronectl.domain.identity import IdentityError
from dronectl.operations.tokens import DEFAULT_TOKENS_FILE, create_token, load_tokens, revoke_token
from dronectl.operations.users import DEFAULT_USERS_FILE


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl tokens", description="API tokens for machine clients.")
    parser.add_argument("--tokens", type=Path, default=DEFAULT_TOKENS_FILE, help="tokens file (var/tokens)")
    parser.add_argument("--users", type=Path, default=DEFAULT_USERS_FILE, help="users file (var/users)")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="a new token acting as a user (shown once)")
    create.add_argument("user")
    create.add_argument("--label", default="", help="what it is for (e.g. wall-screen)")
    sub.add_parser("list", help="the tokens: id, user, created, label")
    sub.add_parser("revoke", help="revoke a token by its id").add_argument("id")
    ns = parser.parse_args(argv)
    try:
        if ns.action == "create":
            entry, token = create_token(ns.tokens, ns.user, ns.users, ns.label)
            sys.stderr.write(f"token {entry.id} for {entry.user}: shown once, keep it secret\n")
            sys.stdout.write(token + "\n")  # alone on stdout: `TOKEN=$(dronectl tokens create ...)`
        elif ns.action == "revoke":
            gone = revoke_token(ns.tokens, ns.id)
            sys.stdout.write(f"revoked {gone.id} ({gone.user})\n")
        else:
            for e in load_tokens(ns.tokens):
                created = datetime.fromtimestamp(e.created_unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                sys.stdout.write(f"{e.id}\t{e.user}\t{created}\t{e.label}\n")
    except (IdentityError, OSError) as exc:
        sys.stderr.write(f"dronectl tokens: {exc}\n")
        return 2
    return 0
