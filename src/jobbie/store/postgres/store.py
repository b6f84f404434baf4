"""PostgresStore: several Jobbie servers on one PostgreSQL database.

Every operation is one transaction on a pooled connection (`tx.Database`); row locks
(`FOR UPDATE SKIP LOCKED` in the claim), advisory locks (limited queues, event ids, migrations)
and guarded updates keep the lifecycle rules with any number of servers. One server at a time
leads (`leader.py`) and runs the scheduler's maintenance; LISTEN/NOTIFY (`listener.py`) wakes
long-polls on every server when another commits work.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

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
from jobbie.notifier import Wakes
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
from jobbie.store.postgres import (
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
from jobbie.store.postgres.database import (
    PoolSettings,
    conninfo,
    migrate,
    open_pool,
    safe_dsn,
)
from jobbie.store.postgres.leader import Leadership
from jobbie.store.postgres.listener import Listener
from jobbie.store.postgres.tx import Announcer, Database, DbClock, Tx
from jobbie.store.search import SearchFilter

# Jobs per transaction in bulk actions and queue clears (one short transaction each, so row
# locks are held briefly and workers keep claiming meanwhile).
BULK_CHUNK = 500


class PostgresStore:
    """The Store protocol on a PostgreSQL database shared by any number of servers."""

    backend: BackendName = "postgres"

    def __init__(
        self,
        db: Database,
        url: str,
        retention: Retention,
        leadership: Leadership,
        listener: Listener,
    ) -> None:
        self._db = db
        self.clock: Clock = db.clock
        self.url = url
        self.retention = retention
        self._leadership = leadership
        self._listener = listener
        self._bulk = BulkRunner(self, chunk=BULK_CHUNK)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        node_id: str,
        address: str,
        settings: PoolSettings | None = None,
        on_commit: CommitCallback | None = None,
        retention: Retention | None = None,
        clock: Clock | None = None,
    ) -> PostgresStore:
        """Connect, migrate (once across servers), join the cluster, start listening."""
        settings = settings or PoolSettings()
        pool = await open_pool(url, settings)
        try:
            async with pool.connection() as conn:
                await migrate(conn)
            db_clock = DbClock(clock or Clock())
            callback = on_commit or (lambda queues: None)
            # After each announcement the events are readable in order: wake the streams.
            announcer = Announcer(conninfo(url, settings), node_id, lambda: callback(Wakes()))
            db = Database(pool, db_clock, node_id, callback, announcer)
            leadership = Leadership(db, node_id=node_id, address=address)
            await leadership.start()
            # A bulk operation this node ran before a restart will not resume: say so.
            await db.write(lambda tx: bulk.record_interrupted(tx, node_id))
            listener = Listener(url, settings, db, callback)
            await listener.start()
        except BaseException:
            await pool.close()
            raise
        return cls(db, url, retention or Retention(), leadership, listener)

    def describe(self) -> dict[str, str]:
        return {"backend": self.backend, "database": safe_dsn(self.url)}

    # --- worker protocol --------------------------------------------------------------------

    async def enqueue(self, job: NewJob) -> EnqueueResponse:
        if enqueue.is_plain(job):
            return await self._db.write(lambda tx: enqueue.enqueue_plain(tx, job), single=True)
        return await self._db.write(lambda tx: enqueue.enqueue(tx, job))

    async def enqueue_batch(
        self, jobs: list[NewJob], batch: BatchSpec | None
    ) -> EnqueueBatchResponse:
        return await self._db.write(lambda tx: enqueue.enqueue_batch(tx, jobs, batch))

    async def fetch(self, params: FetchParams) -> Claim:
        # Most fetches take from one plain queue: one statement, one round trip.
        got = await self._db.write(lambda tx: claim.fetch_plain(tx, params), single=True)
        if got is not None:
            return got
        return await self._db.write(lambda tx: claim.claim(tx, params))

    async def ack(self, params: AckParams) -> str:
        return await self._db.write(lambda tx: finish.ack(tx, params))

    async def ack_batch(self, acks: list[AckParams]) -> list[str | JobbieError]:
        return await self._db.write(lambda tx: finish.ack_many(tx, acks))

    async def fail(self, params: FailParams) -> FailResponse:
        return await self._db.write(lambda tx: finish.fail(tx, params))

    async def release(self, params: ReleaseParams) -> str:
        return await self._db.write(lambda tx: finish.release(tx, params))

    async def ack_next(self, params: AckParams, next_: FetchParams) -> tuple[str, list[FetchedJob]]:
        return await self._db.write(lambda tx: finish_many.ack_then_claim(tx, params, next_))

    async def ack_batch_next(
        self, acks: list[AckParams], next_: FetchParams
    ) -> tuple[list[str | JobbieError], list[FetchedJob]]:
        return await self._db.write(lambda tx: finish_many.ack_many_then_claim(tx, acks, next_))

    async def fail_batch(self, fails: list[FailParams]) -> list[FailResponse | JobbieError]:
        return await self._db.write(lambda tx: finish_many.fail_many(tx, fails))

    async def heartbeat(self, params: HeartbeatParams) -> dict[str, str]:
        return await self._db.write(lambda tx: claim.heartbeat(tx, params))

    # --- operators ---------------------------------------------------------------------------

    async def pause_queue(self, name: str) -> Queue:
        await self._db.write(lambda tx: manage.set_paused(tx, name, True))
        return await self.get_queue(name)

    async def resume_queue(self, name: str) -> Queue:
        await self._db.write(lambda tx: manage.set_paused(tx, name, False))
        return await self.get_queue(name)

    async def set_concurrency(self, name: str, maximum: int | None) -> Queue:
        await self._db.write(lambda tx: manage.set_concurrency(tx, name, maximum))
        return await self.get_queue(name)

    async def set_throttle(self, name: str, rate: int | None, window_ms: int | None) -> Queue:
        await self._db.write(lambda tx: manage.set_throttle(tx, name, rate, window_ms))
        return await self.get_queue(name)

    async def set_fairness(self, name: str, mode: str) -> Queue:
        await self._db.write(lambda tx: manage.set_fairness(tx, name, mode))
        return await self.get_queue(name)

    async def set_key_concurrency(self, name: str, maximum: int | None) -> Queue:
        await self._db.write(lambda tx: manage.set_key_concurrency(tx, name, maximum))
        return await self.get_queue(name)

    async def set_key_throttle(self, name: str, rate: int | None, window_ms: int | None) -> Queue:
        await self._db.write(lambda tx: manage.set_key_throttle(tx, name, rate, window_ms))
        return await self.get_queue(name)

    async def queue_keys(self, name: str, limit: int) -> list[QueueKey]:
        now = self.clock.now_ms()
        return await self._db.read(lambda tx: keys.busiest(tx, name, limit, now))

    async def keys_with_backlog(self) -> dict[str, int]:
        return await self._db.read(keys.with_backlog)

    async def cancel_job(self, job_id: str) -> str:
        return await self._db.write(lambda tx: manage.cancel_job(tx, job_id))

    async def retry_job(self, job_id: str) -> JobDetail:
        await self._db.write(lambda tx: manage.retry_job(tx, job_id))
        return await self.get_job(job_id)

    async def move_job(self, job_id: str, queue: str) -> JobDetail:
        await self._db.write(lambda tx: manage.move_job(tx, job_id, queue))
        return await self.get_job(job_id)

    async def delete_job(self, job_id: str) -> None:
        await self._db.write(lambda tx: manage.delete_job(tx, job_id))

    async def clear_queue(self, name: str) -> int:
        return await self._repeat(lambda tx: manage.clear_chunk(tx, name, BULK_CHUNK))

    async def drain_queue(self, name: str) -> Queue:
        await self._db.write(lambda tx: manage.drain(tx, name))
        return await self.get_queue(name)

    async def delete_queue(self, name: str) -> int:
        return await self._repeat(lambda tx: manage.delete_queue_chunk(tx, name, BULK_CHUNK))

    async def _repeat(self, chunk: Callable[[Tx], Awaitable[int]]) -> int:
        """Run a chunked step in separate transactions until it does nothing."""
        total = 0
        while done := await self._db.write(chunk):
            total += done
        return total

    async def bulk(self, spec: BulkSpec) -> BulkResponse | BulkAccepted:
        return await self._bulk.run(spec)

    # BulkBackend: the I/O of jobbie.store.bulk.BulkRunner.

    async def count_matches(self, spec: BulkSpec) -> tuple[int, int]:
        return await self._db.read(lambda tx: queries.count_matches(tx, spec))

    async def matching_keys(self, spec: BulkSpec) -> list[int]:
        # Read once on the read pool: walking the matches chunk by chunk in seq order would
        # sort them all again for every chunk.
        return await self._db.read(lambda tx: bulk.matching_seqs(tx, spec))

    async def apply_chunk(
        self, spec: BulkSpec, keys: Sequence[int], bulk_id: str | None
    ) -> tuple[int, int]:
        async def step(tx: Tx) -> tuple[int, int]:
            seqs = await bulk.still_matching(tx, spec, keys)
            changed = await bulk.apply(tx, spec, seqs)
            if bulk_id is not None:
                await bulk.record_progress(tx, bulk_id, changed, len(seqs) - changed)
            return len(seqs), changed

        return await self._db.write(step)

    async def record_bulk_start(
        self, bulk_id: str, spec: BulkSpec, estimated: int, errors: int
    ) -> None:
        node = self._db.node_id
        await self._db.write(
            lambda tx: bulk.record_start(tx, bulk_id, spec, estimated, errors, node)
        )

    async def record_bulk_end(self, bulk_id: str, status: str) -> None:
        await self._db.write(lambda tx: bulk.record_end(tx, bulk_id, status))

    async def create_schedule(self, spec: ScheduleSpec) -> Schedule:
        schedule_id = await self._db.write(lambda tx: schedules.create(tx, spec))
        return await self.get_schedule(schedule_id)

    async def update_schedule(self, schedule_id: str, spec: ScheduleSpec) -> Schedule:
        await self._db.write(lambda tx: schedules.update(tx, schedule_id, spec))
        return await self.get_schedule(schedule_id)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._db.write(lambda tx: schedules.delete(tx, schedule_id))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._db.read(lambda tx: queries.get_schedule(tx, schedule_id))

    async def list_schedules(self) -> list[Schedule]:
        return await self._db.read(queries.list_schedules)

    async def read_events(
        self, after_id: int, queues: tuple[str, ...], types: tuple[str, ...], limit: int
    ) -> list[EventMessage]:
        await self._db.announcer.settled()  # this server's events have their positions
        return await self._db.read(
            lambda tx: queries.read_events(tx, after_id, queues, types, limit)
        )

    async def last_event_id(self) -> int:
        await self._db.announcer.settled()
        return await self._db.read(queries.last_event_id)

    async def search(self, f: SearchFilter) -> SearchResponse:
        started = time.perf_counter()
        found = await self._db.read(lambda tx: queries.search(tx, f))
        return msgspec.structs.replace(
            found, duration_ms=round((time.perf_counter() - started) * 1000, 3)
        )

    async def get_bulk(self, bulk_id: str) -> BulkStatus:
        return await self._db.read(lambda tx: queries.get_bulk(tx, bulk_id))

    async def get_batch(self, batch_id: str) -> Batch:
        return await self._db.read(lambda tx: queries.get_batch(tx, batch_id))

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._db.read(queries.list_workers)

    # --- reads -------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> JobDetail:
        return await self._db.read(lambda tx: queries.get_job(tx, job_id))

    async def list_queues(self) -> list[Queue]:
        now = self.clock.now_ms()
        return await self._db.read(lambda tx: queries.list_queues(tx, now))

    async def get_queue(self, name: str) -> Queue:
        now = self.clock.now_ms()
        return await self._db.read(lambda tx: queries.get_queue(tx, name, now))

    async def ping(self) -> None:
        await self._db.read(queries.ping)

    async def bulk_matches(self, spec: BulkSpec) -> int:
        return (await self.count_matches(spec))[0]

    async def failure_groups(self) -> list[FailureGroup]:
        return await self._db.read(lambda tx: console.failure_groups(tx, FAILURE_GROUPS_LIMIT))

    async def record_audit(self, record: AuditRecord, retention_ms: int) -> None:
        await self._db.write(lambda tx: console.record_audit(tx, record, retention_ms))

    async def list_audit(self, limit: int, before_id: int | None) -> AuditList:
        return await self._db.read(lambda tx: console.list_audit(tx, limit, before_id))

    async def record_history(self) -> None:
        await self._db.write(console.record_history)

    async def read_history(self, queue: str | None, since_ms: int) -> list[Snapshot]:
        return await self._db.read(lambda tx: console.read_history(tx, queue, since_ms))

    async def run_schedule(self, schedule_id: str) -> str:
        job = schedule_job(await self.get_schedule(schedule_id))
        return (await self.enqueue(job)).job_id

    async def readiness(self) -> Readiness:
        # While the database is known to fail, say so at once: a ping would wait for the pool.
        error = self._leadership.failing
        if error is None and self._db.unreachable:
            error = "the database is unreachable"
        if error is None:
            try:
                await self.ping()
            except JobbieError as exc:
                error = exc.message
        return Readiness(
            status="ok" if error is None else "unavailable",
            database="ok" if error is None else "failing",
            writer="running",
            error=error,
        )

    async def cluster_nodes(self) -> list[ClusterNode] | None:
        return await self._leadership.nodes()

    # --- maintenance -------------------------------------------------------------------------

    async def maintain(self) -> dict[str, int]:
        """One pass, on the leader only: every server calls this each scheduler interval."""
        if not await self._leadership.lead():
            return {}
        return await run_maintenance(self, self.retention)

    # MaintenanceBackend: the steps of jobbie.store.maintenance.run_maintenance.

    async def promote_due(self, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.promote_due(tx, limit))

    async def fire_schedules(self, limit: int) -> int:
        return await self._db.write(lambda tx: schedules.fire_due(tx, limit))

    async def reclaim_expired_leases(self, limit: int) -> int:
        return await self._db.write(lambda tx: finish.reclaim_expired_leases(tx, limit))

    async def expire_waiting_jobs(self, limit: int) -> int:
        return await self._db.write(lambda tx: finish.expire_waiting_jobs(tx, limit))

    async def prune_unique_locks(self, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.prune_unique_locks(tx, limit))

    async def prune_rate_limits(self, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.prune_rate_limits(tx, limit))

    async def prune_keys(self, limit: int) -> int:
        return await self._db.write(lambda tx: keys.prune(tx, limit))

    async def prune_events(self, retention: Retention, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.prune_events(tx, retention, limit))

    async def prune_finished_jobs(self, retention: Retention, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.prune_finished_jobs(tx, retention, limit))

    async def finish_drains(self) -> int:
        return await self._db.write(sweep.finish_drains)

    async def prune_workers(self, retention: Retention) -> int:
        return await self._db.write(lambda tx: sweep.prune_workers(tx, retention))

    async def prune_idle_queues(self, retention: Retention, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.prune_idle_queues(tx, retention, limit))

    async def compact_failure_counts(self, limit: int) -> int:
        return await self._db.write(lambda tx: sweep.compact_failure_counts(tx, limit))

    async def close(self) -> None:
        await self._bulk.close()
        await self._listener.close()
        await self._leadership.close()
        await self._db.announcer.close()
        await self._db.pool.close()
