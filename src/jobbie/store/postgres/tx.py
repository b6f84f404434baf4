"""Running store operations as PostgreSQL transactions.

Each operation is an `async def op(tx) -> T` run inside one transaction on a pooled
connection. Before COMMIT the runner writes what the operation collected on `tx`: queue totals
(one upsert per queue), lifecycle events (under the events lock, so ids follow commit order)
and one NOTIFY telling the other servers which queues got work. After COMMIT it wakes this
server's long-polls. A serialization failure or deadlock runs the whole operation again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg
import psycopg_pool

from jobbie.clock import Clock
from jobbie.errors import Unavailable
from jobbie.notifier import Wakes
from jobbie.store.base import CommitCallback
from jobbie.store.postgres.database import EVENTS_LOCK, RETRYABLE, translating

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
    transaction, and what to write and wake at commit."""

    __slots__ = ("conn", "events", "now", "totals", "wake")

    def __init__(self, conn: psycopg.AsyncConnection[Any], now: int) -> None:
        self.conn = conn
        self.now = now
        self.wake = Wakes()
        self.events: list[tuple[str, str | None, str | None, str | None, int]] = []
        self.totals: dict[str, list[int]] = {}

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run one statement; returns the cursor (rows are dicts)."""
        return await self.conn.execute(sql, params)

    async def one(self, sql: str, params: Sequence[Any] | None = None) -> Row | None:
        cur = await self.conn.execute(sql, params)
        row: Row | None = await cur.fetchone()
        return row

    async def all(self, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
        cur = await self.conn.execute(sql, params)
        rows: list[Row] = await cur.fetchall()
        return rows

    async def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """One statement for each parameter set, pipelined."""
        if params:
            async with self.conn.cursor() as cur:
                await cur.executemany(sql, params)


class Database:
    """The pool, the clock and this server's identity: runs operations as transactions."""

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        clock: DbClock,
        node_id: str,
        on_commit: CommitCallback,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.node_id = node_id
        self._on_commit = on_commit
        # Set by the listener while its own connection to the database is down.
        self.unreachable = False

    def _connection(self) -> Any:
        return self.pool.connection(timeout=UNREACHABLE_WAIT_S if self.unreachable else None)

    async def write(self, op: Callable[[Tx], Awaitable[T]], what: str = "write") -> T:
        """Run `op` in a transaction and commit; retried whole on serialization failures."""
        for attempt in range(_ATTEMPTS):
            try:
                async with (
                    translating(what),
                    self._connection() as conn,
                    conn.transaction(),
                ):
                    tx = Tx(conn, self.clock.now_ms())
                    result = await op(tx)
                    await _flush(tx, self.node_id)
            except RETRYABLE as exc:
                if attempt == _ATTEMPTS - 1:
                    raise Unavailable(f"{what}: too much contention, try again") from exc
                log.debug("%s: retrying after %s", what, type(exc).__name__)
                await asyncio.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
                continue
            if tx.wake or tx.events:
                self._on_commit(tx.wake)
            return result
        raise AssertionError("unreachable")

    async def read(self, op: Callable[[Tx], Awaitable[T]], what: str = "read") -> T:
        """Run `op` on a connection without a transaction (each statement sees the latest
        committed data); for reads only."""
        async with translating(what), self._connection() as conn:
            return await op(Tx(conn, self.clock.now_ms()))


async def _flush(tx: Tx, node_id: str) -> None:
    """Write the transaction's totals and events, and announce its wake-ups (before COMMIT)."""
    if tx.totals:
        await tx.many(
            "INSERT INTO queue_stats (queue, slot, enqueued, completed, failed, dead)"
            " VALUES (%s, count_slot(), %s, %s, %s, %s) ON CONFLICT (queue, slot) DO UPDATE"
            " SET enqueued = queue_stats.enqueued + excluded.enqueued,"
            " completed = queue_stats.completed + excluded.completed,"
            " failed = queue_stats.failed + excluded.failed,"
            " dead = queue_stats.dead + excluded.dead",
            [(queue, *totals) for queue, totals in sorted(tx.totals.items())],
        )
    if tx.events:
        # Held until COMMIT ends: ids are taken in commit order (see 001_initial.sql).
        await tx.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
        columns = list(zip(*tx.events, strict=True))
        await tx.execute(
            "INSERT INTO events (type, job_id, queue, data, at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[])",
            [list(column) for column in columns],
        )
    if tx.wake or tx.events:
        payload = msgspec.json.encode({"node": node_id, "wake": dict(tx.wake)}).decode()
        if len(payload) > _MAX_PAYLOAD:
            payload = msgspec.json.encode({"node": node_id, "all": True}).decode()
        await tx.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
