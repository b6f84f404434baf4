"""Running store operations as PostgreSQL transactions.

Each operation is an `async def op(tx) -> T` run inside one transaction on a pooled
connection. Before COMMIT the runner writes what the operation collected on `tx`: queue totals
(one upsert per queue) and lifecycle events, pipelined with the COMMIT (one round trip for
all). A serialization failure or deadlock runs the whole operation again.

After COMMIT the runner wakes this server's long-polls (they need the committed jobs, nothing
more) and answers its caller; the server's `Announcer` then gives the new events their stream
positions and sends one NOTIFY telling the other servers which queues got work, and wakes this
server's commit watchers (event streams read by position). Nobody waits for the announcement:
it would add a round trip to every write, and to a pickup across servers (which crosses two
writes). Reads of the event log wait for it instead (`Announcer.settled`), so a caller still
reads its own write's events. The announcement's two steps take
a database-wide lock (the events lock; NOTIFY's own queue lock) held until their transaction
ends, so they stay out of the main transaction, whose commit waits for its WAL flush: holding
them there would let only one writing transaction commit per fsync across every server. The
announcement commits without waiting for the flush (it writes nothing a client was promised):
should the database crash right after, events get positions again later and a stream may see
them twice, never lose them; a lost NOTIFY only delays a job until the listener's fallback
poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg
import psycopg_pool
from psycopg.pq import TransactionStatus

from jobbie.clock import Clock
from jobbie.errors import Unavailable
from jobbie.notifier import Available, Wakes
from jobbie.store.base import CommitCallback
from jobbie.store.postgres.database import RETRYABLE, translating

log = logging.getLogger("jobbie.store")

T = TypeVar("T")
Row = dict[str, Any]

CHANNEL = "jobbie"
# NOTIFY payloads are limited to 8000 bytes; a bigger wake-up becomes "wake everything".
_MAX_PAYLOAD = 7000
_ATTEMPTS = 5
# While the database is known to be unreachable, a request waits this long at most for a
# connection (not the pool's full timeout), so it answers 503 quickly.
UNREACHABLE_WAIT_S = 1.0
# A transaction left open by an error; any other state is closed already, or is the pool's to
# clean up (a statement cancelled mid-flight leaves the connection busy: the pool drops it).
_OPEN = (TransactionStatus.INTRANS, TransactionStatus.INERROR)


class DbClock(Clock):
    """The database's clock as seen from here: this machine's clock (with the test offset of
    the clock it wraps) plus the measured difference to the database server's clock, so that
    servers with skewed clocks judge leases, schedules and expiry alike."""

    def __init__(self, base: Clock) -> None:
        super().__init__()
        self._base = base
        self.skew_ms = 0

    def now_ms(self) -> int:
        return self._base.now_ms() + self.skew_ms

    @property
    def offset_ms(self) -> int:
        return self._base.offset_ms

    def advance(self, seconds: float) -> int:
        return self._base.advance(seconds)


class Tx:
    """What an operation sees: the connection in its transaction, the time of the
    transaction, and what to write and wake at commit.

    Statements go through these methods (`savepoint` for a nested block), so that what needs
    no answer travels with the next statement that does, pipelined: a write's BEGIN, and the
    statements given to `defer`; each costs no round trip of its own."""

    __slots__ = ("_begin", "_deferred", "conn", "events", "logged", "now", "totals", "wake")

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], now: int, *, begin: bool = False
    ) -> None:
        self.conn = conn
        self.now = now
        self.wake = Wakes()
        self.events: list[tuple[str, str | None, str | None, str | None, int]] = []
        self.totals: dict[str, list[int]] = {}
        # A single-statement write wrote events itself (they need their stream positions).
        self.logged = False
        # BEGIN is still to send (a write whose operation has run no statement yet).
        self._begin = begin
        self._deferred: list[tuple[str, Sequence[Any] | None]] = []

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run one statement; returns the cursor (rows are dicts)."""
        if not self._begin and not self._deferred:
            return await self.conn.execute(sql, params)
        async with self.conn.pipeline():
            await self.send_pending()
            cur = await self.conn.execute(sql, params)
        return cur  # its results arrived when the pipeline ended

    async def one(self, sql: str, params: Sequence[Any] | None = None) -> Row | None:
        cur = await self.execute(sql, params)
        row: Row | None = await cur.fetchone()
        return row

    async def all(self, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
        cur = await self.execute(sql, params)
        rows: list[Row] = await cur.fetchall()
        return rows

    async def batch(self, *statements: tuple[str, Sequence[Any] | None]) -> list[list[Row]]:
        """Several statements in one round trip (pipelined); the rows of each, in order."""
        async with self.conn.pipeline():
            await self.send_pending()
            cursors = [await self.conn.execute(sql, params) for sql, params in statements]
        return [await cursor.fetchall() for cursor in cursors]

    async def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """One statement for each parameter set, pipelined."""
        if not params:
            return
        async with self.conn.pipeline():
            await self.send_pending()
            async with self.conn.cursor() as cur:
                await cur.executemany(sql, params)

    def defer(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement whose answer nobody reads with the next one (or the COMMIT), in
        order; an error it raises surfaces there."""
        self._deferred.append((sql, params))

    async def send_pending(self) -> None:
        """Send BEGIN (in a write) and the deferred statements; in a pipeline, only queued."""
        if self._begin:
            self._begin = False
            await self.conn.execute("BEGIN")
        deferred, self._deferred = self._deferred, []
        for sql, params in deferred:
            await self.conn.execute(sql, params)

    @property
    def empty(self) -> bool:
        """A write that has sent nothing and has nothing to send: no transaction to commit."""
        return self._begin and not self._deferred and not self.totals and not self.events

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested block that rolls back alone when it raises."""
        if self._begin or self._deferred:
            async with self.conn.pipeline():
                await self.send_pending()
        async with self.conn.transaction():
            yield


class Database:
    """The pool, the clock and this server's identity: runs operations as transactions."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        clock: DbClock,
        node_id: str,
        on_commit: CommitCallback,
        announcer: Announcer,
    ) -> None:
        self.pool = pool
        self.announcer = announcer
        self.clock = clock
        self.node_id = node_id
        self._on_commit = on_commit
        # Set by the listener while its own connection to the database is down.
        self.unreachable = False

    def _connection(self) -> Any:
        return self.pool.connection(timeout=UNREACHABLE_WAIT_S if self.unreachable else None)

    async def write(
        self, op: Callable[[Tx], Awaitable[T]], what: str = "write", *, single: bool = False
    ) -> T:
        """Run `op` in a transaction and commit; retried whole on serialization failures.

        `single`: `op` writes with one statement, which is its own transaction (the pool's
        connections are in autocommit), so no BEGIN or COMMIT travels: one round trip. Such a
        statement writes its own events and totals, and says so with `tx.logged`."""
        for attempt in range(_ATTEMPTS):
            try:
                async with translating(what), self._connection() as conn:
                    tx = Tx(conn, self.clock.now_ms(), begin=not single)
                    result = await (op(tx) if single else _transaction(tx, op))
                    assert not single or not (tx.events or tx.totals or tx._deferred), what
            except RETRYABLE as exc:
                if attempt == _ATTEMPTS - 1:
                    raise Unavailable(f"{what}: too much contention, try again") from exc
                log.debug("%s: retrying after %s", what, type(exc).__name__)
                await asyncio.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
                continue
            if tx.wake:
                # This server's long-polls claim now: they need the committed jobs, not the
                # events' positions.
                self._on_commit(Available(tx.wake))
            if tx.wake or tx.events or tx.logged:
                self.announcer.post(tx.wake, sequence=bool(tx.events) or tx.logged)
            return result
        raise AssertionError("unreachable")

    async def read(self, op: Callable[[Tx], Awaitable[T]], what: str = "read") -> T:
        """Run `op` on a connection without a transaction (each statement sees the latest
        committed data); for reads only."""
        async with translating(what), self._connection() as conn:
            tx = Tx(conn, self.clock.now_ms())
            result = await op(tx)
            await tx.send_pending()  # what it deferred, if anything
            return result


class Announcer:
    """Announces this server's commits on a connection of its own, one round at a time, in
    the background.

    Commits that end while a round runs are merged into the next one (one NOTIFY and one
    sequencing run for all of them). After each round `on_round` wakes the commit watchers:
    the events are readable in order now. The round is one autocommit statement
    (`jobbie_announce`), so the database-wide locks it takes are held for microseconds, and its
    commit does not wait for the WAL flush (synchronous_commit off: it writes nothing a client
    was promised).
    """

    def __init__(self, conninfo: str, node_id: str, on_round: Callable[[], None]) -> None:
        self._conninfo = conninfo
        self._node_id = node_id
        self._on_round = on_round
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._wake = Wakes()
        self._sequence = False
        self._pending = False
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    def post(self, wake: Wakes, *, sequence: bool) -> None:
        """Announce a commit that woke `wake` (and, with `sequence`, wrote events) soon."""
        self._wake.update(wake)
        self._sequence |= sequence
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="jobbie-announcer")

    async def settled(self) -> None:
        """Return once every commit posted so far has been announced (its events have their
        positions). Never raises."""
        if self._task is None or self._task.done():
            return  # nothing posted is waiting: the task runs while anything is
        done = asyncio.get_running_loop().create_future()
        self._waiters.append(done)
        await asyncio.shield(done)

    async def _run(self) -> None:
        while self._pending or self._waiters:
            # A waiter is answered by the next round, which covers every post before it.
            waiters, self._waiters = self._waiters, []
            wake, self._wake = self._wake, Wakes()
            sequence, self._sequence = self._sequence, False
            pending, self._pending = self._pending, False
            try:
                if pending:
                    await self._round(wake, sequence)
            except (psycopg.Error, OSError) as exc:
                log.warning("announcing commits failed (the fallback poll will): %s", exc)
                await self._disconnect()
            finally:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                if pending:
                    self._on_round()

    async def _round(self, wake: Wakes, sequence: bool) -> None:
        payload = msgspec.json.encode({"node": self._node_id, "wake": dict(wake)}).decode()
        if len(payload) > _MAX_PAYLOAD:
            payload = msgspec.json.encode({"node": self._node_id, "all": True}).decode()
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            await self._conn.execute("SET synchronous_commit = off")
        await self._conn.execute("SELECT jobbie_announce(%s, %s)", (payload, sequence))

    async def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self._disconnect()


async def _transaction(tx: Tx, op: Callable[[Tx], Awaitable[T]]) -> T:
    """Run `op` (BEGIN goes with its first statement), then the deferred statements, the
    collected writes and COMMIT pipelined: they need no answer, so they cost one round trip
    together, not one each (a pickup crosses two such commits)."""
    conn = tx.conn
    try:
        result = await op(tx)
        if not tx.empty:
            async with conn.pipeline():
                await tx.send_pending()
                await _flush(tx)
                await conn.execute("COMMIT")
    except BaseException:
        if conn.info.transaction_status in _OPEN:
            # As psycopg's transaction block does: never hide the error that got here.
            try:
                await conn.execute("ROLLBACK")
            except Exception as exc:
                log.warning("rollback failed: %s", exc)
        raise
    return result


# Adds (queue, enqueued, completed, failed, dead) to a queue's running totals, in this
# connection's slot (see count_slot in 001_initial.sql): no row every writer contends on.
TOTALS = (
    "INSERT INTO queue_stats (queue, slot, enqueued, completed, failed, dead)"
    " VALUES (%s, count_slot(), %s, %s, %s, %s) ON CONFLICT (queue, slot) DO UPDATE"
    " SET enqueued = queue_stats.enqueued + excluded.enqueued,"
    " completed = queue_stats.completed + excluded.completed,"
    " failed = queue_stats.failed + excluded.failed,"
    " dead = queue_stats.dead + excluded.dead"
)
EVENTS = "INSERT INTO events (type, job_id, queue, data, at)"


async def _flush(tx: Tx) -> None:
    """Write the transaction's totals and events (before COMMIT), in the open pipeline."""
    conn = tx.conn
    if tx.totals:
        async with conn.cursor() as cur:
            await cur.executemany(
                TOTALS, [(queue, *totals) for queue, totals in sorted(tx.totals.items())]
            )
    if tx.events:
        columns = list(zip(*tx.events, strict=True))
        await conn.execute(
            f"{EVENTS} SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::bigint[])",
            [list(column) for column in columns],
        )
