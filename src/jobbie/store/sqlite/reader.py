"""A small pool of read-only connections; reads never wait for the writer (WAL).

This is the backend boundary for reads: a driver error (I/O, a lost file, a busy or corrupt
database) leaves here as `Unavailable` (503), never as a bare sqlite3 exception (500).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from jobbie.errors import Unavailable
from jobbie.store.sqlite.database import open_connection

log = logging.getLogger("jobbie.store")

T = TypeVar("T")

# SQLite VM instructions between two deadline checks: a few microseconds of work, so a
# statement overruns its limit by well under a millisecond and the check costs ~1%.
_PROGRESS_STEPS = 1000


@contextmanager
def time_limit(conn: sqlite3.Connection, ms: int | None) -> Iterator[None]:
    """Interrupt the statements run inside once `ms` milliseconds have passed (None: no
    limit); an interrupted statement raises an error that `interrupted` recognises. SQLite
    has no statement timeout: a progress handler checking a deadline plays that part."""
    if ms is None:
        yield
        return
    deadline = time.monotonic() + ms / 1000
    conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
    try:
        yield
    finally:
        conn.set_progress_handler(None, 0)


def interrupted(exc: sqlite3.Error) -> bool:
    """The statement was stopped by `time_limit`."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT


class Reader:
    """Runs read functions on worker threads, each with its own read-only connection."""

    def __init__(self, path: Path, *, size: int = 4) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="jobbie-reader")

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside one read transaction (a consistent snapshot)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("read failed: %s", exc)
            raise Unavailable(f"the database could not be read: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_connection(self._path, durable=True, readonly=True)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
