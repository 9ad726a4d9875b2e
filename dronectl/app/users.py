"""``dronectl users``: the people and programs that may use the fleet, and their roles.

    dronectl users add NAME --role pilot      asks for the password twice (or --password-stdin)
    dronectl users passwd NAME
    dronectl users remove NAME
    dronectl users list
    dronectl users init                       the file with a commander (password printed once) and
                                              the service's account, if it does not exist yet

The users file (``--users``, default ``var/users``) is in ``mosquitto_passwd``'s format, so a real
Mosquitto uses it as its ``password_file``; the roles file ``var/users.roles`` sits beside it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from dronectl.domain.identity import IdentityError
from dronectl.domain.roles import Role
from dronectl.operations.users import (
    DEFAULT_USERS_FILE,
    add_user,
    bootstrap,
    load_users,
    remove_user,
    set_password,
)


def _password(ns: argparse.Namespace) -> str:
    if ns.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise IdentityError("the two passwords differ; nothing changed")
    return first


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl users", description="Users and their roles.")
    parser.add_argument("--users", type=Path, default=DEFAULT_USERS_FILE, help="users file (var/users)")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a user with a role")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    passwd = sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    for p in (add, passwd):
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_parser("remove", help="remove a user").add_argument("name")
    sub.add_parser("list", help="the users and their roles")
    sub.add_parser("init", help="create the users file (a commander, the service's account) if missing")
    ns = parser.parse_args(argv)
    try:
        if ns.action == "add":
            add_user(ns.users, ns.name, Role(ns.role), _password(ns))
            sys.stdout.write(f"added {ns.name} ({ns.role}) to {ns.users}\n")
        elif ns.action == "passwd":
            set_password(ns.users, ns.name, _password(ns))
            sys.stdout.write(f"password of {ns.name} changed\n")
        elif ns.action == "remove":
            remove_user(ns.users, ns.name)
            sys.stdout.write(f"removed {ns.name}\n")
        elif ns.action == "init":
            made = bootstrap(ns.users)
            if made.first_user is not None:  # shown once, never stored in clear
                sys.stdout.write(
                    f"created {ns.users}: user {made.first_user}, password {made.first_password}\n"
                )
            else:
                sys.stdout.write(f"{ns.users} exists; the service's account is ready\n")
        else:
            for user in load_users(ns.users).values():
                sys.stdout.write(f"{user.name}\t{user.role_name}\n")
    except IdentityError as exc:
        sys.stderr.write(f"dronectl users: {exc}\n")
        return 2
    return 0
