"""`Client`: one blocking, typed method per endpoint of the Jobbie HTTP API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

from jobbie import models as m
from jobbie.client._calls import Call, Calls
from jobbie.client._failover import Servers, Unanswered, parse_urls
from jobbie.client._transport import HttpClientTransport, HttpxTransport, Verify
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

DEFAULT_URL = "http://localhost:8080"


def client_headers(api_key: str | None) -> dict[str, str]:
    """Headers sent on every request: the user agent and, when set, the API key."""
    from jobbie import __version__

    headers = {"user-agent": f"jobbie-python/{__version__}", "accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


class Client:
    """A blocking client of a Jobbie server; safe to share between threads.

    Every method raises a `JobbieError` subclass chosen by the server's error `code`
    (`NotFound`, `Conflict`, `LeaseLost`, `ValidationError`, `Unauthorized`, `Unavailable`, ...)
    carrying the server's message, or `ServerUnreachable` when no answer arrives.

    `worker_id` and `hostname` identify this client in fetches (a random id by default). Jobs
    fetched through the client are remembered, so `ack`, `fail`, `heartbeat` and `release`
    send their `worker_id` and `attempt` for fencing without being told.

    Proxies come from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and NO_PROXY. `verify` picks the
    CA bundle for HTTPS: True (SSL_CERT_FILE / SSL_CERT_DIR, else certifi's, else the
    system's), a path to a bundle, an `ssl.SSLContext`, or False (no checks). `transport`
    (an httpx transport, e.g. `httpx.MockTransport`) sends every request through httpx
    instead, for tests.

    A request is sent again only when that is harmless (GETs; fenced ack, fail, heartbeat,
    release) and the connection dropped under it; an enqueue is never sent twice.

    `url` may name several servers of one deployment (servers sharing a PostgreSQL database):
    a list of URLs, or one string of comma-separated URLs as `JOBBIE_URL` holds. The client
    uses the first one and sticks to the server that answers. When a server stops answering it
    moves on to the next URL: a call that certainly never reached the server (connection
    refused, connect timeout) and a call harmless to repeat are tried on the next server at
    once; an enqueue or a fetch that may have reached the server is not, and raises
    `ServerUnreachable` (later calls go to the next server). `ServerUnreachable` names every
    server tried when none answers. A bad URL raises `ValueError` here, not on first use.
    """

    def __init__(
        self,
        url: str | Sequence[str] = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        worker_id: str | None = None,
        hostname: str | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: Verify = True,
    ) -> None:
        self.urls = parse_urls(url)
        self.timeout = timeout
        self._calls = Calls(worker_id, hostname)
        headers = client_headers(api_key)
        self._servers = Servers[HttpClientTransport | HttpxTransport](
            self.urls,
            [
                HttpClientTransport(u, headers, verify)
                if transport is None
                else HttpxTransport(u, headers, transport)
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

    def close(self) -> None:
        """Close the connection pools."""
        for server in self._servers.transports:
            server.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        attempt = self._servers.attempt(call.repeatable)
        for server in attempt:
            try:
                resp = server.request(call, self.timeout)
            except Unanswered as exc:
                attempt.failed(exc)
            else:
                return call.answer(resp)
        raise attempt.unreachable()

    # --- producing ------------------------------------------------------------------------

    def enqueue(
        self, queue: str, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> m.EnqueueResponse:
        """Enqueue one job; returns its id, its state and whether it was a unique duplicate.

        Options: `priority` (`critical`/`high`/`normal`), `unique_key`, `unique_period`,
        `max_retries`, `retry_backoff`, `retry_base_delay`, `retry_max_delay`, `scheduled_at`
        (aware datetime) or `delay`, `expire_after`, `tags`, `key` (its fairness key: the
        tenant a round-robin queue serves in turn and per-key limits count). Durations are
        seconds or strings such as `"10s"`.
        """
        return self._send(self._calls.enqueue(queue, payload, options))

    def enqueue_batch(
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
        return self._send(
            self._calls.enqueue_batch(
                jobs, batch=batch, callback_queue=callback_queue, callback_payload=callback_payload
            )
        )

    # --- the worker protocol (low level; `Worker` does all this for you) -------------------

    @overload
    def fetch(
        self,
        queues: str | Sequence[str],
        *,
        worker_id: str | None = ...,
        timeout: float | str = ...,
        count: None = ...,
        lease_duration: float | str | None = ...,
    ) -> Job | None: ...

    @overload
    def fetch(
        self,
        queues: str | Sequence[str],
        *,
        worker_id: str | None = ...,
        timeout: float | str = ...,
        count: int,
        lease_duration: float | str | None = ...,
    ) -> list[Job]: ...

    def fetch(
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
        return self._send(
            self._calls.fetch(
                queues,
                worker_id=worker_id,
                timeout=timeout,
                count=count,
                lease_duration=lease_duration,
            )
        )

    def ack(
        self,
        job: str | Job,
        result: Any = None,
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> str:
        """Complete a leased job with `result`; returns `completed` (or `cancelled` when a
        cancel was requested). Raises `LeaseLost` when the lease is no longer ours."""
        return self._send(self._calls.ack(job, result, worker_id, attempt))

    def ack_batch(
        self, acks: Mapping[str, Any] | Sequence[tuple[str | Job, Any]]
    ) -> list[m.AckBatchResult]:
        """Complete several jobs (`{job_id: result}` or `(job, result)` pairs); one result per
        ack, in order, each with a `status` or an `error` and `code`."""
        return self._send(self._calls.ack_batch(acks))

    def ack_and_fetch(
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
        return self._send(
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

    def ack_batch_and_fetch(
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
        return self._send(
            self._calls.ack_batch_and_fetch(
                acks,
                queues=queues,
                count=count,
                lease_duration=lease_duration,
                worker_id=worker_id,
            )
        )

    def fail_batch(
        self,
        fails: Sequence[tuple[str | Job, str] | tuple[str | Job, str, str | None]],
        *,
        worker_id: str | None = None,
    ) -> list[m.FailBatchResult]:
        """Fail several attempts (`(job, error)` or `(job, error, backtrace)`); one result per
        fail, in order: the new `status`, `next_attempt_at`, `attempts_remaining`, or an
        `error` and `code` for that fail alone."""
        return self._send(self._calls.fail_batch(fails, worker_id))

    def fail(
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
        return self._send(self._calls.fail(job, error, backtrace, worker_id, attempt))

    def heartbeat(
        self, jobs: Mapping[str, HeartbeatUpdate], *, worker_id: str | None = None
    ) -> dict[str, str]:
        """Extend the leases of `jobs` and save their `progress` / `checkpoint`; returns
        `{job_id: "ok" | "cancel" | "lost"}`. An empty mapping is a liveness ping."""
        return self._send(self._calls.heartbeat(jobs, worker_id))

    def release(
        self,
        job: str | Job,
        checkpoint: Any = None,
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> str:
        """Hand a leased job back without using a retry: it is pending again at once, with
        `checkpoint` (None keeps the one it has). Returns `pending`."""
        return self._send(self._calls.release(job, checkpoint, worker_id, attempt))

    # --- jobs -----------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        """A job with every field, its errors and its event timeline."""
        return self._send(self._calls.get_job(job_id))

    def search(
        self,
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        **criteria: Unpack[JobFilter],
    ) -> SearchPage:
        """One page of jobs matching every criterion given (see `JobFilter`)."""
        return self._send(
            self._calls.search(criteria, sort=sort, order=order, cursor=cursor, limit=limit)
        )

    def count_jobs(self, **criteria: Unpack[JobFilter]) -> int:
        """How many jobs match every criterion, exactly (a search's `total` stops at 10,000).
        With payload or tag filters this reads every job the other filters leave."""
        return self._send(self._calls.count_jobs(criteria))

    def iter_search(
        self,
        *,
        sort: str | None = None,
        order: Literal["asc", "desc"] | None = None,
        page_size: int | None = None,
        **criteria: Unpack[JobFilter],
    ) -> Iterator[Job]:
        """Every job matching the criteria, walking the pages lazily. A page that hits the
        server's search time limit before any match raises `SearchTimedOut`."""
        cursor: str | None = None
        while True:
            page = self.search(sort=sort, order=order, cursor=cursor, limit=page_size, **criteria)
            if page.timed_out and not page.jobs:
                raise SearchTimedOut(
                    "the search hit the server's time limit before finding a match"
                )
            yield from page.jobs
            if not page.has_more or page.cursor is None:
                return
            cursor = page.cursor

    def dead(
        self, queue: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> SearchPage:
        """One page of dead jobs (the dead letter queue), optionally of one queue."""
        return self._send(self._calls.dead(queue, limit, cursor))

    def bulk(
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
        return self._send(
            self._calls.bulk(
                action,
                job_ids=job_ids,
                filter=filter,
                move_to_queue=move_to_queue,
                priority=priority,
            )
        )

    def bulk_status(self, operation_id: str) -> m.BulkStatus:
        """The progress of a background bulk operation."""
        return self._send(self._calls.bulk_status(operation_id))

    def retry_job(self, job_id: str) -> Job:
        """Run a dead, cancelled or completed job again (attempt count reset); returns the
        job, now pending."""
        return self._send(self._calls.retry_job(job_id))

    def cancel_job(self, job_id: str) -> str:
        """Cancel a job: `cancelled` when it was waiting, `cancelling` when it is running (its
        worker hears of it on the next heartbeat)."""
        return self._send(self._calls.cancel_job(job_id))

    def move_job(self, job_id: str, queue: str) -> Job:
        """Move a job that is not running to another queue; returns the moved job."""
        return self._send(self._calls.move_job(job_id, queue))

    def delete_job(self, job_id: str) -> None:
        """Delete a job and its history."""
        self._send(self._calls.delete_job(job_id))

    def get_batch(self, batch_id: str) -> Batch:
        """A batch's state, counters and callback."""
        return self._send(self._calls.get_batch(batch_id))

    # --- queues ---------------------------------------------------------------------------

    def queues(self) -> list[m.Queue]:
        """Every queue with its counts by state, totals, pause/drain state and limits."""
        return self._send(self._calls.queues())

    def queue(self, name: str) -> m.Queue:
        """One queue from the listing; `NotFound` when the server does not know it."""
        for queue in self.queues():
            if queue.name == name:
                return queue
        raise NotFound(f"queue {name!r} not found")

    def pause(self, name: str) -> m.Queue:
        """Pause a queue: fetches skip it until it is resumed."""
        return self._send(self._calls.queue_action(name, "pause"))

    def resume(self, name: str) -> m.Queue:
        """Resume a paused or drained queue."""
        return self._send(self._calls.queue_action(name, "resume"))

    def drain(self, name: str) -> m.Queue:
        """Stop handing out the queue's jobs; it becomes paused once no job is active."""
        return self._send(self._calls.queue_action(name, "drain"))

    def clear(self, name: str) -> int:
        """Delete the queue's waiting jobs (pending, scheduled, retrying); returns how many."""
        return self._send(self._calls.clear(name))

    def set_concurrency(self, name: str, limit: int | None) -> m.Queue:
        """At most `limit` active jobs of the queue across all workers (None: unlimited)."""
        return self._send(self._calls.set_concurrency(name, limit))

    def set_throttle(self, name: str, *, rate: int, period: float | str) -> m.Queue:
        """At most `rate` jobs of the queue handed out per sliding `period`."""
        return self._send(self._calls.set_throttle(name, rate, period))

    def remove_throttle(self, name: str) -> m.Queue:
        """Remove the queue's throttle."""
        return self._send(self._calls.remove_throttle(name))

    def set_fairness(self, name: str, mode: FairnessMode) -> m.Queue:
        """Serve the queue's keys oldest job first (`fifo`, the default) or in turn
        (`round_robin`: the key served least recently first, FIFO within a key)."""
        return self._send(self._calls.set_fairness(name, mode))

    def set_key_concurrency(self, name: str, limit: int | None) -> m.Queue:
        """At most `limit` active jobs per key of the queue (None: no per-key limit)."""
        return self._send(self._calls.set_key_concurrency(name, limit))

    def set_key_throttle(self, name: str, *, rate: int, period: float | str) -> m.Queue:
        """At most `rate` jobs of any one key handed out per sliding `period`."""
        return self._send(self._calls.set_key_throttle(name, rate, period))

    def remove_key_throttle(self, name: str) -> m.Queue:
        """Remove the queue's per-key throttle."""
        return self._send(self._calls.remove_key_throttle(name))

    def queue_keys(self, name: str, *, limit: int | None = 20) -> list[QueueKey]:
        """The queue's busiest keys (most pending first) with their pending and active jobs
        and completions in the last minute; keys with nothing pending or active are left out."""
        return self._send(self._calls.queue_keys(name, limit))

    def delete_queue(self, name: str) -> int:
        """Delete the queue and all its jobs; returns how many jobs were deleted."""
        return self._send(self._calls.delete_queue(name))

    # --- schedules ------------------------------------------------------------------------

    def schedules(self) -> list[Schedule]:
        """Every cron schedule."""
        return self._send(self._calls.schedules())

    def get_schedule(self, schedule_id: str) -> Schedule:
        """One cron schedule."""
        return self._send(self._calls.get_schedule(schedule_id))

    def create_schedule(
        self, name: str, queue: str, cron: str, **options: Unpack[ScheduleOptions]
    ) -> Schedule:
        """Create a cron schedule (5 fields or `@hourly` style, in `timezone`, default UTC)."""
        return self._send(
            self._calls.put_schedule(None, {**options, "name": name, "queue": queue, "cron": cron})
        )

    def update_schedule(
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
        return self._send(self._calls.put_schedule(schedule_id, fields))

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a cron schedule."""
        self._send(self._calls.delete_schedule(schedule_id))

    # --- server ---------------------------------------------------------------------------

    def workers(self) -> list[WorkerInfo]:
        """The workers the server has seen recently."""
        return self._send(self._calls.workers())

    def cluster_status(self) -> m.ClusterStatus:
        """The cluster's mode, backend and nodes (which one runs the scheduler)."""
        return self._send(self._calls.cluster_status())

    def health(self) -> m.Health:
        """`/healthz`: `status == "ok"`, or `Unavailable` while the server shuts down."""
        return self._send(self._calls.health())
