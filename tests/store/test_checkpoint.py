"""The WAL is folded back into the database by the checkpoint thread, not by the writer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from jobbie.errors import Unavailable
from jobbie.store.params import NewJob
from jobbie.store.rules import DEFAULT_RETRY
from jobbie.store.sqlite.checkpoint import Checkpointer
from jobbie.store.sqlite.reader import Reader
from jobbie.store.sqlite.store import DB_FILE, SqliteStore


def test_checkpoint_thread_folds_the_wal_and_close_truncates_it(tmp_path: Path) -> None:
    db = tmp_path / DB_FILE
    wal = tmp_path / f"{DB_FILE}-wal"

    async def main() -> tuple[int, int, int]:
        store = await SqliteStore.open(tmp_path)
        before = db.stat().st_size
        jobs = [
            NewJob(
                queue="q", payload='{"pad": "%s"}' % ("x" * 200), priority=2, retry=DEFAULT_RETRY
            )
            for _ in range(2000)
        ]
        await store.enqueue_batch(jobs, None)
        # The writer's automatic checkpoint only starts at 100,000 pages, so the database
        # file grows only when the checkpoint thread copies the new pages in.
        deadline = time.monotonic() + 10
        while db.stat().st_size <= before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        grown = db.stat().st_size
        await store.close()
        return before, grown, wal.stat().st_size if wal.exists() else 0

    before, grown, wal_after_close = asyncio.run(main())
    assert grown > before
    assert wal_after_close == 0


def test_a_failing_checkpoint_is_logged_once_not_every_round(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / DB_FILE
    sqlite3.connect(db).close()
    checkpointer = Checkpointer(db, interval=0.005)
    # Its connection goes away: every round now raises a driver error.
    checkpointer._conn.close()
    with caplog.at_level(logging.WARNING, logger="jobbie.store"):
        checkpointer.start()
        deadline = time.monotonic() + 10
        while checkpointer.failures < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        checkpointer.close()
    assert checkpointer.failures >= 50
    logged = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
    assert len(logged) == 2  # the first round's, and the final one at close


def test_read_driver_errors_are_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        # The file does not exist: opening it read-only is a driver error, not a bug.
        reader = Reader(tmp_path / "missing" / DB_FILE, size=1)
        with pytest.raises(Unavailable):
            await reader.run(lambda conn: conn.execute("SELECT 1").fetchone())
        reader.close()
        store = await SqliteStore.open(tmp_path)
        ready = await store.readiness()
        assert (ready.status, ready.database, ready.writer) == ("ok", "ok", "running")
        await store.close()
        ready = await store.readiness()
        assert ready.writer == "stopped" and ready.status == "unavailable"

    asyncio.run(main())
