"""The store seam: one async interface of job operations that every backend implements.

The HTTP layer and the scheduler speak only this protocol; each backend owns its SQL and
applies the lifecycle rules of `jobbie.store.rules` and `jobbie.store.states`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from jobbie.clock import Clock
from jobbie.errors import JobbieError
from jobbie.models import (
    BackendName,
    Batch,
    BulkAccepted,
    BulkResponse,
    BulkStatus,
    EnqueueBatchResponse,
    EnqueueResponse,
    EventMessage,
    FailResponse,
    FetchedJob,
    JobDetail,
    Queue,
    Readiness,
    Schedule,
    SearchResponse,
    WorkerInfo,
)
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
        """Insert a job (or report the holder of its unique lock)."""
        ...

    async def enqueue_batch(
        self, jobs: list[NewJob], batch: BatchSpec | None
    ) -> EnqueueBatchResponse:
        """Insert jobs atomically, optionally tracked by a batch with a callback."""
        ...

    async def fetch(self, params: FetchParams) -> Claim:
        """Lease the next jobs without waiting; long-polling is the caller's loop."""
        ...

    async def ack(self, params: AckParams) -> str:
        """Complete an attempt; returns the job's new state."""
        ...

    async def ack_batch(self, acks: list[AckParams]) -> list[str | JobbieError]:
        """Complete several attempts; each succeeds or fails on its own."""
        ...

    async def fail(self, params: FailParams) -> FailResponse:
        """Fail an attempt: retry with backoff, dead or cancelled."""
        ...

    async def release(self, params: ReleaseParams) -> str:
        """Hand an active job back without using a retry."""
        ...

    async def heartbeat(self, params: HeartbeatParams) -> dict[str, str]:
        """Extend leases; answer ok, cancel or lost per job."""
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

    async def cancel_job(self, job_id: str) -> str:
        """`cancelled` for a waiting job, `cancelling` for an active one."""
        ...

    async def retry_job(self, job_id: str) -> JobDetail:
        """Run a dead, cancelled or completed job again from attempt 0."""
        ...

    async def move_job(self, job_id: str, queue: str) -> JobDetail:
        """Move a job in any state but active to another queue."""
        ...

    async def delete_job(self, job_id: str) -> None:
        """Delete a job and its errors."""
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
        """Apply an action to many jobs in chunks (in the background when many)."""
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

    async def readiness(self) -> Readiness:
        """Whether writes work now and the writer runs; never raises. While writes fail the
        backend probes with a small write every few seconds, so this turns ready again on
        its own once they work."""
        ...

    async def maintain(self) -> dict[str, int]:
        """One scheduler pass: promote, reclaim, expire, finish drains, prune."""
        ...

    async def close(self) -> None:
        """Flush pending writes and close the database."""
        ...
