"""The store seam: one async interface of job operations that every backend implements.

The HTTP layer and the scheduler speak only this protocol; each backend owns its SQL and
applies the lifecycle rules of the backend-neutral modules beside this one (`states`: the
vocabulary and transition table; `rules`: retries and backoff; `leases`: who may end an
attempt; `inserts`: planning new jobs; `bulk`: bulk applicability and pacing; `maintenance`:
the scheduler's pass; `records`: rows to wire models; `cursor` and `search`: keyset search).

The contract every backend keeps (tests/contract runs the same suite against each one):
- Durability: a write is committed (on SQLite with FULL durability: fsync-ed) before its
  coroutine returns; an operation that raises wrote nothing.
- Errors: operations raise only `jobbie.errors.JobbieError` subclasses: `NotFound`,
  `Conflict` (the job's state forbids the action), `LeaseLost` (a fenced caller no longer holds
  the lease), `ValidationError`, `Unavailable` (the database failed; nothing was written).
  Driver exceptions are translated at the backend boundary and never escape.
- Time: every rule that depends on time reads `clock` (on PostgreSQL: the database clock plus
  the clock's offset), so tests move time with `clock.advance` instead of sleeping.
- Concurrency: every state change is a guarded update, `... WHERE id = ? AND state = ? AND
  attempt = ?` (or the equivalent), after checking the change against
  `states.TRANSITIONS`; an update that changes no row means another writer got there first
  and becomes the domain error (LeaseLost for a worker's call, Conflict for an operator's).
  So each operation stays correct with any number of concurrent writers, not only behind
  SQLite's single writer thread.
- Wake-ups: after a commit that may have made jobs available (enqueue, promotion, retry,
  release, resume, freed concurrency), the backend calls its `on_commit` callback with those
  queues so parked long-polls claim again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

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
from jobbie.store.console import AuditRecord
from jobbie.store.history import Snapshot
from jobbie.store.params import (
    AckParams,
    BatchSpec,
    BulkSpec,
    FailParams,
    FetchParams,
    HeartbeatParams,
    NewJob,
    ReleaseParams,
    ScheduleSpec,
)
from jobbie.store.search import SearchFilter

# Called after every committed write group with the queues that may have new work. A Mapping
# of queue -> new jobs (e.g. `jobbie.notifier.Wakes`) lets the notifier wake only that many
# long-polls; a plain iterable wakes every long-poll on those queues.
CommitCallback = Callable[[Iterable[str]], None]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a fetch got: its jobs, and when a throttled queue's window reopens (epoch ms)."""

    jobs: list[FetchedJob]
    retry_at: int | None = None


class Store(Protocol):
    """Job operations. Writes are durable when the coroutine returns."""

    # The backend's name as shown in /api/v1/cluster/status, e.g. "sqlite".
    backend: BackendName
    # Where "now" comes from for every rule that depends on time.
    clock: Clock

    def describe(self) -> dict[str, str]:
        """What the start-up log says about the database (never a password)."""
        ...

    async def enqueue(self, job: NewJob) -> EnqueueResponse:
        """Insert a job, or report the unfinished job holding its unique lock.

        A new job answers 201-style (`unique_existing` false, state `pending` or `scheduled`
        when due later); while (queue, unique_key) is locked by an unfinished job, nothing is
        written and that job is answered with `unique_existing` true.
        """
        ...

    async def enqueue_batch(
        self, jobs: list[NewJob], batch: BatchSpec | None
    ) -> EnqueueBatchResponse:
        """Insert every job in one transaction (all or nothing), optionally tracked by a batch
        whose callback job is enqueued exactly once when the last of its jobs finishes. Unique
        duplicates answer the existing job's id in their position.
        """
        ...

    async def fetch(self, params: FetchParams) -> Claim:
        """Lease up to `params.count` jobs without waiting: highest priority first, then FIFO
        by enqueue order, across the named queues; paused and draining queues give nothing;
        concurrency limits and throttles hold. Each job becomes `active` with `attempt` + 1
        and a lease of `params.lease_ms`. `Claim.retry_at` tells when a throttled queue's
        window reopens. Long-polling is the caller's loop.
        """
        ...

    async def ack(self, params: AckParams) -> str:
        """Complete an attempt; returns the new state (`completed`, or `cancelled` when a cancel
        was requested). Raises NotFound, LeaseLost (fenced caller, lease expired or taken),
        Conflict (unfenced caller, job not active).
        """
        ...

    async def ack_batch(self, acks: list[AckParams]) -> list[str | JobbieError]:
        """Complete several attempts in one transaction; each entry succeeds or fails on its
        own (its state, or the error `ack` would raise), in request order.
        """
        ...

    async def fail(self, params: FailParams) -> FailResponse:
        """Fail an attempt: `retrying` with the job's backoff while retries remain, else
        `dead` (or `cancelled` when a cancel was requested; `dead` with `expired` when past
        its expiry). The error and backtrace are kept per attempt; the checkpoint stays.
        Errors as for `ack`.
        """
        ...

    async def ack_next(self, params: AckParams, next_: FetchParams) -> tuple[str, list[FetchedJob]]:
        """Complete an attempt and, in the same transaction, lease up to `next_.count` jobs
        exactly as `fetch` would (never waiting). When the ack fails nothing is leased."""
        ...

    async def ack_batch_next(
        self, acks: list[AckParams], next_: FetchParams
    ) -> tuple[list[str | JobbieError], list[FetchedJob]]:
        """`ack_batch`, then lease up to `next_.count` jobs in the same transaction whatever
        the acks' own outcomes."""
        ...

    async def fail_batch(self, fails: list[FailParams]) -> list[FailResponse | JobbieError]:
        """Fail several attempts in one transaction; each succeeds or fails on its own."""
        ...

    async def release(self, params: ReleaseParams) -> str:
        """Hand an active job back without using a retry (its attempt is undone; a checkpoint
        given replaces the stored one); `cancelled` when a cancel was requested. Errors as for
        `ack`.
        """
        ...

    async def heartbeat(self, params: HeartbeatParams) -> dict[str, str]:
        """Extend each live lease held by the caller to now + its lease duration and save
        progress and checkpoints; answer per job `ok`, `cancel` (a cancel was requested) or
        `lost` (not active, expired, or another worker's / attempt's). Never raises for a
        job; never revives an expired lease.
        """
        ...

    async def pause_queue(self, name: str) -> Queue:
        """Stop handing out the queue's jobs (creates its configuration if unknown)."""
        ...

    async def resume_queue(self, name: str) -> Queue:
        """Hand out the queue's jobs again."""
        ...

    async def set_concurrency(self, name: str, maximum: int | None) -> Queue:
        """At most `maximum` active jobs across all workers (None: unlimited)."""
        ...

    async def set_throttle(self, name: str, rate: int | None, window_ms: int | None) -> Queue:
        """At most `rate` jobs handed out per sliding window (None: no throttle)."""
        ...

    async def set_fairness(self, name: str, mode: str) -> Queue:
        """Serve the queue's keys in FIFO order (`fifo`) or in turn (`round_robin`)."""
        ...

    async def set_key_concurrency(self, name: str, maximum: int | None) -> Queue:
        """At most `maximum` active jobs per key (None: no per-key limit)."""
        ...

    async def set_key_throttle(self, name: str, rate: int | None, window_ms: int | None) -> Queue:
        """At most `rate` jobs of one key handed out per sliding window (None: no throttle)."""
        ...

    async def queue_keys(self, name: str, limit: int) -> list[QueueKey]:
        """The queue's keys with pending or active jobs, most pending first (then most
        active, then key), at most `limit`. NotFound for an unknown queue."""
        ...

    async def keys_with_backlog(self) -> dict[str, int]:
        """Per queue, how many keys have pending jobs (queues with none are left out)."""
        ...

    async def cancel_job(self, job_id: str) -> str:
        """`cancelled` for a waiting job (at once), `cancelling` for an active one (its worker
        hears it on the next heartbeat). NotFound; Conflict for a finished job.
        """
        ...

    async def retry_job(self, job_id: str) -> JobDetail:
        """Run a dead, cancelled or completed job again from attempt 0 (expiry dropped).
        NotFound; Conflict in any other state.
        """
        ...

    async def move_job(self, job_id: str, queue: str) -> JobDetail:
        """Move a job in any state but active to another queue. NotFound; Conflict when active."""
        ...

    async def delete_job(self, job_id: str) -> None:
        """Delete a job and its errors; its unique lock is released and an unfinished batch
        job counts as failed. NotFound.
        """
        ...

    async def clear_queue(self, name: str) -> int:
        """Delete the queue's waiting jobs; returns how many."""
        ...

    async def drain_queue(self, name: str) -> Queue:
        """Stop handing out jobs; the queue is paused once its active jobs end."""
        ...

    async def delete_queue(self, name: str) -> int:
        """Delete the queue and all its jobs; returns how many jobs."""
        ...

    async def bulk(self, spec: BulkSpec) -> BulkResponse | BulkAccepted:
        """Apply an action to the named jobs in chunks (`bulk.BulkRunner`): at once and
        answered with counts, or above `bulk.BACKGROUND_ABOVE` matches in the background,
        answered with an id whose progress `get_bulk` reports. Jobs in states the action does
        not apply to (`bulk.APPLIES_TO`) are skipped.
        """
        ...

    async def create_schedule(self, spec: ScheduleSpec) -> Schedule:
        """Create a cron schedule (409 when the name is taken)."""
        ...

    async def update_schedule(self, schedule_id: str, spec: ScheduleSpec) -> Schedule:
        """Replace a schedule's definition; its next run is recomputed."""
        ...

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule (jobs it enqueued stay)."""
        ...

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule with its last and next run."""
        ...

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    async def read_events(
        self, after_id: int, queues: tuple[str, ...], types: tuple[str, ...], limit: int
    ) -> list[EventMessage]:
        """Events after `after_id`, oldest first, filtered by queue and type when given."""
        ...

    async def last_event_id(self) -> int:
        """The newest event's id (0 when none)."""
        ...

    async def search(self, f: SearchFilter) -> SearchResponse:
        """One page of jobs matching the filter, with the total and the next cursor."""
        ...

    async def get_bulk(self, bulk_id: str) -> BulkStatus:
        """Progress of a background bulk operation."""
        ...

    async def get_batch(self, batch_id: str) -> Batch:
        """A batch's counters and callback."""
        ...

    async def list_workers(self) -> list[WorkerInfo]:
        """Workers seen recently, with their active job counts."""
        ...

    async def get_queue(self, name: str) -> Queue:
        """One queue with counts, totals and limits."""
        ...

    async def get_job(self, job_id: str) -> JobDetail:
        """One job with errors and events."""
        ...

    async def list_queues(self) -> list[Queue]:
        """Every queue with counts, totals and limits."""
        ...

    async def ping(self) -> None:
        """Raise unless the database answers."""
        ...

    # --- the web console ---------------------------------------------------------------------

    async def bulk_matches(self, spec: BulkSpec) -> int:
        """How many jobs a bulk request names now (a dry run: nothing changes)."""
        ...

    async def failure_groups(self) -> list[FailureGroup]:
        """Dead and retrying jobs grouped by error signature (`jobbie.store.signature`, stored
        when a job fails), most frequent first, at most `console.FAILURE_GROUPS_LIMIT`."""
        ...

    async def record_audit(self, record: AuditRecord, retention_ms: int) -> None:
        """Append to the audit log (time from `clock`), pruning entries older than
        `retention_ms` a batch at a time."""
        ...

    async def list_audit(self, limit: int, before_id: int | None) -> AuditList:
        """Audit entries newest first, older than `before_id` when given."""
        ...

    async def record_history(self) -> None:
        """Snapshot every queue's totals and depth for the current minute (`history`),
        replacing the minute's earlier snapshot; drop snapshots older than 7 days."""
        ...

    async def read_history(self, queue: str | None, since_ms: int) -> list[Snapshot]:
        """Snapshots from `since_ms` on, plus the one just before, summed over all queues
        unless one is named; oldest first."""
        ...

    async def run_schedule(self, schedule_id: str) -> str:
        """Enqueue the schedule's job now (`console.schedule_job`), leaving its next run as it
        is; returns the job's id. NotFound."""
        ...

    async def readiness(self) -> Readiness:
        """Whether writes work now and the writer runs; never raises. While writes fail the
        backend probes with a small write every few seconds, so this turns ready again on
        its own once they work."""
        ...

    async def cluster_nodes(self) -> list[ClusterNode] | None:
        """The live servers sharing this database, the scheduler's leader flagged; None for a
        backend that one server owns alone (SQLite)."""
        ...

    async def maintain(self) -> dict[str, int]:
        """One scheduler pass (`maintenance.run_maintenance`): promote due jobs, fire cron
        schedules once per fire time, reclaim expired leases as failed attempts, expire
        waiting jobs, finish drains, prune by retention. Returns rows changed per step.
        """
        ...

    async def close(self) -> None:
        """Flush pending writes and close the database."""
        ...
