"""`AsyncClient`: the asyncio twin of `Client`, one awaitable method per endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

from jobbie import models as m
from jobbie.client._atransport import AiohttpTransport, AsyncHttpxTransport
from jobbie.client._calls import Call, Calls
from jobbie.client._failover import Servers, Unanswered, parse_urls
from jobbie.client._transport import Verify
from jobbie.client.client import DEFAULT_URL, client_headers
from jobbie.client.errors import SearchTimedOut
from jobbie.client.types import (
    Batch,
    BulkAction,
    BulkOperation,
    BulkResult,
    EnqueueOptions,
    EnqueueSpec,
    HeartbeatUpdate,
    Job,
    JobFilter,
    QueueKey,
    Schedule,
    ScheduleOptions,
    SearchPage,
    WorkerInfo,
)
from jobbie.errors import NotFound
from jobbie.models import FairnessMode, PriorityName

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


class AsyncClient:
    """An asyncio client of a Jobbie server: the methods of `Client`, awaitable.

    Every method raises a `JobbieError` subclass chosen by the server's error `code`
    (`NotFound`, `Conflict`, `LeaseLost`, `ValidationError`, `Unauthorized`, `Unavailable`, ...)
    carrying the server's message, or `ServerUnreachable` when no answer arrives.

    `worker_id` and `hostname` identify this client in fetches (a random id by default). Jobs
    fetched through the client are remembered, so `ack`, `fail`, `heartbeat` and `release`
    send their `worker_id` and `attempt` for fencing without being told.

    Proxies, `verify`, `transport`, retries and several server URLs work as for `Client`;
    `max_connections` bounds the connections open to each server at once.
    """

    def __init__(
        self,
        url: str | Sequence[str] = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        worker_id: str | None = None,
        hostname: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: Verify = True,
        max_connections: int = 100,
    ) -> None:
        self.urls = parse_urls(url)
        self.timeout = timeout
        self._calls = Calls(worker_id, hostname)
        headers = client_headers(api_key)
        self._servers = Servers[AiohttpTransport | AsyncHttpxTransport](
            self.urls,
            [
                AiohttpTransport(u, headers, verify, max_connections)
                if transport is None
                else AsyncHttpxTransport(u, headers, transport)
                for u in self.urls
            ],
        )

    @property
    def url(self) -> str:
        """The URL of the server in use (the only one, unless several were given)."""
        return self.urls[self._servers.current]

    @property
    def worker_id(self) -> str:
        """The worker id this client sends on fetch when none is given."""
        return self._calls.worker_id

    async def aclose(self) -> None:
        """Close the connection pools."""
        for server in self._servers.transports:
            await server.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = self._servers.attempt(call.repeatable)
        for server in attempt:
            try:
                resp = await server.request(call, self.timeout)
            except Unanswered as exc:
                attempt.failed(exc)
            else:
                return call.answer(resp)
        raise attempt.unreachable()

    # --- producing ------------------------------------------------------------------------

    async def enqueue(
        self, queue: str, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> m.EnqueueResponse:
        """Enqueue one job; returns its id, its state and whether it was a unique duplicate.

        Options: `priority` (`critical`/`high`/`normal`), `unique_key`, `unique_period`,
        `max_retries`, `retry_backoff`, `retry_base_delay`, `retry_max_delay`, `scheduled_at`
        (aware datetime) or `delay`, `expire_after`, `tags`, `key` (its fairness key: the
        tenant a round-robin queue serves in turn and per-key limits count). Durations are
        seconds or strings such as `"10s"`.
        """
        return await self._send(self._calls.enqueue(queue, payload, options))

    async def enqueue_batch(
        self,
        jobs: Sequence[EnqueueSpec],
        *,
        batch: bool = False,
        callback_queue: str | None = None,
        callback_payload: Any = None,
    ) -> m.EnqueueBatchResponse:
        """Enqueue several jobs atomically (all or none).

        With `batch=True`, a `callback_queue` or a `callback_payload` the server tracks them as
        a batch (`batch_id`) and enqueues one callback job on `callback_queue` once all finish.
        """
        return await self._send(
            self._calls.enqueue_batch(
                jobs, batch=batch, callback_queue=callback_queue, callback_payload=callback_payload
            )
        )

    # --- the worker protocol (low level; `Worker` does all this for you) -------------------

    @overload
    async def fetch(
        self,
        queues: str | Sequence[str],
        *,
        worker_id: str | None = ...,
        timeout: float | str = ...,
        count: None = ...,
        lease_duration: float | str | None = ...,
    ) -> Job | None: ...

    @overload
    async def fetch(
        self,
        queues: str | Sequence[str],
        *,
        worker_id: str | None = ...,
        timeout: float | str = ...,
        count: int,
        lease_duration: float | str | None = ...,
    ) -> list[Job]: ...

    async def fetch(
        self,
        queues: str | Sequence[str],
        *,
        worker_id: str | None = None,
        timeout: float | str = 30,
        count: int | None = None,
        lease_duration: float | str | None = None,
    ) -> Job | list[Job] | None:
        """Lease the next job of `queues`, long-polling up to `timeout` seconds (0-60).

        Returns the job, or None when nothing arrived in time. With `count`, returns a list
        of 1..count jobs (empty when nothing arrived). The HTTP read waits longer than the
        long-poll, so a quiet queue is not mistaken for a dead server.
        """
        return await self._send(
            self._calls.fetch(
                queues,
                worker_id=worker_id,
                timeout=timeout,
                count=count,
                lease_duration=lease_duration,
            )
        )

    async def ack(
        self,
        job: str | Job,
        result: Any = None,
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> str:
        """Complete a leased job with `result`; returns `completed` (or `cancelled` when a
        cancel was requested). Raises `LeaseLost` when the lease is no longer ours."""
        return await self._send(self._calls.ack(job, result, worker_id, attempt))

    async def ack_batch(
        self, acks: Mapping[str, Any] | Sequence[tuple[str | Job, Any]]
    ) -> list[m.AckBatchResult]:
        """Complete several jobs (`{job_id: result}` or `(job, result)` pairs); one result per
        ack, in order, each with a `status` or an `error` and `code`."""
        return await self._send(self._calls.ack_batch(acks))

    async def ack_and_fetch(
        self,
        job: str | Job,
        result: Any = None,
        *,
        queues: str | Sequence[str],
        count: int = 1,
        lease_duration: float | str | None = None,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> tuple[str, list[Job]]:
        """`ack`, and lease up to `count` jobs of `queues` in the same transaction (never
        waiting: an empty list when none is ready). A refused ack leases nothing. The new
        leases belong to `worker_id` (default: the job's worker, else this client's)."""
        return await self._send(
            self._calls.ack_and_fetch(
                job,
                result,
                worker_id,
                attempt,
                queues=queues,
                count=count,
                lease_duration=lease_duration,
            )
        )

    async def ack_batch_and_fetch(
        self,
        acks: Mapping[str, Any] | Sequence[tuple[str | Job, Any]],
        *,
        queues: str | Sequence[str],
        count: int = 1,
        lease_duration: float | str | None = None,
        worker_id: str | None = None,
    ) -> tuple[list[m.AckBatchResult], list[Job]]:
        """`ack_batch`, and lease up to `count` jobs of `queues` for `worker_id` (default:
        this client's) in the same transaction, whatever the acks' own results."""
        return await self._send(
            self._calls.ack_batch_and_fetch(
                acks,
                queues=queues,
                count=count,
                lease_duration=lease_duration,
                worker_id=worker_id,
            )
        )

    async def fail_batch(
        self,
        fails: Sequence[tuple[str | Job, str] | tuple[str | Job, str, str | None]],
        *,
        worker_id: str | None = None,
    ) -> list[m.FailBatchResult]:
        """Fail several attempts (`(job, error)` or `(job, error, backtrace)`); one result per
        fail, in order: the new `status`, `next_attempt_at`, `attempts_remaining`, or an
        `error` and `code` for that fail alone."""
        return await self._send(self._calls.fail_batch(fails, worker_id))

    async def fail(
        self,
        job: str | Job,
        error: str,
        backtrace: str | None = None,
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> m.FailResponse:
        """Fail a leased job's attempt: it is retried with backoff, or dead when no retries
        are left. Returns the new status, `next_attempt_at` and `attempts_remaining`."""
        return await self._send(self._calls.fail(job, error, backtrace, worker_id, attempt))

    async def heartbeat(
        self, jobs: Mapping[str, HeartbeatUpdate], *, worker_id: str | None = None
    ) -> dict[str, str]:
        """Extend the leases of `jobs` and save their `progress` / `checkpoint`; returns
        `{job_id: "ok" | "cancel" | "lost"}`. An empty mapping is a liveness ping."""
        return await self._send(self._calls.heartbeat(jobs, worker_id))

    async def release(
        self,
        job: str | Job,
        checkpoint: Any = None,
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> str:
        """Hand a leased job back without using a retry: it is pending again at once, with
        `checkpoint` (None keeps the one it has). Returns `pending`."""
        return await self._send(self._calls.release(job, checkpoint, worker_id, attempt))

    # --- jobs -----------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """A job with every field, its errors and its event timeline."""
        return await self._send(self._calls.get_job(job_id))

    async def search(
        self,
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        **criteria: Unpack[JobFilter],
    ) -> SearchPage:
        """One page of jobs matching every criterion given (see `JobFilter`)."""
        return await self._send(
            self._calls.search(criteria, sort=sort, order=order, cursor=cursor, limit=limit)
        )

    async def count_jobs(self, **criteria: Unpack[JobFilter]) -> int:
        """How many jobs match every criterion, exactly (a search's `total` stops at 10,000).
        With payload or tag filters this reads every job the other filters leave."""
        return await self._send(self._calls.count_jobs(criteria))

    async def iter_search(
        self,
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int | None = None,
        **criteria: Unpack[JobFilter],
    ) -> AsyncIterator[Job]:
        """Every job matching the criteria, walking the pages lazily. A page that hits the
        server's search time limit before any match raises `SearchTimedOut`."""
        cursor: str | None = None
        while True:
            page = await self.search(
                sort=sort, order=order, cursor=cursor, limit=page_size, **criteria
            )
            if page.timed_out and not page.jobs:
                raise SearchTimedOut(
                    "the search hit the server's time limit before finding a match"
                )
            for job in page.jobs:
                yield job
            if not page.has_more or page.cursor is None:
                return
            cursor = page.cursor

    async def dead(
        self, queue: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> SearchPage:
        """One page of dead jobs (the dead letter queue), optionally of one queue."""
        return await self._send(self._calls.dead(queue, limit, cursor))

    async def bulk(
        self,
        action: BulkAction,
        *,
        job_ids: Sequence[str] | None = None,
        filter: JobFilter | None = None,
        move_to_queue: str | None = None,
        priority: PriorityName | None = None,
    ) -> BulkResult | BulkOperation:
        """Apply `action` to the jobs named by `job_ids` or matching `filter`. Jobs in states
        the action does not apply to are skipped. Over 10,000 matches the server runs it in
        the background and a `BulkOperation` comes back (see `bulk_status`)."""
        return await self._send(
            self._calls.bulk(
                action,
                job_ids=job_ids,
                filter=filter,
                move_to_queue=move_to_queue,
                priority=priority,
            )
        )

    async def bulk_status(self, operation_id: str) -> m.BulkStatus:
        """The progress of a background bulk operation."""
        return await self._send(self._calls.bulk_status(operation_id))

    async def retry_job(self, job_id: str) -> Job:
        """Run a dead, cancelled or completed job again (attempt count reset); returns the
        job, now pending."""
        return await self._send(self._calls.retry_job(job_id))

    async def cancel_job(self, job_id: str) -> str:
        """Cancel a job: `cancelled` when it was waiting, `cancelling` when it is running (its
        worker hears of it on the next heartbeat)."""
        return await self._send(self._calls.cancel_job(job_id))

    async def move_job(self, job_id: str, queue: str) -> Job:
        """Move a job that is not running to another queue; returns the moved job."""
        return await self._send(self._calls.move_job(job_id, queue))

    async def delete_job(self, job_id: str) -> None:
        """Delete a job and its history."""
        await self._send(self._calls.delete_job(job_id))

    async def get_batch(self, batch_id: str) -> Batch:
        """A batch's state, counters and callback."""
        return await self._send(self._calls.get_batch(batch_id))

    # --- queues ---------------------------------------------------------------------------

    async def queues(self) -> list[m.Queue]:
        """Every queue with its counts by state, totals, pause/drain state and limits."""
        return await self._send(self._calls.queues())

    async def queue(self, name: str) -> m.Queue:
        """One queue from the listing; `NotFound` when the server does not know it."""
        for queue in await self.queues():
            if queue.name == name:
                return queue
        raise NotFound(f"queue {name!r} not found")

    async def pause(self, name: str) -> m.Queue:
        """Pause a queue: fetches skip it until it is resumed."""
        return await self._send(self._calls.queue_action(name, "pause"))

    async def resume(self, name: str) -> m.Queue:
        """Resume a paused or drained queue."""
        return await self._send(self._calls.queue_action(name, "resume"))

    async def drain(self, name: str) -> m.Queue:
        """Stop handing out the queue's jobs; it becomes paused once no job is active."""
        return await self._send(self._calls.queue_action(name, "drain"))

    async def clear(self, name: str) -> int:
        """Delete the queue's waiting jobs (pending, scheduled, retrying); returns how many."""
        return await self._send(self._calls.clear(name))

    async def set_concurrency(self, name: str, limit: int | None) -> m.Queue:
        """At most `limit` active jobs of the queue across all workers (None: unlimited)."""
        return await self._send(self._calls.set_concurrency(name, limit))

    async def set_throttle(self, name: str, *, rate: int, period: float | str) -> m.Queue:
        """At most `rate` jobs of the queue handed out per sliding `period`."""
        return await self._send(self._calls.set_throttle(name, rate, period))

    async def remove_throttle(self, name: str) -> m.Queue:
        """Remove the queue's throttle."""
        return await self._send(self._calls.remove_throttle(name))

    async def set_fairness(self, name: str, mode: FairnessMode) -> m.Queue:
        """Serve the queue's keys oldest job first (`fifo`, the default) or in turn
        (`round_robin`: the key served least recently first, FIFO within a key)."""
        return await self._send(self._calls.set_fairness(name, mode))

    async def set_key_concurrency(self, name: str, limit: int | None) -> m.Queue:
        """At most `limit` active jobs per key of the queue (None: no per-key limit)."""
        return await self._send(self._calls.set_key_concurrency(name, limit))

    async def set_key_throttle(self, name: str, *, rate: int, period: float | str) -> m.Queue:
        """At most `rate` jobs of any one key handed out per sliding `period`."""
        return await self._send(self._calls.set_key_throttle(name, rate, period))

    async def remove_key_throttle(self, name: str) -> m.Queue:
        """Remove the queue's per-key throttle."""
        return await self._send(self._calls.remove_key_throttle(name))

    async def queue_keys(self, name: str, *, limit: int | None = 20) -> list[QueueKey]:
        """The queue's busiest keys (most pending first) with their pending and active jobs
        and completions in the last minute; keys with nothing pending or active are left out."""
        return await self._send(self._calls.queue_keys(name, limit))

    async def delete_queue(self, name: str) -> int:
        """Delete the queue and all its jobs; returns how many jobs were deleted."""
        return await self._send(self._calls.delete_queue(name))

    # --- schedules ------------------------------------------------------------------------

    async def schedules(self) -> list[Schedule]:
        """Every cron schedule."""
        return await self._send(self._calls.schedules())

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """One cron schedule."""
        return await self._send(self._calls.get_schedule(schedule_id))

    async def create_schedule(
        self, name: str, queue: str, cron: str, **options: Unpack[ScheduleOptions]
    ) -> Schedule:
        """Create a cron schedule (5 fields or `@hourly` style, in `timezone`, default UTC)."""
        return await self._send(
            self._calls.put_schedule(None, {**options, "name": name, "queue": queue, "cron": cron})
        )

    async def update_schedule(
        self,
        schedule_id: str,
        name: str,
        queue: str,
        cron: str,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Replace a schedule: every field as for `create_schedule` (omitted options take
        their defaults)."""
        fields = {**options, "name": name, "queue": queue, "cron": cron}
        return await self._send(self._calls.put_schedule(schedule_id, fields))

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a cron schedule."""
        await self._send(self._calls.delete_schedule(schedule_id))

    # --- server ---------------------------------------------------------------------------

    async def workers(self) -> list[WorkerInfo]:
        """The workers the server has seen recently."""
        return await self._send(self._calls.workers())

    async def cluster_status(self) -> m.ClusterStatus:
        """The cluster's mode, backend and nodes (which one runs the scheduler)."""
        return await self._send(self._calls.cluster_status())

    async def health(self) -> m.Health:
        """`/healthz`: `status == "ok"`, or `Unavailable` while the server shuts down."""
        return await self._send(self._calls.health())
