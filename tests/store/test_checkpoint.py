"""The WAL is folded back into the database by the checkpoint thread, not by the writer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jobbie.store.params import NewJob
from jobbie.store.rules import DEFAULT_RETRY
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
