"""HA tests: a fresh PostgreSQL database each (tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import fresh_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url
