"""Choosing PostgreSQL: URLs, pool settings, and a password that never shows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobbie.config import Settings
from jobbie.store.factory import check_database_url, is_postgres
from jobbie.store.postgres.database import PoolSettings, conninfo, safe_dsn

SECRET = "s3cret-pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://jobbie:{SECRET}@db.internal:5433/jobs",
        f"postgres://jobbie:{SECRET}@db.internal:5433/jobs",
        f"postgresql://db.internal:5433/jobs?user=jobbie&password={SECRET}",
    ],
)
def test_the_password_never_appears_in_the_shown_url(url: str) -> None:
    shown = safe_dsn(url)
    assert SECRET not in shown
    assert shown == "postgresql://jobbie@db.internal:5433/jobs"


def test_postgres_urls_are_accepted_and_others_refused() -> None:
    check_database_url("postgresql://u@h/db")
    check_database_url("postgres://u@h/db")
    assert is_postgres("postgres://u@h/db") and not is_postgres("sqlite:///data")
    with pytest.raises(ValueError, match="sqlite:///PATH or postgresql://"):
        check_database_url("mysql://u@h/db")


def test_pool_settings_come_from_flags_or_environment() -> None:
    settings = Settings.build(
        {"database": "postgresql://u@h/db", "pool_size": None},
        {"JOBBIE_POOL_SIZE": "4", "JOBBIE_STATEMENT_TIMEOUT_MS": "750"},
    )
    assert settings.postgres and settings.pool_size == 4
    assert settings.statement_timeout_ms == 750
    with pytest.raises(ValueError, match="--pool-size must be positive"):
        Settings.build({"pool_size": "0"}, {})


def test_the_connection_carries_the_statement_timeout() -> None:
    info = conninfo("postgresql://u@h/db", PoolSettings(size=3, statement_timeout_ms=1234))
    assert "statement_timeout=1234" in info and "connect_timeout=5" in info


def test_an_unreachable_database_stops_the_server_with_one_clear_line() -> None:
    url = f"postgresql://jobbie:{SECRET}@127.0.0.1:9/jobs"  # port 9: nothing listens
    done = subprocess.run(
        [sys.executable, "-m", "jobbie", "server", "--bind", "127.0.0.1:0", "--database", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "cannot open the database: cannot connect to postgresql://jobbie@127.0.0.1:9/jobs" in (
        done.stderr
    )
    assert SECRET not in done.stderr + done.stdout
