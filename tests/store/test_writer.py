"""The group-commit writer: savepoint isolation, answers only after COMMIT, failed commits."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from jobbie.errors import NotFound, Unavailable
from jobbie.notifier import Wakes
from jobbie.store.sqlite.database import migrate, migration_files, open_connection
from jobbie.store.sqlite.writer import Tx, Writer


def _writer_conn(path: Path) -> sqlite3.Connection:
    conn = open_connection(path, durable=True)
    conn.execute("CREATE TABLE t (v INTEGER NOT NULL)")
    return conn


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def test_failing_operation_rolls_back_alone_and_the_group_commits(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> list[object]:
        writer = Writer(_writer_conn(path), asyncio.get_running_loop(), lambda q: None)
        writer.start()

        def insert(tx: Tx) -> int:
            tx.execute("INSERT INTO t (v) VALUES (1)")
            return 1

        def insert_then_fail(tx: Tx) -> int:
            tx.execute("INSERT INTO t (v) VALUES (2)")
            raise NotFound("nope")

        results = await asyncio.gather(
            *(writer.run(insert_then_fail if i % 3 == 0 else insert) for i in range(30)),
            return_exceptions=True,
        )
        writer.close()
        return list(results)

    results = asyncio.run(main())
    assert sum(isinstance(r, NotFound) for r in results) == 10
    assert results.count(1) == 20
    # Only the successful operations' rows exist: each failure rolled back its own insert.
    assert _count(path) == 20


def test_callers_are_answered_only_after_commit_and_wake_after(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    seen: list[int] = []

    async def main() -> None:
        woken: list[Wakes] = []
        writer = Writer(_writer_conn(path), asyncio.get_running_loop(), woken.append)
        writer.start()

        def op(tx: Tx) -> None:
            tx.execute("INSERT INTO t (v) VALUES (7)")
            tx.wake.add("q")

        await writer.run(op)
        # Another connection sees the row the moment the caller is answered.
        seen.append(_count(path))
        assert woken == [Wakes(q=1)]
        writer.close()

    asyncio.run(main())
    assert seen == [1]


def test_failed_commit_answers_every_caller_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> list[object]:
        conn = _writer_conn(path)
        # A deferred foreign key fails at COMMIT, not at the statement.
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        woken: list[Wakes] = []
        writer = Writer(conn, asyncio.get_running_loop(), woken.append)
        writer.start()

        def good(tx: Tx) -> str:
            tx.execute("INSERT INTO t (v) VALUES (1)")
            tx.wake.add("q")
            return "ok"

        def bad(tx: Tx) -> str:
            tx.execute("INSERT INTO child (pid) VALUES (42)")
            return "ok"

        results = await asyncio.gather(writer.run(good), writer.run(bad), return_exceptions=True)
        writer.close()
        assert not any(woken), "a failed group must wake nobody"
        return list(results)

    results = asyncio.run(main())
    # Either both ran in one group (both 503) or the good one committed alone first.
    if all(isinstance(r, Unavailable) for r in results):
        assert _count(path) == 0
    else:
        assert results[0] == "ok" and isinstance(results[1], Unavailable)


def test_closed_writer_refuses_work(tmp_path: Path) -> None:
    async def main() -> None:
        writer = Writer(_writer_conn(tmp_path / "w.db"), asyncio.get_running_loop(), print)
        writer.start()
        writer.close()
        with pytest.raises(Unavailable):
            await writer.run(lambda tx: None)

    asyncio.run(main())


def test_migrations_apply_once_and_record_versions(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "m.db", durable=True)
    applied = migrate(conn)
    assert applied == [name for _, name, _ in migration_files()]
    assert migrate(conn) == []
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in migration_files()]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in (
        "jobs", "job_errors", "unique_locks", "batches", "queues", "queue_stats",
        "queue_counts", "rate_limit_window", "schedules", "workers", "events",
    ):  # fmt: skip
        assert table in tables
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_fetch_uses_the_pending_index(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "p.db", durable=True)
    migrate(conn)
    plan = " ".join(
        str(row[3])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM jobs WHERE queue = ? AND state = 'pending'"
            " ORDER BY priority, seq LIMIT 1",
            ("q",),
        )
    )
    assert "jobs_pending" in plan
    assert "TEMP B-TREE" not in plan  # no sort: a single index range scan


def _full_conn(path: Path) -> sqlite3.Connection:
    """A writer connection whose database may grow by only 20 pages (a full disk)."""
    conn = _writer_conn(path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 20}")
    return conn


def _insert_mb(tx: Tx) -> str:
    tx.execute("INSERT INTO t (v) VALUES (length(zeroblob(1 << 20)))")
    tx.execute("CREATE TABLE IF NOT EXISTS big (b BLOB)")
    tx.execute("INSERT INTO big (b) VALUES (zeroblob(1 << 20))")
    return "big"


def _insert_small(tx: Tx) -> str:
    tx.execute("INSERT INTO t (v) VALUES (1)")
    return "small"


def _insert_2k(tx: Tx) -> str:
    tx.execute("CREATE TABLE IF NOT EXISTS pad (b BLOB)")
    tx.execute("INSERT INTO pad (b) VALUES (zeroblob(2000))")
    return "2k"


def test_writer_survives_a_full_database_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> None:
        conn = _full_conn(path)
        writer = Writer(conn, asyncio.get_running_loop(), lambda q: None, probe_interval=0.05)
        writer.start()
        # SQLITE_FULL rolls back by itself; the writer's own ROLLBACK must not kill it.
        with pytest.raises(Unavailable):
            await asyncio.wait_for(writer.run(_insert_mb), 5)
        assert writer.running
        assert writer.failing is not None and "full" in writer.failing
        # A later, small write is served by the same thread (it fits in the 20 pages).
        assert await asyncio.wait_for(writer.run(_insert_small), 5) == "small"
        assert writer.failing is None
        # Fill it for good with rows of ~2 KiB: then the probe keeps failing on its own.
        for _ in range(200):
            try:
                await asyncio.wait_for(writer.run(_insert_2k), 5)
            except Unavailable:
                break
        else:
            raise AssertionError("the database never filled up")
        await asyncio.sleep(0.3)
        assert writer.failing is not None
        # Space returns: the probe sees it without any caller.
        conn.execute("PRAGMA max_page_count=1000000")
        for _ in range(100):
            if writer.failing is None:
                break
            await asyncio.sleep(0.05)
        assert writer.failing is None
        assert await asyncio.wait_for(writer.run(_insert_mb), 5) == "big"
        writer.close()

    asyncio.run(main())
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_group_rolled_back_by_sqlite_answers_every_caller(tmp_path: Path) -> None:
    path = tmp_path / "w.db"

    async def main() -> list[object]:
        writer = Writer(_full_conn(path), asyncio.get_running_loop(), lambda q: None)
        writer.start()
        ops = [_insert_mb if i % 4 == 1 else _insert_small for i in range(40)]
        results = await asyncio.wait_for(
            asyncio.gather(*(writer.run(op) for op in ops), return_exceptions=True), 10
        )
        assert writer.running
        assert await asyncio.wait_for(writer.run(_insert_small), 5) == "small"
        writer.close()
        return list(results)

    results = asyncio.run(main())
    assert all(r in ("small", "big") or isinstance(r, Unavailable) for r in results), results
    # Every answered small insert is there (plus the last one), nothing that was refused.
    assert _count(path) == results.count("small") + 1 + results.count("big")


def test_an_unexpected_error_in_the_writers_own_statements_keeps_it_running(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"

    async def main() -> None:
        writer = Writer(_writer_conn(path), asyncio.get_running_loop(), lambda q: None)
        writer.start()

        def ends_the_transaction(tx: Tx) -> str:
            tx.execute("INSERT INTO t (v) VALUES (5)")
            tx.execute("COMMIT")  # a buggy operation: the group's COMMIT then fails
            return "x"

        results = await asyncio.wait_for(
            asyncio.gather(
                writer.run(_insert_small), writer.run(ends_the_transaction), return_exceptions=True
            ),
            5,
        )
        assert all(r in ("small", "x") or isinstance(r, Unavailable) for r in results)
        assert await asyncio.wait_for(writer.run(_insert_small), 5) == "small"
        assert writer.running
        writer.close()

    asyncio.run(main())


@pytest.mark.parametrize(("where", "index"), [("queue", "events_queue"), ("type", "events_type")])
def test_filtered_event_reads_use_an_index(tmp_path: Path, where: str, index: str) -> None:
    conn = open_connection(tmp_path / "e.db", durable=True)
    migrate(conn)
    plan = " ".join(
        str(row[3])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE id > ?"
            f" AND {where} IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT 500",
            (0, '["a"]'),
        )
    )
    assert index in plan, plan
