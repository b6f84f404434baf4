"""Fixtures of the store tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.backends import POSTGRES_HOWTO, PostgresUnavailable, postgres_database


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh PostgreSQL database (skipped, outside CI, when no PostgreSQL is reachable)."""
    try:
        return postgres_database(tmp_path / "db")
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{POSTGRES_HOWTO} ({exc})")
