"""The bench's PostgreSQL helpers: the --database option, the per-run database and its probe."""

from __future__ import annotations

import argparse
import os

import psycopg
import pytest

from bench.postgres import DEFAULT_ADMIN_URL, PgDatabase, database_url
from bench.run import database_option
from tests.backends import POSTGRES_URL, postgres_problem


def test_database_option_names_the_store() -> None:
    assert database_option("sqlite") is None
    assert database_option("postgres") == DEFAULT_ADMIN_URL
    url = "postgresql://bench@db.example:6543/admin?sslmode=disable"
    assert database_option(f"postgres={url}") == url
    assert database_option(url) == url
    with pytest.raises(argparse.ArgumentTypeError):
        database_option("mysql")


def test_database_url_keeps_everything_but_the_name() -> None:
    url = "postgresql://bench:secret@db.example:6543/admin?sslmode=disable"
    assert database_url(url, "jobbie_bench_1_2") == (
        "postgresql://bench:secret@db.example:6543/jobbie_bench_1_2?sslmode=disable"
    )


@pytest.fixture
def pg() -> PgDatabase:
    if (problem := postgres_problem()) is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return PgDatabase(POSTGRES_URL)


def _exists(name: str) -> bool:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


@pytest.mark.postgres
def test_a_run_database_is_created_measured_and_dropped(pg: PgDatabase) -> None:
    pg.create()
    try:
        assert _exists(pg.name)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (i int, pad text)")
            before = pg.sample()
            for _ in range(20):  # 20 commits, each writing and flushing WAL
                conn.execute(
                    "INSERT INTO t SELECT i, repeat('x', 100) FROM generate_series(1, 500) i"
                )
            conn.execute("SELECT count(*) FROM t, t AS u WHERE t.i = u.i")  # some CPU
            cost = pg.cost(before, pg.sample())
        assert cost.wal_bytes > 20 * 500 * 100  # the rows' bytes at least
        # PostgreSQL runs on this machine here: its backend's CPU is counted.
        assert cost.cpu_s is not None and cost.cpu_s > 0
        assert pg.size_mib() > 0
    finally:
        pg.drop()
    assert not _exists(pg.name)
