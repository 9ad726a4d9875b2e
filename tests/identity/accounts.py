"""The users the tests' services know: one users file with the names the tests act as.

Every one has the password ``TEST_PASSWORD`` (the console and the one-shot commands read it from
``DRONECTL_PASSWORD``). Services started for a test get ``--users`` pointing at such a file, never
the repository's ``var/users``.
"""

from __future__ import annotations

from pathlib import Path

from dronectl.domain.roles import Role
from dronectl.operations.users import Bootstrap, add_user, bootstrap, load_users

TEST_PASSWORD = "test-password-of-everyone"

TEST_USERS: dict[str, Role] = {
    "cc": Role.COMMANDER,
    "cc-desk-2": Role.COMMANDER,
    "cmdr-z": Role.COMMANDER,
    "cmdr-zhao": Role.COMMANDER,
    "officer-7": Role.PILOT,
    "pilot-a": Role.PILOT,
    "pilot-b": Role.PILOT,
    "pilot-li": Role.PILOT,
    "pilot-wang": Role.PILOT,
    "watcher": Role.OBSERVER,
    "observer-1": Role.OBSERVER,
    "bot": Role.AUTOMATION,
    "dispatcher": Role.AUTOMATION,
    "desk-1": Role.REPORTER,
}


def write_users(users_file: Path) -> Bootstrap:
    """``users_file`` with TEST_USERS (once) and the service's account; the service's login."""
    if not users_file.exists():
        for name, role in TEST_USERS.items():
            add_user(users_file, name, role, TEST_PASSWORD)
    assert set(TEST_USERS) <= set(load_users(users_file))
    return bootstrap(users_file)
