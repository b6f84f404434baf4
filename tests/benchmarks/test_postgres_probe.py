"""The bench's PostgreSQL helpers: the --database option, the per-run database and its probe."""

from __future__ import annotations

import argparse
import os

import psycopg
import pytest

from bench.postgres import DEFAULT_ADMIN_URL, PgDatabase, database_url, own_wal_bytes
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


def test_own_wal_counts_the_database_records_and_their_transactions() -> None:
    dump = [
        "rmgr: Heap len (rec/tot): 78/ 78, tx: 7, lsn: 0/1, prev 0/0, desc: INSERT off 3,"
        " blkref #0: rel 1663/500/600 blk 0",
        "rmgr: Btree len (rec/tot): 53/ 149, tx: 8, lsn: 0/2, prev 0/1, desc: INSERT_LEAF,"
        " blkref #0: rel 1663/999/600 blk 1 FPW",
        "rmgr: Transaction len (rec/tot): 34/ 34, tx: 7, lsn: 0/3, prev 0/2, desc: COMMIT",
        "rmgr: Transaction len (rec/tot): 34/ 34, tx: 8, lsn: 0/4, prev 0/3, desc: COMMIT",
        "rmgr: Heap2 len (rec/tot): 59/ 59, tx: 0, lsn: 0/5, prev 0/4, desc: PRUNE,"
        " blkref #0: rel 1663/500/600 blk 2",
        "rmgr: Standby len (rec/tot): 50/ 50, tx: 0, lsn: 0/6, prev 0/5, desc: RUNNING_XACTS",
    ]
    # database 500: its insert (78 -> 80), its commit (34 -> 40), its prune (59 -> 64)
    assert own_wal_bytes(dump, 500) == 80 + 40 + 64
    assert own_wal_bytes(dump, 999) == 152 + 40


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
            # Some CPU: well over the 10 ms a process's CPU time is counted in.
            conn.execute("SELECT count(*) FROM generate_series(1, 2000000)")
            cost = pg.cost(before, pg.sample())
        assert cost.wal_bytes > 20 * 500 * 100  # the rows' bytes at least
        # This database's own records, read back by pg_waldump: the rows, never more than all.
        assert cost.own_wal_bytes is not None
        assert 20 * 500 * 100 < cost.own_wal_bytes <= cost.wal_bytes
        # PostgreSQL runs on this machine here: its backend's CPU is counted.
        assert cost.cpu_s is not None and cost.cpu_s > 0
        assert pg.size_mib() > 0
    finally:
        pg.drop()
    assert not _exists(pg.name)
