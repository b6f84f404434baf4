"""The single SQLite writer: one thread, one connection, group commit.

Concurrent operations queue up; the writer runs the first, then every operation that is
waiting or arrives while the group runs (up to `max_batch`), each inside its own SAVEPOINT so a
failing operation rolls back alone; it commits once, and only then answers the callers and
wakes long-poll waiters. With synchronous=FULL one fsync thus
covers many requests. An idle writer never waits for more work, so a lone request is not
delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from jobbie.clock import Clock
from jobbie.errors import Unavailable

log = logging.getLogger("jobbie.store")

T = TypeVar("T")


class Tx:
    """What an operation sees: the connection, the clock of its turn, and queues to wake."""

    __slots__ = ("conn", "events", "memo", "now", "totals", "wake")

    def __init__(
        self, conn: sqlite3.Connection, now: int, memo: dict[Any, Any] | None = None
    ) -> None:
        self.conn = conn
        self.now = now
        # The writer's memory across operations (e.g. when a worker was last recorded).
        self.memo: dict[Any, Any] = {} if memo is None else memo
        self.wake: set[str] = set()
        # Event rows and queue-total increments, written once per group (see flush_group).
        self.events: list[tuple[str, str | None, str | None, str | None, int]] = []
        self.totals: dict[str, list[int]] = {}

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)


Operation = Callable[[Tx], T]
_Item = tuple[Callable[[Tx], Any], "asyncio.Future[Any]"]
_STOP = None


class Writer:
    """Runs write operations on a dedicated thread with group commit."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[set[str]], None],
        *,
        clock: Clock | None = None,
        max_batch: int = 256,
    ) -> None:
        self._conn = conn
        self._clock = clock or Clock()
        self._loop = loop
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="jobbie-writer", daemon=True)
        self._closed = False
        self._memo: dict[Any, Any] = {}

    def start(self) -> None:
        self._thread.start()

    async def run(self, op: Callable[[Tx], T]) -> T:
        """Run `op` in the next group; return its result once that group is committed."""
        if self._closed:
            raise Unavailable("the store is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((op, future))
        return await future

    def close(self) -> None:
        """Finish every queued operation, then stop the thread (blocking)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP or self._commit_group(first):
                break

    def _commit_group(self, first: _Item) -> bool:
        """Run `first` and every operation queued meanwhile (up to max_batch) in one
        transaction, commit once, then answer them all. True when the stop sentinel was seen."""
        conn = self._conn
        op, future = first
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            log.error("writer could not begin a transaction: %s", exc)
            self._deliver_soon([(future, None, Unavailable("the database is unavailable"))], set())
            return False
        # The first operation needs no savepoint: if it fails, nothing else is in the
        # transaction yet, so it is rolled back whole.
        tx = Tx(conn, self._clock.now_ms(), self._memo)
        try:
            result = op(tx)
        except Exception as exc:
            conn.execute("ROLLBACK")
            self._deliver_soon([(future, None, exc)], set())
            return False
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = [
            (future, result, None)
        ]
        done = [tx]
        stop = False
        # Operations that arrived while the first ran join this group and share its fsync;
        # each runs in a savepoint so that one failing rolls back alone.
        while len(outcomes) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            op, future = item
            tx = Tx(conn, self._clock.now_ms(), self._memo)
            conn.execute("SAVEPOINT op")
            try:
                result = op(tx)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((future, None, exc))
            else:
                conn.execute("RELEASE op")
                outcomes.append((future, result, None))
                done.append(tx)
        try:
            flush_group(conn, done)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # Nothing of the group is acknowledged when its commit fails.
            log.error("group commit failed, answering %d callers 503: %s", len(outcomes), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = Unavailable("the database could not commit")
            outcomes = [(fut, None, failure) for fut, _, _ in outcomes]
            done = []
        self._deliver_soon(outcomes, set().union(*(tx.wake for tx in done)))
        return stop

    def _deliver_soon(
        self, outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]], wake: set[str]
    ) -> None:
        # A closed event loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, outcomes, wake)

    def _deliver(
        self, outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]], wake: set[str]
    ) -> None:
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        self._on_commit(wake)


def flush_group(conn: sqlite3.Connection, done: list[Tx]) -> None:
    """Write the event rows and queue totals of a group's successful operations in one go:
    one executemany for all events, one upsert per queue instead of one per job."""
    events = [event for tx in done for event in tx.events]
    if events:
        conn.executemany(
            "INSERT INTO events (type, job_id, queue, data, at) VALUES (?, ?, ?, ?, ?)", events
        )
    totals: dict[str, list[int]] = {}
    for tx in done:
        for name, add in tx.totals.items():
            have = totals.setdefault(name, [0, 0, 0, 0])
            for i, n in enumerate(add):
                have[i] += n
    if totals:
        conn.executemany(
            "INSERT INTO queue_stats (queue, enqueued, completed, failed, dead)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue) DO UPDATE SET"
            " enqueued = enqueued + excluded.enqueued, completed = completed + excluded.completed,"
            " failed = failed + excluded.failed, dead = dead + excluded.dead",
            [(name, *add) for name, add in totals.items()],
        )
