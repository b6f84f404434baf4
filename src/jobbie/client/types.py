"""What the client hands to users: jobs with decoded JSON values and typed timestamps, pages of
search results, and the shapes of the management API that `jobbie.models` does not define.

The wire models in `jobbie.models` keep `payload`, `checkpoint` and `result` as raw JSON so the
server never re-encodes them; here they are decoded into Python values once, at the edge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Required, TypedDict

import msgspec
from msgspec import Raw, Struct, field

from jobbie import models as m
from jobbie.models import BackoffName, JobProgress, PriorityName, StateName, WorkerRef

__all__ = [
    "AttemptError",
    "Batch",
    "BulkAction",
    "BulkOperation",
    "BulkResult",
    "BulkStatus",
    "ClusterStatus",
    "EnqueueOptions",
    "EnqueueSpec",
    "FairnessMode",
    "HeartbeatUpdate",
    "Job",
    "JobEvent",
    "JobFilter",
    "JobProgress",
    "QueueKey",
    "Schedule",
    "ScheduleOptions",
    "SearchPage",
    "WorkerInfo",
    "WorkerRef",
]

BulkAction = m.BulkAction


class AttemptError(Struct, frozen=True, kw_only=True):
    """One failed attempt of a job, as kept in `Job.errors`."""

    attempt: int
    error: str
    backtrace: str | None
    at: datetime


class JobEvent(Struct, frozen=True, kw_only=True):
    """One lifecycle event of a job (`enqueued`, `started`, `completed`, ...)."""

    id: int
    type: str
    at: datetime
    data: Any = None


class Job(Struct, frozen=True, kw_only=True):
    """A job: every field of the spec, with JSON values decoded and timestamps as datetimes.

    `Client.get_job` fills every field. A job handed out by a fetch (what a worker's handler
    receives) knows only what the fetch answer carries: `id`, `queue`, `state` (`active`),
    `payload`, `priority`, `attempt`, `max_retries`, `checkpoint`, `tags`, `key`, `created_at`,
    `lease_duration` and `worker`; the other fields keep their defaults (None, empty, False).
    """

    id: str
    queue: str
    state: StateName
    payload: Any = None
    priority: PriorityName = "normal"
    attempt: int = 0
    max_retries: int = 3
    retry_backoff: BackoffName | None = None
    retry_base_delay: float | None = None
    retry_max_delay: float | None = None
    unique_key: str | None = None
    unique_period: float | None = None
    batch_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    key: str | None = None
    progress: JobProgress | None = None
    checkpoint: Any = None
    result: Any = None
    last_error: str | None = None
    errors: list[AttemptError] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)
    worker: WorkerRef | None = None
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    expire_at: datetime | None = None
    lease_expires_at: datetime | None = None
    lease_duration: float | None = None
    cancel_requested: bool = False


def decode_raw(raw: Raw | None) -> Any:
    """A raw JSON value as Python data (absent or `null` -> None)."""
    return None if raw is None or not raw else msgspec.json.decode(raw)


def _ts(value: str | None) -> datetime | None:
    return None if value is None else msgspec.convert(value, datetime)


def job_from_wire(wire: m.Job) -> Job:
    """The user's view of a job read with GET /api/v1/jobs/{id} (or found by a search)."""
    events = wire.events if isinstance(wire, m.JobDetail) else []
    return Job(
        id=wire.id,
        queue=wire.queue,
        state=wire.state,
        payload=decode_raw(wire.payload),
        priority=wire.priority,
        attempt=wire.attempt,
        max_retries=wire.max_retries,
        retry_backoff=wire.retry_backoff,
        retry_base_delay=wire.retry_base_delay,
        retry_max_delay=wire.retry_max_delay,
        unique_key=wire.unique_key,
        unique_period=wire.unique_period,
        batch_id=wire.batch_id,
        tags=wire.tags,
        key=wire.key,
        progress=wire.progress,
        checkpoint=decode_raw(wire.checkpoint),
        result=decode_raw(wire.result),
        last_error=wire.last_error,
        errors=[
            AttemptError(attempt=e.attempt, error=e.error, backtrace=e.backtrace, at=_dt(e.at))
            for e in wire.errors
        ],
        events=[JobEvent(id=e.id, type=e.type, at=_dt(e.at), data=e.data) for e in events],
        worker=wire.worker,
        created_at=_ts(wire.created_at),
        scheduled_at=_ts(wire.scheduled_at),
        started_at=_ts(wire.started_at),
        completed_at=_ts(wire.completed_at),
        failed_at=_ts(wire.failed_at),
        expire_at=_ts(wire.expire_at),
        lease_expires_at=_ts(wire.lease_expires_at),
        cancel_requested=wire.cancel_requested,
    )


def _dt(value: str) -> datetime:
    return msgspec.convert(value, datetime)


def job_from_fetch(wire: m.FetchedJob, worker_id: str, hostname: str | None) -> Job:
    """The user's view of a job just leased by a fetch."""
    return Job(
        id=wire.job_id,
        queue=wire.queue,
        state="active",
        payload=decode_raw(wire.payload),
        priority=wire.priority,
        attempt=wire.attempt,
        max_retries=wire.max_retries,
        tags=wire.tags,
        key=wire.key,
        checkpoint=decode_raw(wire.checkpoint),
        created_at=_ts(wire.created_at),
        lease_duration=wire.lease_duration,
        worker=WorkerRef(id=worker_id, hostname=hostname),
    )


# --- request shapes for users (typed dicts, so literals type-check) ---------------------------


class EnqueueOptions(TypedDict, total=False):
    """The options of `enqueue` (spec section 5); durations are seconds or strings like `10s`."""

    priority: PriorityName | int
    unique_key: str
    unique_period: float | str
    max_retries: int
    retry_backoff: BackoffName
    retry_base_delay: float | str
    retry_max_delay: float | str
    scheduled_at: datetime | str
    delay: float | str
    expire_after: float | str
    tags: dict[str, str]
    key: str


class EnqueueSpec(EnqueueOptions, total=False):
    """One job of `enqueue_batch`: `queue` (required), `payload` and the options of `enqueue`."""

    queue: Required[str]
    payload: Any


class HeartbeatUpdate(TypedDict, total=False):
    """What a heartbeat may report for one job (spec section 5)."""

    progress: dict[str, Any]
    checkpoint: Any
    attempt: int


class ScheduleOptions(TypedDict, total=False):
    """The optional fields of a cron schedule (spec section 10)."""

    timezone: str
    payload: Any
    priority: PriorityName
    max_retries: int
    tags: dict[str, str]
    key: str
    paused: bool


class JobFilter(TypedDict, total=False):
    """Search criteria (spec section 5), AND-combined; timestamps are aware datetimes or
    RFC 3339 strings. Used by `search`, `iter_search` and `bulk(filter=...)`."""

    queue: str | list[str]
    state: StateName | list[StateName]
    priority: PriorityName | list[PriorityName]
    tags: dict[str, str]
    payload_contains: str
    payload_jq: str
    created_after: datetime | str
    created_before: datetime | str
    scheduled_after: datetime | str
    scheduled_before: datetime | str
    started_after: datetime | str
    started_before: datetime | str
    completed_after: datetime | str
    completed_before: datetime | str
    expire_after: datetime | str
    expire_before: datetime | str
    attempt_min: int
    attempt_max: int
    unique_key: str
    key: str
    batch_id: str
    worker_id: str
    has_errors: bool
    error_contains: str
    job_id_prefix: str
    error_signature: str


# --- management answers (spec sections 5 and 10) -----------------------------------------------


class SearchPage(Struct, frozen=True, kw_only=True):
    """One page of a job search: `cursor` fetches the next page while `has_more` is true.
    `total` counts up to 10,000 matches (`total_capped` past that); `timed_out` says the server's
    time limit stopped the search and `jobs` are the matches found until then."""

    jobs: list[Job]
    total: int
    cursor: str | None
    has_more: bool
    duration_ms: float | None = None
    total_capped: bool = False
    timed_out: bool = False


BulkResult = m.BulkResponse
"""A bulk action that ran at once: `affected`, `skipped` (wrong state), `errors`."""

BulkOperation = m.BulkAccepted
"""A bulk action over more than 10,000 jobs, running in the background on the server."""

BulkStatus = m.BulkStatus
"""The progress of a background bulk operation."""

ClusterStatus = m.ClusterStatus
"""The cluster's mode, backend and nodes (which one runs the scheduler)."""

QueueKey = m.QueueKey
"""One key of a queue with its backlog: `pending`, `active`, `completed_last_minute`."""

FairnessMode = m.FairnessMode
"""How a queue serves its keys: `fifo` (the default) or `round_robin`."""


class WorkerInfo(Struct, frozen=True, kw_only=True):
    """A worker the server has seen (by fetch or heartbeat)."""

    id: str
    hostname: str | None
    queues: list[str]
    active_jobs: int
    last_seen: datetime
    started_at: datetime


class Batch(Struct, frozen=True, kw_only=True):
    """A batch of jobs enqueued together, with its counters and callback."""

    id: str
    state: Literal["running", "completed"]
    total: int
    pending: int
    succeeded: int
    failed: int
    callback_queue: str | None
    callback_payload: Any
    callback_job_id: str | None
    created_at: datetime
    completed_at: datetime | None


class Schedule(Struct, frozen=True, kw_only=True):
    """A cron schedule that enqueues a job each time its expression fires."""

    id: str
    name: str
    queue: str
    cron: str
    timezone: str = "UTC"
    payload: Any = None
    priority: PriorityName = "normal"
    max_retries: int = 3
    tags: dict[str, str] = field(default_factory=dict)
    key: str | None = None
    paused: bool = False
    last_run: datetime | None = None
    next_run: datetime | None = None
    created_at: datetime | None = None


def _ts_or_none(value: str | None) -> datetime | None:
    return None if value is None else _dt(value)


def page_from_wire(wire: m.SearchResponse) -> SearchPage:
    """The user's view of a search answer."""
    return SearchPage(
        jobs=[job_from_wire(j) for j in wire.jobs],
        total=wire.total,
        cursor=wire.cursor,
        has_more=wire.has_more,
        duration_ms=wire.duration_ms,
        total_capped=wire.total_capped,
        timed_out=wire.timed_out,
    )


def worker_from_wire(wire: m.WorkerInfo) -> WorkerInfo:
    """The user's view of a worker entry."""
    return WorkerInfo(
        id=wire.id,
        hostname=wire.hostname,
        queues=wire.queues,
        active_jobs=wire.active_jobs,
        last_seen=_dt(wire.last_seen),
        started_at=_dt(wire.started_at),
    )


def batch_from_wire(wire: m.Batch) -> Batch:
    """The user's view of a batch."""
    return Batch(
        id=wire.id,
        state=wire.state,
        total=wire.total,
        pending=wire.pending,
        succeeded=wire.succeeded,
        failed=wire.failed,
        callback_queue=wire.callback_queue,
        callback_payload=decode_raw(wire.callback_payload),
        callback_job_id=wire.callback_job_id,
        created_at=_dt(wire.created_at),
        completed_at=_ts_or_none(wire.completed_at),
    )


def schedule_from_wire(wire: m.Schedule) -> Schedule:
    """The user's view of a cron schedule."""
    return Schedule(
        id=wire.id,
        name=wire.name,
        queue=wire.queue,
        cron=wire.cron,
        timezone=wire.timezone,
        payload=decode_raw(wire.payload),
        priority=wire.priority,
        max_retries=wire.max_retries,
        tags=wire.tags,
        key=wire.key,
        paused=wire.paused,
        last_run=_ts_or_none(wire.last_run),
        next_run=_ts_or_none(wire.next_run),
        created_at=_dt(wire.created_at),
    )
