"""SqliteStore: the embedded backend. One writer thread (group commit), a read-only pool."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from jobbie.clock import Clock
from jobbie.errors import JobbieError
from jobbie.models import (
    AuditList,
    BackendName,
    Batch,
    BulkAccepted,
    BulkResponse,
    BulkStatus,
    ClusterNode,
    EnqueueBatchResponse,
    EnqueueResponse,
    EventMessage,
    FailResponse,
    FailureGroup,
    FetchedJob,
    JobDetail,
    Queue,
    QueueKey,
    Readiness,
    Schedule,
    SearchResponse,
    WorkerInfo,
)
from jobbie.store.base import Claim, CommitCallback
from jobbie.store.bulk import BulkRunner
from jobbie.store.console import FAILURE_GROUPS_LIMIT, AuditRecord, schedule_job
from jobbie.store.history import Snapshot
from jobbie.store.maintenance import run_maintenance
from jobbie.store.params import (
    AckParams,
    BatchSpec,
    BulkSpec,
    FailParams,
    FetchParams,
    HeartbeatParams,
    NewJob,
    ReleaseParams,
    Retention,
    ScheduleSpec,
)
from jobbie.store.search import SearchFilter
from jobbie.store.sqlite import (
    bulk,
    claim,
    console,
    enqueue,
    finish,
    finish_many,
    keys,
    manage,
    queries,
    schedules,
    sweep,
)
from jobbie.store.sqlite.checkpoint import Checkpointer
from jobbie.store.sqlite.database import migrate, open_connection
from jobbie.store.sqlite.reader import Reader
from jobbie.store.sqlite.writer import Tx, Writer

log = logging.getLogger("jobbie.store")

DB_FILE = "jobbie.db"
# Jobs per writer transaction in bulk actions: a 100k bulk retry runs at ~55k jobs/s while a
# worker's fetch+ack p50 goes from 2.3 to 14 ms (bench/manage.py).
BULK_CHUNK = 500


class SqliteStore:
    """The Store protocol on an embedded SQLite database in `data_dir`."""

    backend: BackendName = "sqlite"

    def __init__(
        self,
        writer: Writer,
        reader: Reader,
        checkpointer: Checkpointer,
        path: Path,
        retention: Retention,
        clock: Clock,
    ) -> None:
        self.clock = clock
        self._writer = writer
        self._reader = reader
        self._checkpointer = checkpointer
        self.path = path
        self.retention = retention
        self._bulk = BulkRunner(self, chunk=BULK_CHUNK)

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        durable: bool = True,
        on_commit: CommitCallback | None = None,
        retention: Retention | None = None,
        clock: Clock | None = None,
    ) -> SqliteStore:
        """Create the directory and database if needed, migrate, start the writer."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / DB_FILE
        conn = await asyncio.to_thread(_open_writer_connection, path, durable)
        clock = clock or Clock()
        writer = Writer(
            conn, asyncio.get_running_loop(), on_commit or (lambda queues: None), clock=clock
        )
        writer.start()
        # A bulk operation cut short by a restart will not resume: say so.
        await writer.run(bulk.record_interrupted)
        checkpointer = Checkpointer(path)
        checkpointer.start()
        return cls(writer, Reader(path), checkpointer, path, retention or Retention(), clock)

    def describe(self) -> dict[str, str]:
        return {"backend": self.backend, "path": str(self.path.resolve())}

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
        return await self._writer.run(lambda tx: finish.ack_many(tx, acks))

    async def fail(self, params: FailParams) -> FailResponse:
        return await self._writer.run(lambda tx: finish.fail(tx, params))

    async def release(self, params: ReleaseParams) -> str:
        return await self._writer.run(lambda tx: finish.release(tx, params))

    async def ack_next(self, params: AckParams, next_: FetchParams) -> tuple[str, list[FetchedJob]]:
        return await self._writer.run(lambda tx: finish_many.ack_then_claim(tx, params, next_))

    async def ack_batch_next(
        self, acks: list[AckParams], next_: FetchParams
    ) -> tuple[list[str | JobbieError], list[FetchedJob]]:
        return await self._writer.run(lambda tx: finish_many.ack_many_then_claim(tx, acks, next_))

    async def fail_batch(self, fails: list[FailParams]) -> list[FailResponse | JobbieError]:
        return await self._writer.run(lambda tx: finish_many.fail_many(tx, fails))

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

    async def set_fairness(self, name: str, mode: str) -> Queue:
        await self._writer.run(lambda tx: manage.set_fairness(tx, name, mode))
        return await self.get_queue(name)

    async def set_key_concurrency(self, name: str, maximum: int | None) -> Queue:
        await self._writer.run(lambda tx: manage.set_key_concurrency(tx, name, maximum))
        return await self.get_queue(name)

    async def set_key_throttle(self, name: str, rate: int | None, window_ms: int | None) -> Queue:
        await self._writer.run(lambda tx: manage.set_key_throttle(tx, name, rate, window_ms))
        return await self.get_queue(name)

    async def queue_keys(self, name: str, limit: int) -> list[QueueKey]:
        now = self.clock.now_ms()
        return await self._reader.run(lambda conn: keys.busiest(conn, name, limit, now))

    async def keys_with_backlog(self) -> dict[str, int]:
        return await self._reader.run(keys.with_backlog)

    async def cancel_job(self, job_id: str) -> str:
        return await self._writer.run(lambda tx: manage.cancel_job(tx, job_id))

    async def retry_job(self, job_id: str) -> JobDetail:
        await self._writer.run(lambda tx: manage.retry_job(tx, job_id))
        return await self.get_job(job_id)

    async def move_job(self, job_id: str, queue: str) -> JobDetail:
        await self._writer.run(lambda tx: manage.move_job(tx, job_id, queue))
        return await self.get_job(job_id)

    async def delete_job(self, job_id: str) -> None:
        await self._writer.run(lambda tx: manage.delete_job(tx, job_id))

    async def clear_queue(self, name: str) -> int:
        return await self._repeat(lambda tx: manage.clear_chunk(tx, name, BULK_CHUNK))

    async def drain_queue(self, name: str) -> Queue:
        await self._writer.run(lambda tx: manage.drain(tx, name))
        return await self.get_queue(name)

    async def delete_queue(self, name: str) -> int:
        return await self._repeat(lambda tx: manage.delete_queue_chunk(tx, name, BULK_CHUNK))

    async def _repeat(self, chunk: Callable[[Tx], int]) -> int:
        """Run a chunked step in separate writer transactions until it does nothing."""
        total = 0
        while done := await self._writer.run(chunk):
            total += done
        return total

    async def bulk(self, spec: BulkSpec) -> BulkResponse | BulkAccepted:
        return await self._bulk.run(spec)

    # BulkBackend: the I/O of jobbie.store.bulk.BulkRunner.

    async def count_matches(self, spec: BulkSpec) -> tuple[int, int]:
        return await self._reader.run(lambda conn: queries.count_matches(conn, spec))

    async def matching_keys(self, spec: BulkSpec) -> list[int]:
        # Read once on the read pool: walking the matches chunk by chunk in seq order would
        # sort them all again for every chunk.
        return await self._reader.run(lambda conn: bulk.matching_seqs(conn, spec))

    async def apply_chunk(
        self, spec: BulkSpec, keys: Sequence[int], bulk_id: str | None
    ) -> tuple[int, int]:
        def step(tx: Tx) -> tuple[int, int]:
            seqs = bulk.still_matching(tx, spec, keys)
            changed = bulk.apply(tx, spec, seqs)
            if bulk_id is not None:
                bulk.record_progress(tx, bulk_id, changed, len(seqs) - changed)
            return len(seqs), changed

        return await self._writer.run(step)

    async def record_bulk_start(
        self, bulk_id: str, spec: BulkSpec, estimated: int, errors: int
    ) -> None:
        await self._writer.run(lambda tx: bulk.record_start(tx, bulk_id, spec, estimated, errors))

    async def record_bulk_end(self, bulk_id: str, status: str) -> None:
        await self._writer.run(lambda tx: bulk.record_end(tx, bulk_id, status))

    async def create_schedule(self, spec: ScheduleSpec) -> Schedule:
        schedule_id = await self._writer.run(lambda tx: schedules.create(tx, spec))
        return await self.get_schedule(schedule_id)

    async def update_schedule(self, schedule_id: str, spec: ScheduleSpec) -> Schedule:
        await self._writer.run(lambda tx: schedules.update(tx, schedule_id, spec))
        return await self.get_schedule(schedule_id)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._writer.run(lambda tx: schedules.delete(tx, schedule_id))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._reader.run(lambda conn: queries.get_schedule(conn, schedule_id))

    async def list_schedules(self) -> list[Schedule]:
        return await self._reader.run(queries.list_schedules)

    async def read_events(
        self, after_id: int, queues: tuple[str, ...], types: tuple[str, ...], limit: int
    ) -> list[EventMessage]:
        return await self._reader.run(
            lambda conn: queries.read_events(conn, after_id, queues, types, limit)
        )

    async def last_event_id(self) -> int:
        return await self._reader.run(queries.last_event_id)

    async def search(self, f: SearchFilter) -> SearchResponse:
        started = time.perf_counter()
        found = await self._reader.run(lambda conn: queries.search(conn, f))
        return msgspec.structs.replace(
            found, duration_ms=round((time.perf_counter() - started) * 1000, 3)
        )

    async def get_bulk(self, bulk_id: str) -> BulkStatus:
        return await self._reader.run(lambda conn: queries.get_bulk(conn, bulk_id))

    async def get_batch(self, batch_id: str) -> Batch:
        return await self._reader.run(lambda conn: queries.get_batch(conn, batch_id))

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._reader.run(queries.list_workers)

    # --- reads -------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> JobDetail:
        return await self._reader.run(lambda conn: queries.get_job(conn, job_id))

    async def list_queues(self) -> list[Queue]:
        now = self.clock.now_ms()
        return await self._reader.run(lambda conn: queries.list_queues(conn, now))

    async def get_queue(self, name: str) -> Queue:
        now = self.clock.now_ms()
        return await self._reader.run(lambda conn: queries.get_queue(conn, name, now))

    async def ping(self) -> None:
        await self._reader.run(queries.ping)

    async def bulk_matches(self, spec: BulkSpec) -> int:
        return (await self.count_matches(spec))[0]

    async def failure_groups(self) -> list[FailureGroup]:
        return await self._reader.run(
            lambda conn: console.failure_groups(conn, FAILURE_GROUPS_LIMIT)
        )

    async def record_audit(self, record: AuditRecord, retention_ms: int) -> None:
        await self._writer.run(lambda tx: console.record_audit(tx, record, retention_ms))

    async def list_audit(self, limit: int, before_id: int | None) -> AuditList:
        return await self._reader.run(lambda conn: console.list_audit(conn, limit, before_id))

    async def record_history(self) -> None:
        await self._writer.run(console.record_history)

    async def read_history(self, queue: str | None, since_ms: int) -> list[Snapshot]:
        return await self._reader.run(lambda conn: console.read_history(conn, queue, since_ms))

    async def run_schedule(self, schedule_id: str) -> str:
        job = schedule_job(await self.get_schedule(schedule_id))
        return (await self.enqueue(job)).job_id

    async def readiness(self) -> Readiness:
        running = self._writer.running
        error = self._writer.failing
        if running and error is None:
            try:
                await self.ping()
            except JobbieError as exc:
                error = exc.message
        ok = running and error is None
        return Readiness(
            status="ok" if ok else "unavailable",
            database="ok" if error is None else "failing",
            writer="running" if running else "stopped",
            error=error,
        )

    async def cluster_nodes(self) -> list[ClusterNode] | None:
        return None  # one server owns the database file

    # --- maintenance -------------------------------------------------------------------------

    async def maintain(self) -> dict[str, int]:
        return await run_maintenance(self, self.retention)

    # MaintenanceBackend: the steps of jobbie.store.maintenance.run_maintenance.

    async def promote_due(self, limit: int) -> int:
        return await self._writer.run(lambda tx: sweep.promote_due(tx, limit))

    async def fire_schedules(self, limit: int) -> int:
        return await self._writer.run(lambda tx: schedules.fire_due(tx, limit))

    async def reclaim_expired_leases(self, limit: int) -> int:
        return await self._writer.run(lambda tx: finish.reclaim_expired_leases(tx, limit))

    async def expire_waiting_jobs(self, limit: int) -> int:
        return await self._writer.run(lambda tx: finish.expire_waiting_jobs(tx, limit))

    async def prune_unique_locks(self, limit: int) -> int:
        return await self._writer.run(lambda tx: sweep.prune_unique_locks(tx, limit))

    async def prune_rate_limits(self, limit: int) -> int:
        return await self._writer.run(lambda tx: sweep.prune_rate_limits(tx, limit))

    async def prune_keys(self, limit: int) -> int:
        return await self._writer.run(lambda tx: keys.prune(tx, limit))

    async def prune_events(self, retention: Retention, limit: int) -> int:
        return await self._writer.run(lambda tx: sweep.prune_events(tx, retention, limit))

    async def prune_finished_jobs(self, retention: Retention, limit: int) -> int:
        return await self._writer.run(lambda tx: sweep.prune_finished_jobs(tx, retention, limit))

    async def finish_drains(self) -> int:
        return await self._writer.run(sweep.finish_drains)

    async def prune_workers(self, retention: Retention) -> int:
        return await self._writer.run(lambda tx: sweep.prune_workers(tx, retention))

    async def prune_idle_queues(self, retention: Retention, limit: int) -> int:
        return await self._writer.run(lambda tx: sweep.prune_idle_queues(tx, retention, limit))

    async def compact_failure_counts(self, limit: int) -> int:
        # Nothing to do: the triggers delete a row when its count reaches 0 (migration 008).
        return 0

    async def close(self) -> None:
        await self._bulk.close()
        await asyncio.to_thread(self._writer.close)
        await asyncio.to_thread(self._reader.close)
        await asyncio.to_thread(self._checkpointer.close)


def _open_writer_connection(path: Path, durable: bool) -> sqlite3.Connection:
    conn = open_connection(path, durable=durable)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    return conn
