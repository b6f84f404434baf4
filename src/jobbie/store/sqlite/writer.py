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
from jobbie.notifier import Wakes

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
        # Queues that got work, with how many jobs each (the notifier wakes that many).
        self.wake = Wakes()
        # Event rows and queue-total increments, written once per group (see flush_group).
        self.events: list[tuple[str, str | None, str | None, str | None, int]] = []
        self.totals: dict[str, list[int]] = {}

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)


Operation = Callable[[Tx], T]
_Item = tuple[Callable[[Tx], Any], "asyncio.Future[Any]"]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
_STOP = None

# Primary SQLite result codes that mean "the database cannot take writes right now", as
# opposed to an operation's own mistake: they make the writer report itself not ready.
_WRITE_FAULTS = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_PROTOCOL,
    }
)
# The readiness probe: a small write that must reach the WAL (insert a 4 KiB row, delete it).
_PROBE = (
    "CREATE TABLE IF NOT EXISTS writer_probe (id INTEGER PRIMARY KEY, pad BLOB NOT NULL)",
    "INSERT INTO writer_probe (pad) VALUES (zeroblob(4096))",
    "DELETE FROM writer_probe",
)


def _is_write_fault(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    # Without a code (e.g. "cannot rollback - no transaction is active") it is the
    # connection's state that failed, which is a fault too.
    return code is None or (code & 0xFF) in _WRITE_FAULTS


class Writer:
    """Runs write operations on a dedicated thread with group commit.

    The thread survives any error of one operation or one group: SQLITE_FULL, IOERR and NOMEM
    may roll the whole transaction back by themselves, so every statement the writer issues on
    its own behalf (ROLLBACK, ROLLBACK TO, RELEASE, COMMIT) is allowed to fail, and whatever
    the group had done is then answered 503. While writes fail, `failing` holds the last error
    and an idle writer probes with a small write every `probe_interval` seconds; the first
    commit that works (a probe or a real group) clears it.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[Wakes], None],
        *,
        clock: Clock | None = None,
        max_batch: int = 256,
        probe_interval: float = 2.0,
    ) -> None:
        self._conn = conn
        self._clock = clock or Clock()
        self._loop = loop
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._probe_interval = probe_interval
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="jobbie-writer", daemon=True)
        self._closed = False
        self._memo: dict[Any, Any] = {}
        # The last write fault while writes fail; None while they work.
        self.failing: str | None = None

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        """True while the thread runs and takes work."""
        return self._thread.is_alive() and not self._closed

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
            try:
                if self.failing is None:
                    first = self._queue.get()
                else:
                    first = self._queue.get(timeout=self._probe_interval)
            except queue.Empty:
                self._probe()
                continue
            if first is _STOP:
                break
            members: list[asyncio.Future[Any]] = []
            try:
                if self._commit_group(first, members):
                    break
            except BaseException as exc:  # the last guard: the thread must live
                log.exception("writer: unexpected error in a group, answering it 503")
                self._rollback()
                self._fault(exc)
                failure = Unavailable("the database could not commit")
                self._deliver_soon([(f, None, failure) for f in members], Wakes())

    def _commit_group(self, first: _Item, members: list[asyncio.Future[Any]]) -> bool:
        """Run `first` and every operation queued meanwhile (up to max_batch) in one
        transaction, commit once, then answer them all. True when the stop sentinel was seen.
        `members` collects every caller taken into the group, for `_run`'s last guard."""
        conn = self._conn
        members.append(first[1])
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fault(exc)
            log.error("writer could not begin a transaction: %s", exc)
            self._deliver_soon(
                [(first[1], None, Unavailable("the database is unavailable"))], Wakes()
            )
            return False
        outcomes: list[_Outcome] = []
        done: list[Tx] = []
        stop = False
        item: _Item | None = first
        try:
            while item is not None:
                op, future = item
                tx = Tx(conn, self._clock.now_ms(), self._memo)
                # The first operation needs no savepoint: if it fails, nothing else is in the
                # transaction yet. Later ones join the group and share its fsync, each in a
                # savepoint so that one failing rolls back alone.
                nested = bool(outcomes)
                if nested:
                    conn.execute("SAVEPOINT op")
                try:
                    result = op(tx)
                except Exception as exc:
                    outcomes.append((future, None, self._answer(exc)))
                    if not self._undo(nested):
                        # The whole transaction is gone (SQLite rolled it back by itself, or
                        # this was the first operation): nothing done before holds.
                        return self._abandon(outcomes, exc, stop)
                else:
                    if nested:
                        conn.execute("RELEASE op")
                    outcomes.append((future, result, None))
                    done.append(tx)
                item = None
                if len(outcomes) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop, item = True, None
                    else:
                        members.append(item[1])
            flush_group(conn, done)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # Nothing of the group is acknowledged when its commit fails.
            log.error("group commit failed, answering %d callers 503: %s", len(members), exc)
            self._rollback()
            self._fault(exc)
            failure = Unavailable("the database could not commit")
            self._deliver_soon([(f, None, failure) for f in members], Wakes())
            return stop
        self._recovered()
        wake = Wakes()
        for tx in done:
            wake.update(tx.wake)
        self._deliver_soon(outcomes, wake)
        return stop

    def _undo(self, nested: bool) -> bool:
        """Roll a failed operation back; True when the rest of the transaction still stands."""
        conn = self._conn
        if nested and conn.in_transaction:
            try:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                return True
            except sqlite3.Error as exc:
                log.error("writer could not roll back to its savepoint: %s", exc)
        self._rollback()
        return False

    def _abandon(self, outcomes: list[_Outcome], exc: BaseException, stop: bool) -> bool:
        """The transaction ended early: the operation that failed gets its own answer; if it
        was not the first, every earlier one is answered 503 (its work was rolled back)."""
        *earlier, (future, _, error) = outcomes
        if earlier:
            log.error(
                "an operation rolled back its whole group (%d callers 503): %s", len(earlier), exc
            )
        self._fault(exc)
        failure = Unavailable("the database could not commit")
        answers: list[_Outcome] = [(f, None, failure) for f, _, _ in earlier]
        self._deliver_soon([*answers, (future, None, error)], Wakes())
        return stop

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open; SQLite may already have rolled it back."""
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("writer could not roll back: %s", exc)

    def _answer(self, exc: Exception) -> BaseException:
        """What the caller of a failed operation is told: a database fault is a 503."""
        if isinstance(exc, sqlite3.Error):
            log.error("write operation failed: %s", exc)
            self._fault(exc)
            return Unavailable(f"the database could not write: {exc}")
        return exc

    def _fault(self, exc: BaseException) -> None:
        if not _is_write_fault(exc):
            return
        if self.failing is None:
            log.error(
                "writes fail; probing every %.0f s until they work: %s", self._probe_interval, exc
            )
        self.failing = str(exc) or type(exc).__name__

    def _recovered(self) -> None:
        if self.failing is not None:
            log.warning("writes work again (were failing: %s)", self.failing)
            self.failing = None

    def _probe(self) -> None:
        """While writes fail and no work comes: try a small write."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql in _PROBE:
                conn.execute(sql)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._fault(exc)
            return
        self._recovered()

    def _deliver_soon(self, outcomes: list[_Outcome], wake: Wakes) -> None:
        # A closed event loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, outcomes, wake)

    def _deliver(self, outcomes: list[_Outcome], wake: Wakes) -> None:
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
