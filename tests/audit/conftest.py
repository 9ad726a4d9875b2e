"""The audit tests run against both backends: ``location`` is a SQLite file or a fresh PostgreSQL
database (tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "audit.db")
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url
