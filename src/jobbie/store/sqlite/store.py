"""SqliteStore: the embedded backend. One writer thread (group commit), a read-only pool."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from jobbie.errors import JobbieError
from jobbie.models import EnqueueBatchResponse, EnqueueResponse, FailResponse, JobDetail, Queue
from jobbie.store.base import Claim, WakeCallback
from jobbie.store.params import (
    AckParams,
    BatchSpec,
    FailParams,
    FetchParams,
    HeartbeatParams,
    NewJob,
    ReleaseParams,
    Retention,
)
from jobbie.store.sqlite import claim, enqueue, finish, manage, queries, sweep
from jobbie.store.sqlite.database import migrate, open_connection
from jobbie.store.sqlite.reader import Reader
from jobbie.store.sqlite.writer import Tx, Writer
from jobbie.timeutil import now_ms

log = logging.getLogger("jobbie.store")

T = TypeVar("T")
DB_FILE = "jobbie.db"
# Rows per maintenance transaction, and transactions per step in one scheduler pass.
CHUNK = 500
MAX_CHUNKS = 40


class SqliteStore:
    """The Store protocol on an embedded SQLite database in `data_dir`."""

    def __init__(self, writer: Writer, reader: Reader, path: Path, retention: Retention) -> None:
        self._writer = writer
        self._reader = reader
        self.path = path
        self.retention = retention

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        durable: bool = True,
        on_wake: WakeCallback | None = None,
        retention: Retention | None = None,
    ) -> SqliteStore:
        """Create the directory and database if needed, migrate, start the writer."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / DB_FILE
        conn = await asyncio.to_thread(_open_writer_connection, path, durable)
        writer = Writer(conn, asyncio.get_running_loop(), on_wake or (lambda queues: None))
        writer.start()
        return cls(writer, Reader(path), path, retention or Retention())

    # --- worker protocol --------------------------------------------------------------------

    async def enqueue(self, job: NewJob) -> EnqueueResponse:
        return await self._writer.run(lambda tx: enqueue.enqueue(tx, job))

    async def enqueue_batch(
        self, jobs: list[NewJob], batch: BatchSpec | None
    ) -> EnqueueBatchResponse:
        return await self._writer.run(lambda tx: enqueue.enqueue_batch(tx, jobs, batch))

    async def fetch(self, params: FetchParams) -> Claim:
        return await self._writer.run(lambda tx: claim.claim(tx, params))

    async def ack(self, params: AckParams) -> str:
        return await self._writer.run(lambda tx: finish.ack(tx, params))

    async def ack_batch(self, acks: list[AckParams]) -> list[str | JobbieError]:
        return await self._writer.run(lambda tx: _each_alone(tx, finish.ack, acks))

    async def fail(self, params: FailParams) -> FailResponse:
        return await self._writer.run(lambda tx: finish.fail(tx, params))

    async def release(self, params: ReleaseParams) -> str:
        return await self._writer.run(lambda tx: finish.release(tx, params))

    async def heartbeat(self, params: HeartbeatParams) -> dict[str, str]:
        return await self._writer.run(lambda tx: claim.heartbeat(tx, params))

    # --- operators ---------------------------------------------------------------------------

    async def pause_queue(self, name: str) -> Queue:
        await self._writer.run(lambda tx: manage.set_paused(tx, name, True))
        return await self.get_queue(name)

    async def resume_queue(self, name: str) -> Queue:
        await self._writer.run(lambda tx: manage.set_paused(tx, name, False))
        return await self.get_queue(name)

    async def set_concurrency(self, name: str, maximum: int | None) -> Queue:
        await self._writer.run(lambda tx: manage.set_concurrency(tx, name, maximum))
        return await self.get_queue(name)

    async def set_throttle(self, name: str, rate: int | None, window_ms: int | None) -> Queue:
        await self._writer.run(lambda tx: manage.set_throttle(tx, name, rate, window_ms))
        return await self.get_queue(name)

    async def cancel_job(self, job_id: str) -> str:
        return await self._writer.run(lambda tx: manage.cancel_job(tx, job_id))

    # --- reads -------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> JobDetail:
        return await self._reader.run(lambda conn: queries.get_job(conn, job_id))

    async def list_queues(self) -> list[Queue]:
        return await self._reader.run(lambda conn: queries.list_queues(conn, now_ms()))

    async def get_queue(self, name: str) -> Queue:
        return await self._reader.run(lambda conn: queries.get_queue(conn, name, now_ms()))

    async def ping(self) -> None:
        await self._reader.run(queries.ping)

    # --- maintenance -------------------------------------------------------------------------

    async def maintain(self) -> dict[str, int]:
        retention = self.retention
        steps: dict[str, Callable[[Tx], int]] = {
            "promoted": lambda tx: sweep.promote_due(tx, CHUNK),
            "reclaimed": lambda tx: finish.reclaim_expired_leases(tx, CHUNK),
            "expired": lambda tx: finish.expire_waiting_jobs(tx, CHUNK),
            "unique_locks_pruned": lambda tx: sweep.prune_unique_locks(tx, CHUNK),
            "rate_records_pruned": lambda tx: sweep.prune_rate_limits(tx, CHUNK * 4),
            "events_pruned": lambda tx: sweep.prune_events(tx, retention, CHUNK * 4),
            "jobs_pruned": lambda tx: sweep.prune_finished_jobs(tx, retention, CHUNK),
        }
        report: dict[str, int] = {}
        for name, step in steps.items():
            total = 0
            for _ in range(MAX_CHUNKS):
                done = await self._writer.run(step)
                total += done
                if done == 0:
                    break
            report[name] = total
        report["drains_finished"] = await self._writer.run(sweep.finish_drains)
        report["workers_pruned"] = await self._writer.run(
            lambda tx: sweep.prune_workers(tx, retention)
        )
        return report

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close)
        await asyncio.to_thread(self._reader.close)

    async def run_write(self, op: Callable[[Tx], T]) -> T:
        """Run a backend-specific write (tests and tools)."""
        return await self._writer.run(op)


def _open_writer_connection(path: Path, durable: bool) -> sqlite3.Connection:
    conn = open_connection(path, durable=durable)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    return conn


def _each_alone(
    tx: Tx, op: Callable[[Tx, AckParams], str], items: list[AckParams]
) -> list[str | JobbieError]:
    """Run `op` per item in its own savepoint, so one failure leaves the others applied."""
    results: list[str | JobbieError] = []
    for item in items:
        tx.execute("SAVEPOINT item")
        try:
            results.append(op(tx, item))
        except JobbieError as exc:
            tx.execute("ROLLBACK TO item")
            results.append(exc)
        tx.execute("RELEASE item")
    return results
